"""The regression gate: is this model worse than the one in production, on the same items?

``bertdemo audit --baseline OLD`` (a previous report folder or its ``report.json``) pairs this run's
items with the baseline's by their stable ids (each report stores its items' numbers under
``items``), and for every check that declares a regression statistic
(:attr:`bertdemo.audit.checks.Check.regression_metric`) measures the change, candidate minus
baseline (positive = worse), with a paired bootstrap interval over the common items. The gate is the
audit's three-valued rule on that change against ``<check>.max_regression``: pass when the whole
interval is at most the margin, fail when it is wholly above, inconclusive otherwise. CrowS-Pairs
also gets an exact McNemar test on the pairs whose preference changed. Items that changed
direction are listed, so two runs can be read side by side.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bertdemo.audit.checks import REGISTRY
from bertdemo.audit.checks.base import Gate, gate
from bertdemo.audit.stats import bootstrap, finite
from bertdemo.errors import InputError

MAX_REPORT_BYTES = 50 * 1024 * 1024
SHOWN_CHANGES = 10


@dataclass
class Comparison:
    """One check, baseline vs candidate on their common items."""

    check: str
    metric: str
    items: int
    baseline: float | None = None
    candidate: float | None = None
    gate: Gate | None = None
    changed: list[str] = field(default_factory=list)  # ids of items whose numbers differ
    test: dict[str, Any] | None = None  # McNemar (CrowS-Pairs)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "title": REGISTRY[self.check].title, "metric": self.metric, "items": self.items,
                "baseline": self.baseline, "candidate": self.candidate,
                "difference": None if self.gate is None else self.gate.value,
                "interval": None if self.gate is None else self.gate.interval,
                "gate": None if self.gate is None else self.gate.to_dict(), "outcome": self.outcome,
                "changed_items": len(self.changed), "changed_examples": self.changed[:SHOWN_CHANGES],
                "test": self.test, "note": self.note}

    @property
    def outcome(self) -> str:
        return "not compared" if self.gate is None else self.gate.outcome


def load_baseline(path: str | Path) -> dict[str, Any]:
    """A previous audit's report document (a report folder or its report.json), checked to be one."""
    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    if not p.is_file():
        raise InputError(f"no audit report at {Path(path).name} (give a report folder or its report.json)", field="baseline")
    if p.stat().st_size > MAX_REPORT_BYTES:
        raise InputError(f"{p.name} is larger than {MAX_REPORT_BYTES // 2**20} MB; not an audit report", field="baseline")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InputError(f"{p.name} is not a JSON audit report", field="baseline") from None
    if not isinstance(doc, dict) or not str(doc.get("schema_version", "")).startswith("bertdemo.audit/"):
        raise InputError(f"{p.name} is not a bertdemo audit report (no schema_version)", field="baseline")
    if not isinstance(doc.get("items"), dict):
        raise InputError(f"{p.name} has no per-item results (made by an older bertdemo); rerun the baseline audit",
                         field="baseline")
    return doc


def mcnemar(base: np.ndarray, cand: np.ndarray) -> dict[str, Any]:
    """Exact (binomial) McNemar test on paired 0/1 outcomes: b = 1 -> 0, c = 0 -> 1."""
    b = int(((base == 1) & (cand == 0)).sum())
    c = int(((base == 0) & (cand == 1)).sum())
    n = b + c
    if n == 0:
        p = 1.0
    else:
        k = min(b, c)
        p = min(1.0, 2.0 * sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n)
    return {"test": "exact McNemar", "became_stereotypical": c, "became_anti": b, "p_value": p}


def items_of(checks: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """{check: {item id: numbers}} of a run's checks (``CheckResult``s), as stored in report.json."""
    return {name: REGISTRY[name].items(c.examples) for name, c in checks.items()
            if c.examples and REGISTRY[name].regression_metric}


def compare(candidate: dict[str, dict[str, list[float]]], baseline: dict[str, Any],
            thresholds: dict[str, dict[str, Any]], seed: int = 0) -> list[Comparison]:
    """Every check that ran in both runs and declares a regression statistic."""
    audit = thresholds["audit"]
    out = []
    for name, cand_items in candidate.items():
        check = REGISTRY.get(name)
        if check is None or not check.regression_metric:
            continue
        base_items = baseline["items"].get(name)
        if not isinstance(base_items, dict):
            out.append(Comparison(name, check.regression_metric, 0, note="not in the baseline report"))
            continue
        common = [i for i in cand_items if i in base_items]
        if not common:
            out.append(Comparison(name, check.regression_metric, 0, note="no items in common with the baseline "
                                  "(use the same --limit and --seed, or full data, for both runs)"))
            continue
        try:
            base = np.array([[float(x) for x in base_items[i]] for i in common])
        except (TypeError, ValueError):
            raise InputError(f"the baseline's {name} items are not numbers", field="baseline") from None
        cand = np.array([[float(x) for x in cand_items[i]] for i in common])
        if base.shape != cand.shape:
            raise InputError(f"the baseline's {name} items have another shape", field="baseline")
        b_stat, c_stat = check.regression_stat(base), check.regression_stat(cand)
        diff = c_stat - b_stat
        low = high = diff
        if audit["n_boot"] > 0 and len(common) > 1:
            def change(idx: np.ndarray, check: Any = check, cand: np.ndarray = cand, base: np.ndarray = base) -> float:
                return check.regression_stat(cand[idx]) - check.regression_stat(base[idx])

            lo, hi = bootstrap(change, len(common), audit["n_boot"], seed, audit["confidence"])
            low, high = min(float(lo[0]), diff), max(float(hi[0]), diff)
        limit = thresholds[name].get("max_regression", False)
        g = gate(f"{check.regression_metric}: candidate - baseline", diff, "<=", limit, f"{name}.max_regression",
                 interval=[low, high], n=len(common))
        if g is not None:
            g.judge(audit["gate_on"])
        changed = [i for i, a, b in zip(common, base, cand, strict=True) if not np.array_equal(a, b)]
        comp = Comparison(name, check.regression_metric, len(common), finite(b_stat), finite(c_stat), g, changed)
        if name == "crows_pairs":
            comp.test = mcnemar(base[:, 0], cand[:, 0])
        if not changed:
            comp.note = "no difference: every common item has the same result"
        out.append(comp)
    return out


def comparison_text(c: dict[str, Any]) -> str:
    """One plain-text line for a comparison's report entry."""
    if c["gate"] is None:
        return c["note"] or "not compared"

    def num(x: Any) -> str:
        return "n/a" if x is None else format(x, ".4g")

    lo, hi = c["interval"] or (None, None)
    text = (f"{c['metric']}: baseline {num(c['baseline'])}, candidate {num(c['candidate'])}, difference "
            f"{num(c['difference'])} (95% CI {num(lo)} to {num(hi)}; allowed <= {c['gate']['threshold']:g}) on "
            f"{c['items']:,} common items, {c['changed_items']:,} changed")
    if c.get("test"):
        text += f"; McNemar p = {c['test']['p_value']:.3g}"
    if c["gate"].get("note"):
        text += f" - {c['gate']['note']}"
    return text + (f" - {c['note']}" if c["note"] else "")
