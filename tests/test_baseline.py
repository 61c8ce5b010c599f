"""The regression gate (``bertdemo audit --baseline``): same model twice, and a planted regression."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from bertdemo.cli import main

BUNDLED = Path(__file__).resolve().parent.parent / "assets" / "models" / "bertdemo-mlm"


def _audit(out: Path, *extra: str, checks: str = "crows_pairs,stereoset,classifier", limit: int = 30) -> tuple[int, dict]:
    code = main(["audit", "--checks", checks, "--limit", str(limit), "--seed", "0", "--no-progress",
                 "--out", str(out), *extra])
    return code, json.loads((out / "report.json").read_text(encoding="utf-8"))


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def test_same_model_twice_is_no_difference(model_env, tmp_path: Path, capsys) -> None:
    code_a, first = _audit(tmp_path / "a")
    code_b, second = _audit(tmp_path / "b", "--baseline", str(tmp_path / "a"))
    comps = second["baseline"]["comparisons"]
    assert {c["check"] for c in comps} == {"crows_pairs", "stereoset", "classifier"}
    for c in comps:
        assert c["difference"] == 0.0 and c["interval"] == [0.0, 0.0] and c["changed_items"] == 0, c
        assert c["outcome"] == "pass" and "no difference" in c["note"]
    assert code_b == code_a and second["verdict"] == first["verdict"]  # the comparison adds no failure
    # the compared numbers are the gates' own (StereoSet's SS macro-averaged over targets, as reported)
    by = {c["check"]: c for c in comps}
    ss = first["checks"]["stereoset"]["metrics"]["overall"]["ss"]
    assert by["stereoset"]["baseline"] == pytest.approx(abs(ss - 50.0), abs=1e-9)
    crows = first["checks"]["crows_pairs"]["metrics"]["overall"]["metric_score"]
    assert by["crows_pairs"]["baseline"] == pytest.approx(abs(crows - 50.0), abs=1e-9)
    assert "against the baseline" in capsys.readouterr().out
    md = (tmp_path / "b" / "report.md").read_text(encoding="utf-8")
    assert "## Compared with the baseline" in md
    # the baseline may also be given as the report.json itself
    assert main(["audit", "--checks", "crows_pairs", "--limit", "30", "--seed", "0", "--no-progress",
                 "--out", str(tmp_path / "c"), "--baseline", str(tmp_path / "a" / "report.json")]) in (0, 1, 3)


def test_a_bad_baseline_is_bad_usage(model_env, tmp_path: Path, capsys) -> None:
    (tmp_path / "x.json").write_text('{"hello": 1}', encoding="utf-8")
    assert main(["audit", "--checks", "crows_pairs", "--out", str(tmp_path / "r"), "--baseline", str(tmp_path / "x.json")]) == 2
    assert "not a bertdemo audit report" in capsys.readouterr().err
    assert main(["audit", "--checks", "crows_pairs", "--out", str(tmp_path / "r"), "--baseline", str(tmp_path / "nope")]) == 2


@pytest.mark.skipif(not (BUNDLED / "model.safetensors").is_file(), reason="bundled model missing")
def test_a_planted_regression_fails_and_mcnemar_matches_scipy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scipy.stats import binomtest

    from benchmarks.modelfactory import train_briefly

    monkeypatch.setenv("BERTDEMO_MLM_MODEL", str(BUNDLED))
    _audit(tmp_path / "base", checks="crows_pairs", limit=40)
    sampled = _rows(tmp_path / "base" / "examples_crows_pairs.csv")
    # the candidate: the bundled model trained a little on the more stereotypical sentence of each sampled pair
    skewed = tmp_path / "skewed"
    shutil.copytree(BUNDLED, skewed)
    train_briefly(skewed, "pretraining", [r["sent_more"] for r in sampled.values()], steps=15, lr=5e-4)
    monkeypatch.setenv("BERTDEMO_MLM_MODEL", str(skewed))
    code, cand = _audit(tmp_path / "cand", "--baseline", str(tmp_path / "base"), checks="crows_pairs", limit=40)
    comp = cand["baseline"]["comparisons"][0]
    assert comp["outcome"] == "fail" and code == 1 and cand["verdict"] == "fail", comp
    assert comp["interval"][0] > comp["gate"]["threshold"] and comp["changed_items"] > 0
    # McNemar, independently: a two-sided exact binomial test on the discordant pairs of the two CSVs
    after = _rows(tmp_path / "cand" / "examples_crows_pairs.csv")
    b = sum(sampled[i]["counted"] == "1" and after[i]["counted"] == "0" for i in sampled)
    c = sum(sampled[i]["counted"] == "0" and after[i]["counted"] == "1" for i in sampled)
    assert (comp["test"]["became_anti"], comp["test"]["became_stereotypical"]) == (b, c)
    assert comp["test"]["p_value"] == pytest.approx(binomtest(min(b, c), b + c, 0.5).pvalue, rel=1e-9)
