"""The model service against direct forward passes of the same checkpoints (no mocks)."""

from __future__ import annotations

import math
import shutil
import threading
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertForPreTraining, BertForSequenceClassification

from bertdemo.config import load_settings
from bertdemo.errors import InputError, ModelLoadError
from bertdemo.service import ModelService


@pytest.fixture(scope="module")
def direct(tiny_mlm_dir: Path, tiny_clf_dir: Path):
    tok = AutoTokenizer.from_pretrained(str(tiny_mlm_dir))
    lm = BertForPreTraining.from_pretrained(str(tiny_mlm_dir)).eval()
    clf = BertForSequenceClassification.from_pretrained(str(tiny_clf_dir)).eval()
    return tok, lm, clf


def test_fill_mask_learned_token(service: ModelService) -> None:
    res = service.fill_mask("Paris is the [MASK] of France.", top_k=3)
    assert res["predictions"][0][0]["token"] == "capital"
    assert res["filled"] == "Paris is the capital of France."  # the visitor's casing, not the uncased tokens
    assert res["predictions"][0][1]["sequence"].startswith("Paris is the ")
    assert len(res["predictions"]) == 1 and len(res["predictions"][0]) == 3
    scores = [p["score"] for p in res["predictions"][0]]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1


def test_multiple_masks_equal_direct_forward(service: ModelService, direct) -> None:
    tok, lm, _ = direct
    text = "[MASK] is the capital of [MASK] and the sky is [MASK]."
    res = service.fill_mask(text, top_k=4)
    enc = tok(text, return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(lm(**enc).prediction_logits[0], dim=-1)
    positions = (enc["input_ids"][0] == tok.mask_token_id).nonzero().flatten().tolist()
    assert len(res["predictions"]) == len(positions) == 3
    for preds, pos in zip(res["predictions"], positions, strict=True):
        values, ids = probs[pos].topk(4)
        assert [p["token_id"] for p in preds] == ids.tolist()
        for p, v in zip(preds, values.tolist(), strict=True):
            assert p["score"] == pytest.approx(v, abs=1e-5)
        # the sequence fills only this mask; the others stay visible
        assert preds[0]["sequence"].count("[MASK]") == 2


def test_targets_restrict_without_renormalising(service: ModelService) -> None:
    text = "paris is the [MASK] of france."
    full = service.fill_mask(text, top_k=50)["predictions"][0]
    by_token = {p["token"]: p["score"] for p in full}
    res = service.fill_mask(text, top_k=5, targets=["rome", "capital"])["predictions"][0]
    assert [p["token"] for p in res] == ["capital", "rome"]
    assert res[0]["score"] == pytest.approx(by_token["capital"], abs=1e-6)
    with pytest.raises(InputError, match="targets"):
        service.fill_mask(text, targets=["zzzqqq"])


@pytest.mark.parametrize("spelling", ["[mask]", "<mask>", "[ Mask ]"])
def test_mask_spellings_are_accepted(service: ModelService, spelling: str) -> None:
    res = service.fill_mask(f"paris is the {spelling} of france.")
    assert res["predictions"][0][0]["token"] == "capital"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"text": ""}, "empty"),
        ({"text": "   \n\t "}, "empty"),
        ({"text": "\x00\x01"}, "empty"),
        ({"text": "no mask here"}, r"no \[MASK\]"),
        ({"text": "[MASK] " * 6}, "at most 5"),
        ({"text": "the " * 300 + "[MASK]"}, "tokens long"),
        ({"text": "a" * 6000 + "[MASK]"}, "characters long"),
        ({"text": None}, "missing"),
        ({"text": 42}, "must be text"),
        ({"text": "a [MASK]", "top_k": 0}, "top_k"),
        ({"text": "a [MASK]", "top_k": -1}, "top_k"),
        ({"text": "a [MASK]", "top_k": 10**9}, "top_k"),
        ({"text": "a [MASK]", "top_k": float("nan")}, "top_k"),
        ({"text": "a [MASK]", "top_k": "abc"}, "top_k"),
        ({"text": "a [MASK]", "top_k": True}, "top_k"),
    ],
)
def test_fill_mask_bad_input_is_a_typed_error(service: ModelService, kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        service.fill_mask(**kwargs)


def test_next_sentence_equals_direct_forward(service: ModelService, direct) -> None:
    tok, lm, _ = direct
    a, b = "paris is the capital of france.", "the sky is blue today."
    enc = tok(a, b, return_tensors="pt")
    with torch.no_grad():
        expected = torch.softmax(lm(**enc).seq_relationship_logits[0], dim=-1)[0].item()
    assert service.next_sentence(a, b)["is_next"] == pytest.approx(expected, abs=1e-5)


def test_rank_next_orders_by_probability(service: ModelService) -> None:
    a = "paris is the capital of france."
    cands = ["the sky is blue today.", "rome is the capital of italy.", "a sad day"]
    ranked = service.rank_next(a, cands)
    singles = {c: service.next_sentence(a, c)["is_next"] for c in cands}
    assert sorted(r["candidate"] for r in ranked) == sorted(cands)
    assert [r["rank"] for r in ranked] == [1, 2, 3]
    probs = [r["is_next"] for r in ranked]
    assert probs == sorted(probs, reverse=True)
    for r in ranked:
        assert r["is_next"] == pytest.approx(singles[r["candidate"]], abs=1e-5)
    with pytest.raises(InputError, match="candidates"):
        service.rank_next(a, [])
    with pytest.raises(InputError, match=r"candidates\[1\]"):
        service.rank_next(a, ["ok", "  "])


def test_sentiment_equals_direct_forward(service: ModelService, direct) -> None:
    tok, _, clf = direct
    texts = ["i loved this movie", "a terrible film", "the sky is blue today"]
    res = service.sentiment(texts)
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(clf(**enc).logits, dim=-1)
    for r, row in zip(res, probs, strict=True):
        assert r["scores"]["negative"] == pytest.approx(row[0].item(), abs=1e-5)
        assert r["scores"]["positive"] == pytest.approx(row[1].item(), abs=1e-5)
        assert r["label"] == ("positive" if row[1] > row[0] else "negative")
        assert math.isclose(sum(r["scores"].values()), 1.0, abs_tol=1e-5)
    assert res[0]["label"] == "positive" and res[1]["label"] == "negative"


def test_sentiment_truncates_long_text_with_a_notice(service: ModelService) -> None:
    res = service.sentiment(["good " * 400, "bad"])
    assert res[0]["truncated"] is True and res[1]["truncated"] is False


def test_explain_sentiment_points_at_the_sentiment_word(service: ModelService) -> None:
    res = service.explain_sentiment("i loved this movie")
    words = dict(res["attributions"])
    assert res["label"] == "positive"
    assert list(words) == ["i", "loved", "this", "movie"]
    assert max(words, key=words.get) == "loved"
    res2 = service.explain_sentiment("i hated this movie", method="gradient_x_input")
    assert res2["label"] == "negative" and len(res2["attributions"]) == 4
    with pytest.raises(InputError, match="method"):
        service.explain_sentiment("x", method="shap")


def test_filled_sentence_keeps_the_text_as_typed(service: ModelService) -> None:
    # a mask that starts a sentence is capitalised; the rest stays as typed
    res = service.fill_mask("[MASK] is the capital of France. The SKY is blue.", top_k=1)
    assert res.filled.endswith(" is the capital of France. The SKY is blue.")
    assert res.filled[0].isupper() and "[MASK]" not in res.filled
    two = service.fill_mask("Rome is the [MASK] of [MASK].", top_k=2)
    assert two.filled.startswith("Rome is the ") and two.filled.count("[MASK]") == 0
    assert two.predictions[1][0].sequence.startswith("Rome is the [MASK] of ")  # one mask filled at a time


def test_attributions_are_per_word_as_written(service: ModelService) -> None:
    res = service.explain_sentiment("I LOVED this movie. Loved it, loved it!")
    words = [w for w, _ in res.attributions]
    assert words[:5] == ["I", "LOVED", "this", "movie", "."]  # casing kept, punctuation its own item
    assert [res.text[a:b] for a, b in res.spans] == words
    top = [w.lower() for w, _ in res.top_words(10)]
    assert len(top) == len(set(top))  # each word once
    assert "loved" in top and not any(w in {".", ",", "!"} for w in top)  # punctuation is never listed
    total = sum(s for w, s in res.attributions if w.lower() == "loved")
    assert dict((w.lower(), s) for w, s in res.top_words(10))["loved"] == pytest.approx(total)


def test_long_text_attribution_is_capped(service: ModelService) -> None:
    from bertdemo.tasks.attribution import STEP_BUDGET

    short = service.explain_sentiment("i loved this movie")
    assert short.steps == short.steps_requested == 16 and not short.steps_capped
    long = service.explain_sentiment("i loved this movie and it was a very good day " * 40)
    assert long.truncated and long.steps_capped
    n_tokens = service.classifier.max_length
    assert long.steps * n_tokens <= max(STEP_BUDGET, 2 * n_tokens)  # the work is bounded, whatever the length
    assert service.explain_sentiment("a great film", method="gradient_x_input").steps == 1


def _naive_pll(lm, tok, text: str) -> float:
    ids = tok(text)["input_ids"]
    total = 0.0
    for i in range(1, len(ids) - 1):
        masked = list(ids)
        masked[i] = tok.mask_token_id
        with torch.no_grad():
            logits = lm(input_ids=torch.tensor([masked])).prediction_logits[0, i]
        total += torch.log_softmax(logits, dim=-1)[ids[i]].item()
    return total


def test_pseudo_log_likelihood_equals_naive_loop(service: ModelService, direct) -> None:
    tok, lm, _ = direct
    texts = ["paris is the capital of france.", "the sky is blue today.", "he worked as a nurse in rome."]
    got = service.pseudo_log_likelihood(texts)
    for text, r in zip(texts, got, strict=True):
        assert r["pll"] == pytest.approx(_naive_pll(lm, tok, text), abs=1e-4)
        assert r["num_tokens"] == len(tok(text)["input_ids"]) - 2


def test_concurrent_calls_match_sequential(service: ModelService) -> None:
    jobs = [
        ("fill", "paris is the [MASK] of france."), ("fill", "the sky is [MASK] today."),
        ("fill", "[MASK] is the capital of [MASK]."), ("nsp", ("the sky is blue.", "rome is a city.")),
        ("nsp", ("a good day", "a sad day")), ("sent", "i loved this film"), ("sent", "a terrible movie"),
    ] * 4

    def run(job):
        kind, arg = job
        if kind == "fill":
            return [[(p["token_id"], p["score"]) for p in m] for m in service.fill_mask(arg, top_k=3)["predictions"]]
        if kind == "nsp":
            return service.next_sentence(*arg)["is_next"]
        return service.sentiment([arg])[0]["scores"]

    sequential = [run(j) for j in jobs]
    results: list = [None] * len(jobs)
    errors: list = []

    def worker(i: int) -> None:
        try:
            results[i] = run(jobs[i])
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    for seq, par in zip(sequential, results, strict=True):
        if isinstance(seq, (float, dict)):
            assert par == pytest.approx(seq, abs=1e-5)
        else:
            assert [[t for t, _ in m] for m in par] == [[t for t, _ in m] for m in seq]
            flat = [s for m in par for _, s in m]
            assert flat == pytest.approx([s for m in seq for _, s in m], abs=1e-5)


def test_int8_precision_agrees_with_fp32(tiny_mlm_dir: Path, tiny_clf_dir: Path, service: ModelService) -> None:
    q = ModelService(load_settings(env={}, mlm_model=str(tiny_mlm_dir), sentiment_model=str(tiny_clf_dir),
                                   precision="int8"))
    for text in ["paris is the [MASK] of france.", "the sky is [MASK] today.", "berlin is the capital of [MASK]."]:
        assert q.fill_mask(text)["predictions"][0][0]["token"] == service.fill_mask(text)["predictions"][0][0]["token"]
    assert q.mlm.precision == "int8"
    assert q.sentiment(["i loved this movie"])[0]["label"] == "positive"
    assert q.explain_sentiment("i loved this movie")["attributions"]  # gradients use the fp32 copy


def _svc(mlm: str, clf: str = "unused") -> ModelService:
    return ModelService(load_settings(env={}, mlm_model=mlm, sentiment_model=clf))


def test_missing_model_folder_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ModelLoadError, match=r"not found: .*nope"):
        _ = _svc(str(missing)).mlm


