"""bf16 on the CPU and ``precision="auto"``: real models, the committed qualification record, no mocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bertdemo.config import DEFAULT_MLM_MODEL, DEFAULT_SENTIMENT_MODEL, load_settings
from bertdemo.errors import InputError
from bertdemo.models import weights_sha256
from bertdemo.precision import QUALIFICATION_FILE, cpu_flags, decide_precision, judge, native_bf16, read_qualification
from bertdemo.service import ModelService
from bertdemo.ui.tabs.about import about_markdown

NATIVE = {"avx512_bf16": True, "avx512_vnni": True, "amx_bf16": False}
AMX = {"amx_bf16": True, "amx_tile": True}
NONE: dict[str, bool] = {"avx512_bf16": False, "amx_bf16": False, "avx512_vnni": True}


def _bf16(tiny_mlm_dir: Path, tiny_clf_dir: Path) -> ModelService:
    return ModelService(load_settings(env={}, mlm_model=str(tiny_mlm_dir), sentiment_model=str(tiny_clf_dir),
                                      precision="bf16"))


def test_cpu_bf16_loads_answers_in_fp32_and_explains(tiny_mlm_dir: Path, tiny_clf_dir: Path,
                                                     service: ModelService) -> None:
    import torch

    q = _bf16(tiny_mlm_dir, tiny_clf_dir)
    try:
        assert q.mlm.precision == "bf16" and q.mlm.device == "cpu"
        assert q.mlm.model.bert.encoder.layer[0].output.dense.weight.dtype == torch.bfloat16
        assert q.mlm.model.cls.predictions.decoder.weight.dtype == torch.float32  # untied, fp32 head
        dist = q.mask_distributions(["paris is the [MASK] of france."])[0]
        assert dist.dtype == torch.float32
        assert float(dist.sum()) == pytest.approx(1.0, abs=1e-4)
        res = q.fill_mask("paris is the [MASK] of france.", top_k=5)
        assert all(isinstance(c.score, float) for c in res.predictions[0])
        assert res.predictions[0][0].token == service.fill_mask("paris is the [MASK] of france.").predictions[0][0].token
        assert 0.0 <= q.next_sentence("the sky is blue today.", "rome is the capital of italy.").is_next <= 1.0
        assert q.sentiment(["i loved this movie"])[0].label == "positive"
        # attributions run on the fp32 copy: the same scores as the fp32 service's
        ex, ref = q.explain_sentiment("i loved this movie"), service.explain_sentiment("i loved this movie")
        assert [w for w, _ in ex.attributions] == [w for w, _ in ref.attributions]
        assert [s for _, s in ex.attributions] == pytest.approx([s for _, s in ref.attributions], abs=1e-5)
        assert q.attention("paris is the capital of france.").attentions.dtype.name == "float32"
    finally:
        q.close()


def test_fp16_on_cpu_is_still_refused_and_unknown_precision_named() -> None:
    with pytest.raises(InputError, match="auto, fp32, bf16, int8, fp16"):
        load_settings(env={"BERTDEMO_PRECISION": "fp8"})
    assert load_settings(env={}).precision == "auto"


def test_committed_qualification_matches_the_bundled_weights() -> None:
    record = read_qualification()
    assert record is not None, f"{QUALIFICATION_FILE} is missing: run bertdemo qualify-precision"
    for kind, folder in (("pretraining", DEFAULT_MLM_MODEL), ("classifier", DEFAULT_SENTIMENT_MODEL)):
        entry = record["models"][kind]
        assert entry["weights_sha256"] == weights_sha256(Path(folder)), \
            f"{folder} changed since it was qualified: rerun bertdemo qualify-precision"
        assert entry["eligible"] == judge(entry["tasks"])[0]  # the verdict follows the rule from the numbers
        for task in entry["tasks"].values():
            assert task["items"] >= 500
    assert record["models"]["pretraining"]["tasks"]["fill_mask"]["items"] >= 1000
    assert {"amx_bf16", "avx512_bf16", "avx512_vnni"} <= set(record["machine"]["flags"])


def test_auto_picks_bf16_only_with_native_bf16_and_the_qualified_hash() -> None:
    record = read_qualification()
    assert record is not None
    sha = weights_sha256(Path(DEFAULT_MLM_MODEL))
    eligible = record["models"]["pretraining"]["eligible"]
    for flags in (NATIVE, AMX):
        choice = decide_precision("auto", "cpu", "pretraining", sha, flags, record)
        assert choice.precision == ("bf16" if eligible else "fp32")
        assert choice.requested == "auto" and choice.reason.startswith("auto:")
    off = decide_precision("auto", "cpu", "pretraining", sha, NONE, record)  # the capability check forced off
    assert off.precision == "fp32" and "no native bf16" in off.reason
    other = decide_precision("auto", "cpu", "pretraining", "0" * 64, NATIVE, record)
    assert other.precision == "fp32" and "not qualified for these weights" in other.reason and "000000000000" in other.reason
    wrong_kind = decide_precision("auto", "cpu", "classifier", sha, NATIVE, record)  # the MLM's hash as the classifier
    assert wrong_kind.precision == "fp32"
    assert decide_precision("auto", "cpu", "pretraining", sha, NATIVE, None).precision == "fp32"
    assert decide_precision("auto", "cuda", "pretraining", sha, NATIVE, record).precision == "fp32"
    assert decide_precision("fp32", "cpu", "pretraining", sha, NATIVE, record).reason.startswith("asked for by name")
    failed = {"models": {"pretraining": {**record["models"]["pretraining"], "eligible": False, "why": "nsp 98 %"}}}
    no = decide_precision("auto", "cpu", "pretraining", sha, NATIVE, failed)
    assert no.precision == "fp32" and "did not qualify" in no.reason and "nsp 98 %" in no.reason


def test_judge_applies_agreement_and_margin_rule() -> None:
    ok = {"t": {"agreement": 0.995, "disagreements": [{"fp32_margin": 0.01}]}}
    assert judge(ok)[0]
    assert not judge({"t": {"agreement": 0.985, "disagreements": []}})[0]
    wide = judge({"t": {"agreement": 0.999, "disagreements": [{"fp32_margin": 0.2}]}})
    assert not wide[0] and "margin > 0.05" in wide[1]


def test_auto_through_the_loader_reads_the_qualification_file(tiny_mlm_dir: Path, tiny_clf_dir: Path,
                                                              tmp_path: Path) -> None:
    """A record naming the tiny model's hash as eligible: auto gives bf16 exactly where this CPU has it."""
    record = {"models": {"pretraining": {"weights_sha256": weights_sha256(tiny_mlm_dir), "eligible": True,
                                         "why": "test", "tasks": {"fill_mask": {"agreement": 1.0}}}}}
    path = tmp_path / "precision.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    settings = load_settings(env={}, mlm_model=str(tiny_mlm_dir), sentiment_model=str(tiny_clf_dir),
                             precision_qualification=str(path))
    svc = ModelService(settings)
    try:
        svc.warm_up()
        expected = "bf16" if native_bf16(cpu_flags()) else "fp32"
        assert svc.mlm.precision == expected
        assert svc.classifier.precision == "fp32"  # not in the record
        assert "not qualified for these weights" in svc.classifier.precision_reason or not native_bf16(cpu_flags())
        page = about_markdown(svc, settings).replace("\\", "")  # Markdown escapes off
        assert f"Fill mask + next sentence: **{expected}**" in page
        assert "Sentiment: **fp32**" in page
        assert "Requested: auto" in page and svc.mlm.precision_reason in page
        assert svc.describe()["loaded"]["pretraining"]["precision_reason"] == svc.mlm.precision_reason
    finally:
        svc.close()


def test_audit_cli_runs_in_fp32_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An audit's numbers must not depend on the CPU kind: ``bertdemo audit`` loads fp32 by default (where
    serving's auto would pick bf16 for the bundled models), and bf16 only when asked."""
    from bertdemo.cli import main

    monkeypatch.delenv("BERTDEMO_PRECISION", raising=False)
    for extra, expected in (([], "fp32"), (["--precision", "bf16"], "bf16")):
        out = tmp_path / f"audit-{expected}"
        code = main(["audit", "--checks", "crows_pairs", "--limit", "5", "--out", str(out),
                     "--mlm-model", DEFAULT_MLM_MODEL, "--sentiment-model", DEFAULT_SENTIMENT_MODEL, *extra])
        assert code in (0, 1, 3)
        loaded = json.loads((out / "report.json").read_text())["model"]["loaded"]
        assert loaded["pretraining"]["precision"] == expected, loaded
