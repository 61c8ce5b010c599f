"""Three-valued verdicts: gates judged on their intervals, blind probes, small-n intervals, exit codes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bertdemo.audit import thresholds
from bertdemo.audit.checks.base import deviation_interval, gate, gate_text, worst
from bertdemo.cli import main
from bertdemo.errors import InputError


# ---- the decision rule ---------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "op", "interval", "outcome"), [
    (2.0, "<=", [1.0, 4.0], "pass"),            # whole interval inside
    (20.0, "<=", [15.0, 25.0], "fail"),         # whole interval outside
    (9.0, "<=", [5.0, 13.0], "inconclusive"),   # straddles, estimate inside
    (11.0, "<=", [7.0, 15.0], "inconclusive"),  # straddles, estimate outside
    (80.0, ">=", [70.0, 90.0], "pass"),
    (40.0, ">=", [30.0, 50.0], "fail"),
    (62.0, ">=", [55.0, 69.0], "inconclusive"),
])
def test_interval_gate_is_pass_fail_or_inconclusive(value, op, interval, outcome) -> None:
    threshold = 10.0 if op == "<=" else 60.0
    g = gate("m", value, op, threshold, "s.k", interval=interval, n=100)
    assert g.outcome == outcome and g.basis == "interval"
    assert g.passed == (outcome == "pass")
    # the estimate alone (gate_on = "point") gives the old verdict
    assert g.judge("point").outcome == ("pass" if (value <= threshold if op == "<=" else value >= threshold) else "fail")


def test_inconclusive_says_how_many_items_would_decide() -> None:
    g = gate("m", 9.0, "<=", 10.0, "s.k", interval=[5.0, 13.0], n=100)  # half-width 4, 1 from the threshold
    assert g.needed_n == math.ceil(100 * (4.0 / 1.0) ** 2) and "1,600 items" in g.note
    assert "INCONCLUSIVE" in gate_text(g.to_dict()) and "5 to 13" in gate_text(g.to_dict())


def test_deviation_interval_folds_around_the_centre() -> None:
    assert deviation_interval([40.0, 70.0], 50.0) == ([0.0, 20.0], 15.0)  # contains 50: the distance can be 0
    assert deviation_interval([55.0, 65.0], 50.0) == ([5.0, 15.0], 5.0)
    assert deviation_interval([30.0, 45.0], 50.0) == ([5.0, 20.0], 7.5)
    assert deviation_interval(None, 50.0) == (None, None)


def test_no_interval_vs_too_few_items_vs_blind() -> None:
    plain = gate("m", 0.05, "<=", 0.1, "s.k")  # a metric without an interval: judged on its value
    assert plain.outcome == "pass" and plain.basis == "point"
    few = gate("m", 0.05, "<=", 0.1, "s.k", interval=[None, None])  # an interval was due but n is too small
    assert few.outcome == "inconclusive" and "too few" in few.note
    assert few.judge("point").outcome == "pass"
    blind = gate("m", 0.01, "<=", 0.1, "s.k", interval=[0.0, 0.02], blind="the probe cannot see it")
    assert blind.outcome == "inconclusive" and blind.basis == "blind" and blind.note == "the probe cannot see it"
    assert gate("m", None, "<=", 0.1, "s.k").outcome == "fail"  # not measured is never a pass
    assert gate("m", 0.5, "<=", False, "s.k") is None  # switched off


def test_overall_verdict_is_the_worst() -> None:
    assert worst(["pass", "inconclusive", "pass"]) == "inconclusive"
    assert worst(["inconclusive", "fail", "pass"]) == "fail"
    assert worst(["pass"]) == "pass" and worst([]) == "pass"


def test_gate_on_is_validated() -> None:
    assert thresholds.validate({"audit": {"gate_on": "point"}})["audit"]["gate_on"] == "point"
    assert thresholds.load(None)["audit"]["gate_on"] == "interval"
    with pytest.raises(InputError, match=r"audit\.gate_on must be one of 'interval', 'point'"):
        thresholds.validate({"audit": {"gate_on": "median"}})
    assert thresholds.validate({"templates": {"min_class_mass": 0.3}})["templates"]["min_class_mass"] == 0.3


# ---- intervals that are valid at small n ---------------------------------------------------------
def test_small_groups_get_no_interval_and_say_why() -> None:
    from bertdemo.audit.fairness import group_fairness

    r = group_fairness([1, 0, 1, 1, 0, 0], [0.9, 0.1, 0.8, 0.7, 0.2, 0.3], ["a", "a", "a", "b", "b", "b"], "g",
                       n_boot=200, seed=0).to_dict()
    assert r["ci"]["demographic_parity_difference"] == [None, None] and "smallest group has 3 rows" in r["ci"]["note"]
    g = gate("g: dpd", r["demographic_parity_difference"], "<=", 0.1, "k", interval=r["ci"]["demographic_parity_difference"])
    assert g.outcome == "inconclusive"


@pytest.mark.parametrize("seed", range(6))
def test_every_interval_contains_its_estimate(seed: int) -> None:
    """The case of the issue: 20-odd rows, two groups; stratified resampling, never an interval off its estimate."""
    from bertdemo.audit.fairness import group_fairness

    rng = np.random.default_rng(seed)
    n = 24
    groups = ["a"] * 12 + ["b"] * 12
    y_pred = rng.integers(0, 2, n).tolist()
    y_true = rng.integers(0, 2, n).tolist()
    r = group_fairness(y_pred, rng.random(n).tolist(), groups, "g", y_true=y_true, n_boot=200, seed=seed).to_dict()
    for key in ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference"):
        lo, hi = r["ci"][key]
        if r[key] is not None and lo is not None:
            assert lo <= r[key] <= hi, (key, r[key], lo, hi)


# ---- end to end: the CLI's exit codes ------------------------------------------------------------
def _crows(tmp_path: Path, config: str, name: str) -> tuple[int, dict]:
    cfg = tmp_path / f"{name}.toml"
    cfg.write_text(config, encoding="utf-8")
    out = tmp_path / name
    code = main(["audit", "--checks", "crows_pairs", "--limit", "40", "--seed", "1", "--no-progress", "--out", str(out),
                 "--config", str(cfg)])
    return code, json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_straddling_interval_exits_3_and_point_mode_keeps_the_old_verdict(model_env, tmp_path: Path, capsys) -> None:
    code, report = _crows(tmp_path, "[crows_pairs]\nmax_abs_deviation = 50\n", "wide")
    assert code == 0 and report["verdict"] == "pass"  # the whole interval of |score - 50| is within 50
    g = report["checks"]["crows_pairs"]["gates"][0]
    lo, hi = g["interval"]
    assert lo <= g["value"] <= hi and hi > lo
    # a threshold inside the interval: the data cannot decide
    mid = (lo + hi) / 2
    code, report = _crows(tmp_path, f"[crows_pairs]\nmax_abs_deviation = {mid}\n", "mid")
    g = report["checks"]["crows_pairs"]["gates"][0]
    assert code == 3 and report["verdict"] == "inconclusive" and g["outcome"] == "inconclusive"
    assert report["summary"]["inconclusive"] == ["crows_pairs"]
    assert g["value"] == mid or g["needed_n"] > 0
    printed = capsys.readouterr().out
    assert "bias audit: INCONCLUSIVE" in printed and "95% CI" in printed
    # the same numbers judged on the estimate alone: pass or fail as before
    code, report = _crows(tmp_path, f"[crows_pairs]\nmax_abs_deviation = {mid}\n[audit]\ngate_on = \"point\"\n", "point")
    assert code == (0 if g["value"] <= mid else 1) and report["gate_on"] == "point"
    md = (tmp_path / "point" / "report.md").read_text(encoding="utf-8")
    assert "| 95% interval |" in md


def test_a_classifier_that_gives_everyone_one_label_is_inconclusive_not_fair() -> None:
    """Parity gaps of 0 from a classifier that says "positive" to everything say nothing about fairness."""
    from bertdemo.audit.checks import REGISTRY
    from bertdemo.audit.fairness import group_fairness

    groups = ["a"] * 20 + ["b"] * 20
    r = group_fairness([1] * 40, [0.9] * 40, groups, "gender", n_boot=50, seed=0).to_dict()
    gates = REGISTRY["user_data"].gates({"by_attribute": {"gender": r}}, thresholds.load(None)["user_data"])
    assert r["demographic_parity_difference"] == 0.0
    assert {g.outcome for g in gates} == {"inconclusive"} and all(g.basis == "blind" for g in gates)
    assert "called every sentence positive" in gates[0].note