def test_folder_without_safetensors_is_refused(tmp_path: Path, tiny_mlm_dir: Path) -> None:
    bad = tmp_path / "bin_only"
    shutil.copytree(tiny_mlm_dir, bad)
    for f in bad.glob("*.safetensors"):
        f.rename(f.with_suffix(".bin"))
    with pytest.raises(ModelLoadError, match="safetensors"):
        _ = _svc(str(bad)).mlm


def test_wrong_kind_of_model_is_refused(tmp_path: Path, tiny_mlm_dir: Path, tiny_clf_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="masked-LM head"):
        _ = _svc(str(tiny_clf_dir)).mlm
    with pytest.raises(ModelLoadError, match="classification head"):
        _ = _svc(str(tiny_mlm_dir), str(tiny_mlm_dir)).classifier
    other = tmp_path / "roberta"
    shutil.copytree(tiny_mlm_dir, other)
    cfg = (other / "config.json").read_text().replace('"model_type": "bert"', '"model_type": "roberta"')
    (other / "config.json").write_text(cfg)
    with pytest.raises(ModelLoadError, match="roberta"):
        _ = _svc(str(other)).mlm
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_mlm_dir, corrupt)
    (corrupt / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="could not load"):
        _ = _svc(str(corrupt)).mlm


def test_models_load_once_across_threads(tiny_mlm_dir: Path, tiny_clf_dir: Path) -> None:
    svc = _svc(str(tiny_mlm_dir), str(tiny_clf_dir))
    seen: list = []
    threads = [threading.Thread(target=lambda: seen.append(id(svc.mlm))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1


def test_plan_batch_places_every_item_once() -> None:
    from bertdemo.tasks.forward import plan_batch

    for lengths in ([7], [9, 9, 9, 9], [40, 6, 6, 5, 30, 8, 7], list(range(3, 70, 4)), [120, 3, 3, 3, 3, 3]):
        plan = plan_batch(lengths, hidden_size=128)
        placed = sorted(i for row in plan.rows for i in row)
        assert placed == list(range(len(lengths)))
        assert all(sum(lengths[i] for i in row) <= plan.width for row in plan.rows)
        assert plan.width >= max(lengths)
        if not plan.packed:
            assert all(len(row) == 1 for row in plan.rows)
    assert not plan_batch([9, 9, 9, 9]).packed  # equal lengths: nothing to gain
    mixed = plan_batch([40, 6, 6, 5, 30, 8, 7])
    assert mixed.packed and mixed.computed_tokens < 7 * 40


def test_short_inputs_are_packed_with_little_padding() -> None:
    """Sentence pairs of 15-31 tokens (the usual next-sentence request): rows sized to split the batch
    evenly waste almost nothing; the fixed widths alone (64) wasted a fifth of the compute."""
    from bertdemo.tasks.forward import plan_batch

    for lengths in ([15, 16, 17, 17, 18, 20, 21, 31], [9, 10, 12, 12, 13, 14, 17, 21, 14, 14, 18, 13]):
        plan = plan_batch(lengths, 768)
        assert plan.packed and plan.computed_tokens <= 1.05 * sum(lengths), plan
        assert all(sum(lengths[i] for i in row) <= plan.width for row in plan.rows)
    assert plan_batch([300, 200, 100], 768, limit=512).width <= 512  # never wider than the model reads


def test_top_k_chosen_in_the_batch_equals_the_full_rows(service: ModelService, direct) -> None:
    """Fill-mask items get their k likeliest tokens from one selection over the batch; other items of the
    same batch (the audit's probes) still get whole rows."""
    import dataclasses

    from bertdemo.tasks import fill_mask, forward

    tok = direct[0]
    texts = ["the [MASK] sat on the [MASK].", "paris is the [MASK] of france.", "a [MASK] day"]
    items = [fill_mask.preprocess(tok, t, 5, 512) for t in texts]
    items[0].top_k, items[1].top_k = 3, 7
    got = forward.mlm_log_probs(service.mlm, items)
    full = forward.mlm_log_probs(service.mlm, [dataclasses.replace(it, top_k=None) for it in items])
    for out, rows, k in zip(got[:2], full[:2], (3, 7), strict=True):
        assert isinstance(out, forward.TopK) and tuple(out.ids.shape) == (rows.shape[0], k)
        values, ids = rows.topk(k, dim=-1)
        assert torch.equal(out.ids, ids) and torch.allclose(out.log_probs, values)
    assert not isinstance(got[2], forward.TopK) and torch.equal(got[2], full[2])
    res = service.fill_mask("the [MASK] sat on the [MASK].", top_k=3)
    assert [[c.token_id for c in preds] for preds in res.predictions] == full[0].topk(3, dim=-1).indices.tolist()


def test_packed_batches_equal_one_item_forwards(service: ModelService, direct) -> None:
    """Mixed lengths are packed several to a row; every head must see exactly its own item."""
    from bertdemo.tasks import fill_mask, forward, next_sentence, sentiment
    from bertdemo.tasks.forward import plan_batch

    tok, lm, clf = direct
    texts = ["the [MASK] is blue.", "paris is the [MASK] of france and rome is the capital of italy, "
             "and the sky over both of them is often blue in the summer.", "a [MASK] day", "i [MASK] it"]
    items = [fill_mask.preprocess(tok, t, 5, 512) for t in texts]
    assert plan_batch([len(it) for it in items], 128).packed
    packed = forward.mlm_log_probs(service.mlm, items)
    for it, got in zip(items, packed, strict=True):
        with torch.no_grad():
            logits = lm(input_ids=torch.tensor([it.input_ids])).prediction_logits[0, it.positions]
        assert got == pytest.approx(torch.log_softmax(logits, -1), abs=1e-4)

    pairs = [("a good day.", "the sky is blue."), (texts[1], "rome is a city."), ("hi.", "yes.")]
    items = [next_sentence.preprocess(tok, a, b, 512) for a, b in pairs]
    for it, got in zip(items, forward.nsp_probs(service.mlm, items), strict=True):
        with torch.no_grad():
            out = lm(input_ids=torch.tensor([it.input_ids]), token_type_ids=torch.tensor([it.token_type_ids]))
        assert got == pytest.approx(torch.softmax(out.seq_relationship_logits[0], -1)[0].item(), abs=1e-5)

    items = [sentiment.preprocess(tok, t.replace("[MASK]", "good"), 512)[0] for t in texts]
    for it, got in zip(items, forward.class_probs(service.classifier, items), strict=True):
        with torch.no_grad():
            probs = torch.softmax(clf(input_ids=torch.tensor([it.input_ids])).logits[0], -1)
        assert got == pytest.approx(probs.tolist(), abs=1e-5)
