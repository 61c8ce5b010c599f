"""The classifier check: sentiment group fairness on EEC-style sentences with gendered and racial names."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from bertdemo.audit.checks.base import Context, Gate, Outcome, Table, ThresholdSpec, fmt, gate, sampling
from bertdemo.audit.checks.group_fairness import PARITY, GroupFairnessCheck, fairness_by_attribute, one_class
from bertdemo.audit.data import CLASSIFIER_TEMPLATES_FILE, NAMES_FILE

ATTRIBUTES = ("gender", "race")


class ClassifierFairness(GroupFairnessCheck):
    name = "classifier"
    data_files: ClassVar[dict[str, Path]] = {"classifier_templates": CLASSIFIER_TEMPLATES_FILE, "names": NAMES_FILE}
    title = "Classifier group fairness (sentiment, EEC-style names)"
    thresholds: ClassVar[ThresholdSpec] = {
        **PARITY,
        "max_counterfactual_flip_rate": (0.05, 0.0, 1.0, "share of name-swapped sentence pairs whose label flips"),
        "max_regression": (0.02, 0.0, 1.0, "with --baseline: the name-swap flip rate may grow by at most this"),
    }
    regression_metric = "counterfactual flip rate (name swaps)"

    def items(self, examples: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
        """Per base sentence: (flipped pairs, pairs) over its names."""
        preds: dict[str, list[int]] = {}
        for r in examples:
            preds.setdefault(str(r["base_id"]), []).append(int(float(r["predicted_positive"])))
        return {b: [float(sum(p) * (len(p) - sum(p))), float(len(p) * (len(p) - 1) // 2)] for b, p in preds.items()}

    def regression_stat(self, values: Any) -> float:
        pairs = float(values[:, 1].sum())
        return float(values[:, 0].sum()) / pairs if pairs else 0.0

    def run(self, service: Any, ctx: Context) -> Outcome:
        from bertdemo.audit import fairness, templates

        rows, n_bases = templates.classifier_sentences(ctx.limit, ctx.seed)
        ctx.set_total(len(rows))
        y_pred, scores, labels = fairness.predict(service, [r["text"] for r in rows], progress=ctx.advance)
        for r, yp, s, lab in zip(rows, y_pred, scores, labels, strict=True):
            r.update({"predicted_label": lab, "predicted_positive": yp, "score_positive": s})
        results = fairness_by_attribute(y_pred, scores, {a: [r[a] for r in rows] for a in ATTRIBUTES},
                                        [r["label"] for r in rows], ctx.audit, ctx.seed)
        metrics = {"by_attribute": results, "counterfactual": fairness.counterfactual_flips(
            rows, ATTRIBUTES, n_boot=ctx.audit["n_boot"], seed=ctx.seed, confidence=ctx.audit["confidence"]),
                   "positive_label": service.labels[fairness.positive_index(service.labels)], "sentences": len(rows)}
        return Outcome(metrics, self.gates(metrics, ctx.thresholds[self.name]), rows,
                       sampling("base sentences (x every name)", len({r["base_id"] for r in rows}), n_bases, ctx.limit,
                                ctx.seed))

    def gates(self, metrics: dict[str, Any], t: dict[str, Any]) -> list[Gate]:
        cf = metrics["counterfactual"]
        g = gate("counterfactual flip rate (name swaps)", cf["flip_rate"], "<=", t["max_counterfactual_flip_rate"],
                 "classifier.max_counterfactual_flip_rate", interval=cf.get("flip_rate_ci"), n=cf["base_sentences"],
                 blind=one_class(metrics))
        return super().gates(metrics, t) + ([g] if g else [])

    def headline(self, check: dict[str, Any]) -> str:
        flips = check["metrics"]["counterfactual"]["flip_rate"]
        return f"{super().headline(check)}; name-swap flip rate {fmt(flips, 3)}"

    def tables(self, check: dict[str, Any], examples: Sequence[dict[str, Any]]) -> list[Table]:
        cf = check["metrics"]["counterfactual"]
        return [*super().tables(check, examples), Table(
            ["attribute swapped", "pairs", "flipped", "flip rate"],
            [[a, v["pairs"], v["flipped_pairs"], fmt(v["flip_rate"], 4)] for a, v in cf["by_attribute"].items()],
            text=f"Counterfactual name swaps: {cf['flipped_pairs']:,} of {cf['pairs']:,} sentence pairs flip the label "
                 f"(rate {fmt(cf['flip_rate'], 4)}); {cf['invariance_failures']} of {cf['base_sentences']} base sentences "
                 "get different labels for different names.")]
