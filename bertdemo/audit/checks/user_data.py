"""The user-data check: sentiment group fairness on the user's own CSV (its group and label columns)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from bertdemo.audit.checks.base import Context, Outcome, Table, ThresholdSpec, sampling
from bertdemo.audit.checks.group_fairness import GroupFairnessCheck, fairness_by_attribute
from bertdemo.audit.stats import sample_indices
from bertdemo.errors import InputError


class UserDataFairness(GroupFairnessCheck):
    name = "user_data"
    title = "Group fairness on your data (sentiment)"
    default = False
    uses_user_data = True
    thresholds: ClassVar[ThresholdSpec] = {
        "max_demographic_parity_difference": (0.1, 0.0, 1.0, "as for classifier, per group column of your CSV"),
        "min_demographic_parity_ratio": (0.8, 0.0, 1.0, "as for classifier"),
        "max_equalized_odds_difference": (0.1, 0.0, 1.0, "as for classifier; only when a label column is given"),
    }

    def run(self, service: Any, ctx: Context) -> Outcome:
        from bertdemo.audit import fairness

        data = ctx.user_data
        if data is None:
            raise InputError("no CSV given; pass --data FILE --text-col ... --group-col ...", field="data")
        idx = sample_indices(len(data), ctx.limit, ctx.seed)
        y_true = None
        if data.labels is not None:
            y_true_all = fairness.binarize_labels(data.labels, service.labels, data.label_col or "label")
            y_true = [y_true_all[i] for i in idx]
        ctx.set_total(len(idx))
        y_pred, scores, labels = fairness.predict(service, [data.texts[i] for i in idx], progress=ctx.advance)
        results = fairness_by_attribute(y_pred, scores, {c: [data.groups[c][i] for i in idx] for c in data.group_cols},
                                        y_true, ctx.audit, ctx.seed)
        rows = []
        for k, i in enumerate(idx):
            row: dict[str, Any] = {"row": i + 1, "text": data.texts[i]}
            if data.labels is not None and y_true is not None:
                row.update({"label": data.labels[i], "label_positive": y_true[k]})
            row.update({col: data.groups[col][i] for col in data.group_cols})
            row.update({"predicted_label": labels[k], "predicted_positive": y_pred[k], "score_positive": scores[k]})
            rows.append(row)
        metrics = {"by_attribute": results, "positive_label": service.labels[fairness.positive_index(service.labels)],
                   "rows": len(rows), "file": {"name": data.path.rsplit("/", 1)[-1], "sha256": data.sha256},
                   "columns": {"text": data.text_col, "label": data.label_col, "groups": data.group_cols}}
        return Outcome(metrics, self.gates(metrics, ctx.thresholds[self.name]), rows,
                       sampling("rows", len(rows), len(data), ctx.limit, ctx.seed))

    def tables(self, check: dict[str, Any], examples: Sequence[dict[str, Any]]) -> list[Table]:
        out = super().tables(check, examples)
        if examples:
            cols = [k for k in examples[0] if k != "row"]
            out.append(Table(cols, [[r.get(k) for k in cols] for r in examples[:10]],
                             text="First rows of your data as scored:"))
        return out
