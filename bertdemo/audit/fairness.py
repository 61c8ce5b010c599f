"""Classifier group fairness, built on fairlearn's ``MetricFrame``.

For one sensitive attribute (a column of group values) and binary predictions (positive class of
the sentiment model), :func:`group_fairness` returns a :class:`GroupFairness` with fairlearn's
views: ``overall``, ``by_group``, ``difference`` and ``ratio`` (between groups) of

* ``positive_rate``: share predicted positive (fairlearn ``selection_rate``),
* ``mean_score``: mean predicted probability of the positive class,
* with labels: ``accuracy``, ``true_positive_rate``, ``false_positive_rate``,

plus ``demographic_parity_difference`` / ``_ratio`` and, with labels,
``equalized_odds_difference`` (fairlearn functions), and percentile bootstrap intervals for all of
them (a seeded resampling of rows that recomputes the same definitions with numpy,
:func:`fast_metrics`, tested equal to fairlearn on the full data). :func:`counterfactual_flips`
measures how often swapping only the name flips the predicted label (CheckList's INV test).
"""

from __future__ import annotations

import itertools
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bertdemo.audit.stats import bootstrap, finite
from bertdemo.errors import InputError

MIN_GROUP_ROWS = 10  # fewer rows in a group: no interval for between-group gaps (reported as too few)
CITATION = ("Weerts, Dudík, Edgar, Jalali, Lutz, Madaio (2023). Fairlearn: Assessing and Improving Fairness of AI "
            "Systems. JMLR 24. Templates in the spirit of Kiritchenko & Mohammad (2018), Examining Gender and Race "
            "Bias in Two Hundred Sentiment Analysis Systems (*SEM). Invariance tests: Ribeiro et al. (2020), CheckList.")


def _mean_score(y_true: Any, y_pred: Any, scores: Any) -> float:
    return float(np.mean(scores))


def _metric_fns(with_labels: bool) -> dict[str, Any]:
    from fairlearn.metrics import false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score

    fns: dict[str, Any] = {"positive_rate": selection_rate, "mean_score": _mean_score}
    if with_labels:
        fns.update({"accuracy": accuracy_score, "true_positive_rate": true_positive_rate,
                    "false_positive_rate": false_positive_rate})
    return fns


@dataclass
class GroupFairness:
    """One attribute's result: fairlearn's ``MetricFrame`` itself, the parity metrics, and intervals.

    The frame is kept (not flattened) so callers can use every fairlearn view; :meth:`to_dict` is
    the report's JSON of it. Intervals come from a seeded numpy bootstrap (:func:`fast_metrics`),
    not from ``MetricFrame(n_boot=...)``: measured on the classifier check (2,800 rows, 200
    resamples, 5 metrics) fairlearn's took 18-22 s per attribute against 0.4 s, on a 2-core machine.
    """

    attribute: str
    frame: Any  # fairlearn.metrics.MetricFrame
    counts: dict[str, int]
    parity: dict[str, float | None]  # demographic_parity_difference / _ratio, equalized_odds_difference
    ci: dict[str, Any] = field(default_factory=dict)
    has_labels: bool = False

    @property
    def metrics(self) -> list[str]:
        return [str(c) for c in self.frame.by_group.columns]

    @property
    def overall(self) -> dict[str, float | None]:
        return _series(self.frame.overall)

    @property
    def by_group(self) -> dict[str, dict[str, float | None]]:
        df = self.frame.by_group
        return {str(g): _series(df.loc[g]) for g in df.index}

    @property
    def difference(self) -> dict[str, float | None]:
        return _series(self.frame.difference())

    @property
    def ratio(self) -> dict[str, float | None]:
        return _series(self.frame.ratio())

    def __getattr__(self, name: str) -> Any:  # demographic_parity_difference, ... read from ``parity``
        parity = self.__dict__.get("parity", {})
        if name in parity:
            return parity[name]
        raise AttributeError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "metrics": self.metrics, "has_labels": self.has_labels,
                "overall": self.overall, "by_group": self.by_group, "counts": self.counts,
                "difference": self.difference, "ratio": self.ratio, **self.parity, "ci": self.ci}


def _series(s: Any) -> dict[str, float | None]:
    return {str(k): finite(v) for k, v in s.items()}


def _ci_keys(groups: list[str], names: list[str], has_labels: bool) -> list[tuple[str, ...]]:
    """Where each value of :func:`fast_metrics` goes in the ``ci`` dict, in its layout order."""
    return [*[("by_group", g, n) for g in groups for n in names], *[("difference", n) for n in names],
            *[("ratio", n) for n in names], ("demographic_parity_difference",), ("demographic_parity_ratio",),
            *([("equalized_odds_difference",)] if has_labels else [])]


