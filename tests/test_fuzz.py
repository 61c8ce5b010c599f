"""Property: every text entry point returns a valid result or a typed InputError, nothing else."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bertdemo.errors import InputError
from bertdemo.service import ModelService

texts = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=80).map(lambda t: t + " [MASK]"),
    st.lists(st.sampled_from(["[MASK]", "[mask]", "<mask>", "paris", "é", "日本", "שלום", "🙂", "\x00", "<script>",
                              " ", "##ing", "[CLS]", "[SEP]", "[PAD]"]), max_size=30).map(" ".join),
)
numbers = st.one_of(st.integers(-10, 10**12), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
                    st.none(), st.booleans())
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])


def _probability(p: float) -> bool:
    return isinstance(p, float) and not math.isnan(p) and 0.0 <= p <= 1.0


@FUZZ
@given(text=texts, top_k=numbers)
def test_fill_mask_fuzz(service: ModelService, text: str, top_k) -> None:
    try:
        res = service.fill_mask(text, top_k=top_k)
    except InputError as err:
        assert str(err)
        return
    assert 1 <= len(res["predictions"]) <= service.settings.max_masks
    for preds in res["predictions"]:
        assert preds and all(_probability(p["score"]) for p in preds)
        assert all(isinstance(p["sequence"], str) for p in preds)


@FUZZ
@given(a=texts, b=texts)
def test_next_sentence_fuzz(service: ModelService, a: str, b: str) -> None:
    try:
        assert _probability(service.next_sentence(a, b)["is_next"])
    except InputError as err:
        assert str(err)


@FUZZ
@given(batch=st.lists(texts, max_size=5))
def test_sentiment_fuzz(service: ModelService, batch: list[str]) -> None:
    try:
        res = service.sentiment(batch)
    except InputError as err:
        assert str(err)
        return
    assert len(res) == len(batch)
    for r in res:
        assert r["label"] in r["scores"] and math.isclose(sum(r["scores"].values()), 1.0, abs_tol=1e-4)


@FUZZ
@given(a=texts, cands=st.lists(texts, max_size=6))
def test_rank_next_fuzz(service: ModelService, a: str, cands: list[str]) -> None:
    try:
        ranked = service.rank_next(a, cands)
    except InputError as err:
        assert str(err)
        return
    assert len(ranked) == len(cands) and all(_probability(r["is_next"]) for r in ranked)
