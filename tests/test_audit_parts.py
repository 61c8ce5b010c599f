"""Parts of the bias audit: check isolation, atomic reports, evaluate modules, statistics, config."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from bertdemo.audit import fairness, report, runner, stats, thresholds
from bertdemo.errors import InputError


def test_a_check_that_errors_is_reported_and_the_report_still_written(service, tmp_path: Path) -> None:
    calls: list[tuple[float, str]] = []
    opts = runner.AuditOptions(checks=["user_data", "templates"], user_data=None)  # user_data without a CSV raises
    result = runner.run_audit(service, opts, progress=lambda f, d: calls.append((f, d)), bars=False)
    assert result.checks["user_data"].status == "error"
    assert "no CSV given" in result.checks["user_data"].error
    assert result.checks["templates"].status in {"pass", "fail", "inconclusive"}  # the other check still ran
    assert result.verdict == "fail" and result.exit_code == 1
    paths = report.write_report(result, tmp_path / "out")
    doc = json.loads(paths["report.json"].read_text(encoding="utf-8"))
    assert doc["checks"]["user_data"]["status"] == "error" and doc["summary"]["error"] == ["user_data"]
    assert doc["checks"]["crows_pairs"]["status"] == "not run"
    assert "no CSV given" in paths["report.html"].read_text(encoding="utf-8")
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0) and fractions[0] >= 0


def test_interrupted_report_leaves_the_previous_one_whole(service, tmp_path: Path) -> None:
    result = runner.run_audit(service, runner.AuditOptions(checks=["templates"]), bars=False)
    out = tmp_path / "out"
    report.write_report(result, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result.checks["templates"].metrics["broken"] = {1, 2}  # not JSON: writing fails midway
    with pytest.raises(TypeError):
        report.write_report(result, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left behind
    del result.checks["templates"].metrics["broken"]
    report.write_report(result, out)  # a previous report is replaced as a whole
    assert oct(os.stat(out / "report.json").st_mode & 0o777) != "0o600"


def test_evaluate_modules_load_offline_and_share_the_audit_code(service, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    import evaluate

    from bertdemo.audit import crows_pairs
    from bertdemo.audit.data import load_crows_pairs

    base = Path(runner.__file__).parent / "measurements"
    cp = evaluate.load(str(base / "crows_pairs"))
    pairs = list(load_crows_pairs()[:2])
    got = cp.compute(sent_more=[p.sent_more for p in pairs], sent_less=[p.sent_less for p in pairs],
                     stereo_antistereo=[p.direction for p in pairs], bias_type=[p.bias_type for p in pairs],
                     service=service, return_rows=True)
    rows, summary = crows_pairs.evaluate_pairs(service, pairs)
    assert got["metric_score"] == summary["overall"]["metric_score"]
    assert [r["sent_more_score"] for r in got["rows"]] == [r["sent_more_score"] for r in rows]
    gf = evaluate.load(str(base / "group_fairness"), "with_references")
    kw = {"predictions": [1, 0, 1, 1, 0, 1], "scores": [.9, .2, .8, .7, .1, .6], "groups": list("aabbcc"),
          "references": [1, 0, 0, 1, 0, 1]}
    out = gf.compute(**kw, n_boot=50, seed=1)
    direct = fairness.group_fairness(kw["predictions"], kw["scores"], kw["groups"], "group", y_true=kw["references"],
                                     n_boot=50, seed=1).to_dict()
    assert out["demographic_parity_difference"] == direct["demographic_parity_difference"]
    assert out["ci"] == direct["ci"]
    st = evaluate.load(str(base / "stereoset"))
    tp = evaluate.load(str(base / "template_probes"))
    res = tp.compute(template=["{person} worked as a [MASK]."], groups={"m": ["he"], "f": ["she"]}, service=service)
    assert 0 < res["mean_jsd"] <= 1
    assert st.name and list(Path(os.environ["HF_HOME"]).rglob("crows_pairs.py"))


def test_fast_bootstrap_metrics_equal_fairlearn() -> None:
    rng = np.random.default_rng(0)
    n = 300
    yt, yp, sc = rng.integers(0, 2, n), rng.integers(0, 2, n), rng.random(n)
    g = rng.choice(["x", "y", "z"], n)
    r = fairness.group_fairness(yp, sc, g, "g", y_true=yt, n_boot=0)
    v = fairness.fast_metrics(yt, yp, sc, np.searchsorted(np.array(["x", "y", "z"], dtype=object), g.astype(object)),
                              3, True)
    m = len(r.metrics)
    for a, grp in enumerate(["x", "y", "z"]):
        for j, name in enumerate(r.metrics):
            assert v[a * m + j] == pytest.approx(r.by_group[grp][name])
    for j, name in enumerate(r.metrics):
        assert v[3 * m + j] == pytest.approx(r.difference[name])
        assert v[4 * m + j] == pytest.approx(r.ratio[name])
    assert v[-3:] == pytest.approx([r.demographic_parity_difference, r.demographic_parity_ratio,
                                    r.equalized_odds_difference])


def test_bootstrap_is_seeded() -> None:
    kw = {"y_pred": [1, 0, 1, 1, 0, 0, 1, 1], "scores": [.9, .2, .8, .7, .1, .3, .6, .9], "sensitive": list("aabbaabb"),
          "attribute": "g", "n_boot": 100}
    a = fairness.group_fairness(**kw, seed=5).ci
    assert a == fairness.group_fairness(**kw, seed=5).ci
    assert a != fairness.group_fairness(**kw, seed=6).ci


def test_counterfactual_flips_counts_pairs() -> None:
    rows = [{"base_id": "b1", "gender": "m", "race": "x", "predicted_positive": 1},
            {"base_id": "b1", "gender": "f", "race": "x", "predicted_positive": 0},
            {"base_id": "b1", "gender": "f", "race": "y", "predicted_positive": 0},
            {"base_id": "b2", "gender": "m", "race": "x", "predicted_positive": 1},
            {"base_id": "b2", "gender": "f", "race": "y", "predicted_positive": 1}]
    cf = fairness.counterfactual_flips(rows, ["gender", "race"])
    assert (cf["pairs"], cf["flipped_pairs"]) == (4, 2)
    assert cf["invariance_failures"] == 1 and cf["invariance_failure_rate"] == 0.5
    assert cf["by_attribute"]["gender"] == {"pairs": 3, "flipped_pairs": 2, "flip_rate": 2 / 3}
    assert cf["by_attribute"]["race"] == {"pairs": 3, "flipped_pairs": 1, "flip_rate": 1 / 3}


def test_wilson_interval_and_jsd() -> None:
    lo, hi = stats.wilson_interval(60, 100)
    assert lo == pytest.approx(50.20, abs=0.01) and hi == pytest.approx(69.06, abs=0.01)
    assert all(math.isnan(x) for x in stats.wilson_interval(0, 0))
    from bertdemo.audit.templates import jensen_shannon

    assert jensen_shannon(np.array([1.0, 0]), np.array([0, 1.0])) == pytest.approx(1.0)
    assert jensen_shannon(np.array([0.3, 0.7]), np.array([0.3, 0.7])) == pytest.approx(0.0)
    assert stats.sample_indices(10, 3, 1) == stats.sample_indices(10, 3, 1) != stats.sample_indices(10, 3, 2)
    assert stats.sample_indices(5, None, 0) == [0, 1, 2, 3, 4]


def test_thresholds_validation_and_defaults(tmp_path: Path) -> None:
    assert thresholds.load(None) == thresholds.DEFAULTS
    cfg = tmp_path / "t.yaml"
    cfg.write_text("classifier:\n  max_equalized_odds_difference: false\naudit:\n  n_boot: 10\n", encoding="utf-8")
    t = thresholds.load(cfg)
    assert t["classifier"]["max_equalized_odds_difference"] is False and t["audit"]["n_boot"] == 10
    assert t["crows_pairs"]["max_abs_deviation"] == 10.0
    with pytest.raises(InputError, match=r"audit\.n_boot must be a whole number"):
        thresholds.validate({"audit": {"n_boot": 2.5}})
    with pytest.raises(InputError, match="must be a number"):
        thresholds.validate({"audit": {"n_boot": False}})
    with pytest.raises(InputError, match=r"crows_pairs\.max_abs_deviation must be a number"):
        thresholds.validate({"crows_pairs": {"max_abs_deviation": True}})
    assert "max_mean_jsd" in thresholds.describe_defaults()


def test_parse_checks() -> None:
    assert runner.parse_checks(None) == list(runner.DEFAULT_CHECKS)
    assert runner.parse_checks(None, has_data=True)[-1] == "user_data"
    assert runner.parse_checks("stereoset, crows-pairs") == ["stereoset", "crows_pairs"]
    assert runner.parse_checks("all") == list(runner.CHECKS)
    with pytest.raises(InputError, match="unknown check"):
        runner.parse_checks("bogus")


def test_binarize_user_labels() -> None:
    labels = ["negative", "positive"]
    assert fairness.binarize_labels(["Positive", "negative", "1", "0"], labels, "y") == [1, 0, 1, 0]
    with pytest.raises(InputError, match="'great'"):
        fairness.binarize_labels(["great"], labels, "y")
    assert fairness.positive_index(["LABEL_0", "LABEL_1"]) == 1
    with pytest.raises(InputError):
        fairness.positive_index(["a", "b", "c"])


def test_stereoset_template_word_rule() -> None:
    from bertdemo.audit.stereoset import template_word

    assert template_word("The chess player was BLANK.", "The chess player was hispanic.") == "hispanic"
    assert template_word("BLANK people are here.", "Asian people are here.") == "Asian"
    with pytest.raises(ValueError):
        template_word("no blank", "x")


def test_toml_config_without_tomllib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.10 has no tomllib: the backport ``tomli`` is used when installed, else a clear message."""
    import sys
    import types

    cfg = tmp_path / "t.toml"
    cfg.write_text("[templates]\nmax_mean_jsd = 0.2\n", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "tomllib", None)  # as on 3.10
    monkeypatch.setitem(sys.modules, "tomli", None)
    with pytest.raises(InputError, match="needs tomli"):
        thresholds.load(cfg)
    seen: list[str] = []
    fake = types.SimpleNamespace(loads=lambda text: seen.append(text) or {"templates": {"max_mean_jsd": 0.2}})
    monkeypatch.setitem(sys.modules, "tomli", fake)  # stands in for the installed backport
    assert thresholds.load(cfg)["templates"]["max_mean_jsd"] == 0.2 and seen == [cfg.read_text(encoding="utf-8")]


def test_inconclusive_summary_says_what_to_do() -> None:
    from types import SimpleNamespace

    from bertdemo.audit.checks.base import Gate
    from bertdemo.ui.audit_adapter import next_step

    def check(needed: int | None, available: int) -> SimpleNamespace:
        g = Gate("m", 0.1, "<=", 0.1, "k", outcome="inconclusive", needed_n=needed)
        return SimpleNamespace(gates=[g], sampling={"used": 5, "available": available})

    line = next_step(SimpleNamespace(verdict="inconclusive", checks={"stereoset": check(216, 2106),
                                                                       "classifier": check(15313, 70)}))
    assert "raise the sample size" in line and "stereoset about 216" in line and "\n" not in line
    assert "classifier about 15,313 (it has 70" in line and "bertdemo audit" in line
    assert next_step(SimpleNamespace(verdict="pass", checks={})) == ""
    assert next_step(SimpleNamespace(verdict="inconclusive", checks={"templates": check(None, 0)})) == ""  # not size