def group_fairness(y_pred: Sequence[int], scores: Sequence[float], sensitive: Sequence[str], attribute: str,
                   y_true: Sequence[int] | None = None, n_boot: int = 200, seed: int = 0,
                   confidence: float = 0.95) -> GroupFairness:
    """fairlearn MetricFrame + parity metrics for one sensitive attribute (binary predictions)."""
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
    )

    yp = np.asarray(y_pred, dtype=int)
    sc = np.asarray(scores, dtype=float)
    sf = np.asarray([str(s) for s in sensitive], dtype=object)
    if len(yp) == 0:
        raise InputError("no rows to measure", field=attribute)
    if not (len(yp) == len(sc) == len(sf)) or (y_true is not None and len(y_true) != len(yp)):
        raise InputError("predictions, scores, groups and labels must have the same length", field=attribute)
    has_labels = y_true is not None
    yt = np.asarray(y_true, dtype=int) if has_labels else yp
    fns = _metric_fns(has_labels)
    frame = MetricFrame(metrics=fns, y_true=yt, y_pred=yp, sensitive_features=sf,
                        sample_params={"mean_score": {"scores": sc}})
    counts = {str(g): int(n) for g, n in zip(*np.unique(sf, return_counts=True), strict=True)}
    parity = {"demographic_parity_difference": finite(demographic_parity_difference(yt, yp, sensitive_features=sf)),
              "demographic_parity_ratio": finite(demographic_parity_ratio(yt, yp, sensitive_features=sf)),
              "equalized_odds_difference": finite(equalized_odds_difference(yt, yp, sensitive_features=sf))
              if has_labels else None}
    ci: dict[str, Any] = {}
    if n_boot > 0 and len(yp) > 1:
        groups = sorted(counts)
        keys = _ci_keys(groups, list(fns), has_labels)
        gi = np.searchsorted(np.array(groups, dtype=object), sf)
        smallest = min(counts.values())
        if smallest < MIN_GROUP_ROWS:  # a percentile interval of a between-group gap is not valid this small
            low = high = np.full(len(keys), np.nan)
            ci["note"] = (f"no intervals: the smallest group has {smallest} rows (needs {MIN_GROUP_ROWS}); "
                          "with so few rows any gap is as likely to be chance as not")
        else:
            with warnings.catch_warnings():  # a resample may miss a class within a group: nan, skipped
                warnings.simplefilter("ignore", RuntimeWarning)
                low, high = bootstrap(lambda idx: fast_metrics(yt[idx], yp[idx], sc[idx], gi[idx], len(groups), has_labels),
                                      len(yp), n_boot, seed, confidence, strata=gi)
            point = fast_metrics(yt, yp, sc, gi, len(groups), has_labels)
            with np.errstate(invalid="ignore"):  # a skewed bootstrap can miss its own estimate: widen to contain it
                low, high = np.fmin(low, point), np.fmax(high, point)
        for key, lo, hi in zip(keys, low, high):
            node = ci
            for part in key[:-1]:
                node = node.setdefault(part, {})
            node[key[-1]] = [finite(lo), finite(hi)]
        ci.update({"confidence": confidence, "n_boot": n_boot, "seed": seed,
                   "method": "percentile bootstrap, rows resampled within each group (seeded), widened where needed "
                             "to contain the estimate; resamples where a value is undefined are skipped"})
    return GroupFairness(attribute, frame, counts, parity, ci, has_labels)


def fast_metrics(yt: np.ndarray, yp: np.ndarray, sc: np.ndarray, g: np.ndarray, k: int, has_labels: bool) -> np.ndarray:
    """The same numbers as :func:`group_fairness` (fairlearn's definitions) with numpy, for bootstrapping.

    Layout: by-group metrics (k x m, row-major), difference (m), ratio (m), DPD, DPR, EOD; metrics in
    the order of :func:`_metric_fns`. Groups absent from a resample are nan and ignored.
    """
    n = np.bincount(g, minlength=k).astype(float)
    with np.errstate(all="ignore"):
        cols = [np.bincount(g, weights=yp, minlength=k) / n, np.bincount(g, weights=sc, minlength=k) / n]
        if has_labels:
            pos = np.bincount(g, weights=yt, minlength=k)
            tp = np.bincount(g, weights=yt * yp, minlength=k)
            fp = np.bincount(g, weights=(1 - yt) * yp, minlength=k)
            cols += [np.bincount(g, weights=(yt == yp).astype(float), minlength=k) / n, tp / pos, fp / (n - pos)]
        per = np.column_stack(cols)  # k x m
        per[n == 0] = np.nan
        hi = np.nanmax(per, axis=0) if np.isfinite(per).any() else np.full(per.shape[1], np.nan)
        lo = np.nanmin(per, axis=0) if np.isfinite(per).any() else np.full(per.shape[1], np.nan)
        diff = hi - lo
        ratio = np.where(hi > 0, lo / hi, np.nan)
        eod = float(max(diff[3], diff[4])) if has_labels else np.nan
    return np.concatenate([per.ravel(), diff, ratio, [diff[0], ratio[0], eod]])


