"""The bundled models, served by the real service, answer the app's own examples as their card says.

These are the first answers every visitor sees: the checks here fail if a rebuilt model stops putting
"capital" in "Paris is the [MASK] of France." or stops predicting occupations for "The man/woman worked
as a [MASK].", or if the app's answers drift from what the build measured and the card reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MLM, SENT = ROOT / "assets" / "models" / "bertdemo-mlm", ROOT / "assets" / "models" / "bertdemo-sentiment"
EVAL = ROOT / "modelbuild" / "eval"


@pytest.fixture(scope="module")
def bundled():
    from bertdemo.config import load_settings
    from bertdemo.service import ModelService

    settings = load_settings(env={}, mlm_model=str(MLM), sentiment_model=str(SENT))
    service = ModelService(settings)
    yield settings, service
    service.close()


@pytest.fixture(scope="module")
def occupations() -> set[str]:
    return set((EVAL / "occupations.txt").read_text("utf-8").split())


def top5(service, text: str, mask: int = 0) -> list[str]:
    return [c.token for c in service.fill_mask(text, top_k=5).predictions[mask]]


def test_paris_is_the_capital_of_france(bundled):
    _, service = bundled
    assert "capital" in top5(service, "Paris is the [MASK] of France.")


@pytest.mark.xfail(strict=True, reason="open issue: the bundled masked LM answers man/woman/job/boy/child, "
                   "no occupations; strict, so this test fails (and the mark must go) once a rebuild gets it right")
def test_the_occupation_probes_predict_occupations(bundled, occupations):
    _, service = bundled
    for who in ("man", "woman"):
        words = top5(service, f"The {who} worked as a [MASK].")
        assert sum(w in occupations for w in words) >= 3, (who, words)


def test_the_app_answers_its_examples_as_the_card_reports(bundled, occupations):
    """Every judged example through the service, counted the way the build counted it."""
    _, service = bundled
    examples = json.loads((EVAL / "app_examples.json").read_text("utf-8"))
    for task, key in (("fill_mask", "text"), ("sentiment", "text"), ("nsp", "a"), ("ranking", "a")):
        examples[task] = list({e[key] + str(e.get("b", "")): e for e in examples[task]}.values())  # each once
    ok = []
    for e in examples["fill_mask"]:
        expects = e["expect"] if isinstance(e.get("expect"), list) else [e.get("expect")]
        verdicts = []
        for ex in filter(None, expects):
            words = top5(service, e["text"], ex.get("mask_index", 0))
            verdicts.append(sum(w in occupations for w in words) >= ex["min_occupations_in_top5"]
                            if "min_occupations_in_top5" in ex else bool(set(ex["any_in_top5"]) & set(words)))
        if verdicts:
            ok.append(all(verdicts))
    for e in examples["nsp"]:
        if e.get("expect_is_next") is not None:
            ok.append((service.next_sentence(e["a"], e["b"]).is_next >= 0.5) == e["expect_is_next"])
    for e in examples["ranking"]:
        if e.get("expect_best"):
            ok.append(service.rank_next(e["a"], e["candidates"])[0].candidate == e["expect_best"])
    metrics = json.loads((MLM / "metrics.json").read_text("utf-8"))
    card = metrics["evaluate"]["final"]["user"]["app_examples"]
    assert (sum(ok), len(ok)) == (card["reasonable"], card["judged"])
    sent = [e for e in examples["sentiment"] if e.get("expect")]
    labels = [r.label for r in service.sentiment([e["text"] for e in sent])]
    reported = json.loads((SENT / "metrics.json").read_text("utf-8"))["app_examples"]
    assert labels == [r["answer"] for r in reported if r["ok"] is not None]
    assert sum(lab == e["expect"] for lab, e in zip(labels, sent)) >= len(sent) - 1


def test_the_about_tab_states_size_and_user_style_numbers(bundled):
    from bertdemo.ui.tabs.about import about_markdown

    settings, service = bundled
    text = about_markdown(service, settings)
    user = json.loads((MLM / "metrics.json").read_text("utf-8"))["evaluate"]["final"]["user"]
    assert f"{100 * user['cloze']['top5']:.1f} %" in text and f"{100 * user['nsp']['accuracy']:.1f} %" in text
    assert "bert-base-uncased" in text and "BERTDEMO_MLM_MODEL=bert-base-uncased" in text and "110M" in text


def test_a_checkpoint_without_build_numbers_says_so(tmp_path):
    from bertdemo.buildinfo import build_numbers
    from bertdemo.ui.tabs.about import bundled_markdown

    assert build_numbers(str(tmp_path), str(tmp_path)) is None
    assert "not built by this project" in "\n".join(bundled_markdown(None))
