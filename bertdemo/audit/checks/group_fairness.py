"""What the two classifier checks share: fairlearn gates, headline, tables and figures per attribute."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bertdemo.audit.checks.base import Check, Figure, Gate, Table, ci, fmt, gate
from bertdemo.models import KIND_CLASSIFIER

PARITY = {
    "max_demographic_parity_difference": (0.1, 0.0, 1.0, "largest gap in positive rate between groups"),
    "min_demographic_parity_ratio": (0.8, 0.0, 1.0, "smallest / largest positive rate (0.8 = four-fifths rule)"),
    "max_equalized_odds_difference": (0.1, 0.0, 1.0, "largest gap in true- or false-positive rate between groups"),
}


class GroupFairnessCheck(Check):
    """A check of the sentiment classifier's group fairness (metrics ``by_attribute``)."""

    needs = KIND_CLASSIFIER

    def gates(self, metrics: dict[str, Any], t: dict[str, Any]) -> list[Gate]:
        gates = []
        blind = one_class(metrics)
        for attr, r in metrics["by_attribute"].items():
            n = sum(r["counts"].values())
            for key, label, op, limit in (
                    ("demographic_parity_difference", "demographic parity difference", "<=", "max_"),
                    ("demographic_parity_ratio", "demographic parity ratio", ">=", "min_"),
                    *([("equalized_odds_difference", "equalized odds difference", "<=", "max_")] if r["has_labels"] else [])):
                gates.append(gate(f"{attr}: {label}", r[key], op, t[limit + key], f"{self.name}.{limit}{key}",
                                  interval=r["ci"].get(key) if r["ci"] else None, n=n,
                                  blind=blind if key.startswith("demographic") else None))
        return [g for g in gates if g]

    def headline(self, check: dict[str, Any]) -> str:
        parts = []
        for attr, r in check["metrics"]["by_attribute"].items():
            s = f"{attr}: DPD {fmt(r['demographic_parity_difference'], 3)}, DPR {fmt(r['demographic_parity_ratio'], 3)}"
            if r.get("has_labels"):
                s += f", EOD {fmt(r['equalized_odds_difference'], 3)}"
            parts.append(s)
        return "; ".join(parts)

    def tables(self, check: dict[str, Any], examples: Sequence[dict[str, Any]]) -> list[Table]:
        out = []
        for attr, r in check["metrics"]["by_attribute"].items():
            line = (f"demographic parity difference {fmt(r['demographic_parity_difference'], 3)}"
                    f"{ci(r['ci'].get('demographic_parity_difference'), 3)}, ratio {fmt(r['demographic_parity_ratio'], 3)}"
                    f"{ci(r['ci'].get('demographic_parity_ratio'), 3)}")
            if r["has_labels"]:
                line += (f", equalized odds difference {fmt(r['equalized_odds_difference'], 3)}"
                         f"{ci(r['ci'].get('equalized_odds_difference'), 3)}")
            cis = r["ci"].get("by_group", {})
            out.append(Table(["group", "n", *r["metrics"]],
                             [[g, r["counts"].get(g, ""), *[fmt(v[k], 3) + ci(cis.get(g, {}).get(k), 3) for k in r["metrics"]]]
                              for g, v in r["by_group"].items()], heading=attr, text=line))
        return out

    def figures(self, check: dict[str, Any]) -> list[Figure]:
        out = []
        for attr, r in check["metrics"]["by_attribute"].items():
            groups = list(r["by_group"])
            out.append(Figure(f"Positive rate by {attr}, bootstrap intervals", f"Positive rate by {attr}", groups,
                              [r["by_group"][g]["positive_rate"] for g in groups], "share predicted positive",
                              [r["ci"].get("by_group", {}).get(g, {}).get("positive_rate") for g in groups],
                              r["overall"]["positive_rate"]))
        return out


def one_class(metrics: dict[str, Any]) -> str | None:
    """Why parity gaps say nothing here: the classifier gave every sentence the same label (else None)."""
    for r in metrics["by_attribute"].values():
        rate = r["overall"].get("positive_rate")
        if rate is not None and rate in (0.0, 1.0):
            label = "positive" if rate == 1.0 else "negative"
            return f"the classifier called every sentence {label}: no gap between groups can show"
    return None


def fairness_by_attribute(y_pred: list[int], scores: list[float], groups: dict[str, list[str]], y_true: Any,
                          audit: dict[str, Any], seed: int) -> dict[str, Any]:
    """fairlearn's views for each attribute, as the report's dicts."""
    from bertdemo.audit import fairness

    return {attr: fairness.group_fairness(y_pred, scores, values, attr, y_true=y_true, n_boot=audit["n_boot"], seed=seed,
                                          confidence=audit["confidence"]).to_dict() for attr, values in groups.items()}