def counterfactual_flips(rows: Sequence[dict[str, Any]], attributes: Sequence[str], base_key: str = "base_id",
                         pred_key: str = "predicted_positive", n_boot: int = 0, seed: int = 0,
                         confidence: float = 0.95) -> dict[str, Any]:
    """How often swapping only the person flips the predicted label.

    Within each base sentence, every pair of filled sentences is compared: ``flip_rate`` is the
    share of pairs with different predicted labels; ``by_attribute[a]`` counts only pairs whose
    people differ in attribute ``a`` (e.g. a female and a male name); ``invariance_failure_rate``
    is the share of base sentences where not every name gets the same label (CheckList INV).
    """
    by_base: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_base[r[base_key]].append(r)
    pairs = flips = failures = 0
    base_pairs, base_flips = [], []  # per base sentence, for an interval that respects the clustering
    attr_pairs = dict.fromkeys(attributes, 0)
    attr_flips = dict.fromkeys(attributes, 0)
    for members in by_base.values():
        preds = [int(m[pred_key]) for m in members]
        k, n = sum(preds), len(preds)
        pairs += n * (n - 1) // 2
        flips += k * (n - k)
        base_pairs.append(n * (n - 1) // 2)
        base_flips.append(k * (n - k))
        failures += int(0 < k < n)
        for a in attributes:
            tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            for m, p in zip(members, preds, strict=True):
                tally[str(m[a])][0] += 1
                tally[str(m[a])][1] += p
            for (na, ka), (nb, kb) in itertools.combinations(tally.values(), 2):
                attr_pairs[a] += na * nb
                attr_flips[a] += ka * (nb - kb) + (na - ka) * kb
    interval = None
    if n_boot > 0 and pairs and len(by_base) > 1:
        bp, bf = np.asarray(base_pairs, dtype=float), np.asarray(base_flips, dtype=float)
        with np.errstate(all="ignore"):
            low, high = bootstrap(lambda idx: bf[idx].sum() / bp[idx].sum(), len(bp), n_boot, seed, confidence)
        interval = [finite(min(low[0], flips / pairs)), finite(max(high[0], flips / pairs))]
    return {
        "base_sentences": len(by_base), "pairs": pairs, "flipped_pairs": flips,
        "flip_rate": finite(flips / pairs) if pairs else None,
        "flip_rate_ci": interval,  # bootstrap over base sentences (the pairs within one are not independent)
        "invariance_failures": failures,
        "invariance_failure_rate": finite(failures / len(by_base)) if by_base else None,
        "by_attribute": {a: {"pairs": attr_pairs[a], "flipped_pairs": attr_flips[a],
                             "flip_rate": finite(attr_flips[a] / attr_pairs[a]) if attr_pairs[a] else None}
                         for a in attributes},
    }


# ---- the positive class of a sentiment model ---------------------------------------------------
def positive_index(labels: Sequence[str]) -> int:
    """Which class counts as "positive": a label starting with "pos", else the second of two."""
    for i, lab in enumerate(labels):
        if str(lab).lower().startswith("pos"):
            return i
    if len(labels) == 2:
        return 1
    raise InputError(f"cannot tell which of the classifier's labels {list(labels)} is the positive one; "
                     "group fairness needs a label named 'positive'", field="sentiment_model")


def binarize_labels(values: Sequence[str], labels: Sequence[str], column: str) -> list[int]:
    """User labels (class names, case-insensitive, or class indices) -> 1 for the positive class."""
    pos = positive_index(labels)
    names = {str(lab).lower(): i for i, lab in enumerate(labels)}
    out = []
    bad: list[str] = []
    for v in values:
        key = str(v).strip().lower()
        if key in names:
            out.append(int(names[key] == pos))
            continue
        try:
            f = float(key)
        except ValueError:
            f = None
        if f is not None and f.is_integer() and 0 <= int(f) < len(labels):
            out.append(int(int(f) == pos))
        else:
            bad.append(str(v))
    if bad:
        shown = ", ".join(repr(b) for b in list(dict.fromkeys(bad))[:5])
        raise InputError(f"column {column!r} has values {shown} that are neither the classifier's labels "
                         f"({', '.join(labels)}) nor class numbers 0..{len(labels) - 1}", field="data")
    return out


def predict(service: Any, texts: Sequence[str], progress: Any = None) -> tuple[list[int], list[float], list[str]]:
    """(predicted positive 0/1, P(positive), predicted label) per text, in chunks the service accepts."""
    labels = service.labels
    pos = labels[positive_index(labels)]
    step = max(1, int(service.settings.max_batch_texts))
    y_pred: list[int] = []
    scores: list[float] = []
    names: list[str] = []
    for start in range(0, len(texts), step):
        for r in service.sentiment(list(texts[start:start + step]), progress=progress):
            y_pred.append(int(r.label == pos))
            scores.append(float(r.scores[pos]))
            names.append(r.label)
    return y_pred, scores, names
