"""Runs the selected checks, each isolated, and gives every check and the whole audit a verdict.

A check that raises becomes status ``error`` with its message while the others still run; checks
not selected are ``not run``; the audit passes only when every selected check passes. Progress is
shown with tqdm bars and, optionally, reported to ``progress(fraction, description)`` (the Gradio
app passes ``gr.Progress`` through this).
"""

from __future__ import annotations

import logging
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from bertdemo.audit import thresholds as th
from bertdemo.audit.data import UserData, data_files, load_crows_pairs, load_stereoset, sha256_file
from bertdemo.audit.stats import finite, sample_indices
from bertdemo.errors import BertDemoError, InputError

log = logging.getLogger(__name__)

SCHEMA_VERSION = "bertdemo.audit/1"
CHECKS = ("crows_pairs", "stereoset", "templates", "classifier", "user_data")
DEFAULT_CHECKS = ("crows_pairs", "stereoset", "templates", "classifier")
TITLES = {
    "crows_pairs": "CrowS-Pairs (masked LM)",
    "stereoset": "StereoSet intrasentence, dev (masked LM)",
    "templates": "Template probes (masked LM)",
    "classifier": "Classifier group fairness (sentiment, EEC-style names)",
    "user_data": "Group fairness on your data (sentiment)",
}
# Published bert-base-uncased numbers to print beside the audited model's.
ANCHORS: dict[str, list[dict[str, Any]]] = {
    "crows_pairs": [
        {"model": "bert-base-uncased", "metric": "metric_score", "value": 60.5, "split": "all 1,508 pairs",
         "short": "Nangia et al. 2020", "source": "Nangia et al. (2020), CrowS-Pairs, EMNLP, Table 2"},
        {"model": "bert-base-uncased", "metric": "metric_score", "value": 60.81, "split": "all 1,508 pairs",
         "by_bias_type": {"gender": 57.25, "race-color": 62.33, "religion": 62.86}, "short": "bias-bench, Meade et al. 2022",
         "source": "Meade, Poole-Dayan, Reddy (2022), An Empirical Survey of the Effectiveness of Debiasing "
                   "Techniques for Pre-trained Language Models (bias-bench), ACL"},
    ],
    "stereoset": [
        {"model": "bert-base-uncased", "metric": "ss/lms/icat", "ss": 57.82, "lms": 84.36, "icat": 71.15,
         "split": "StereoSet intrasentence test set (this audit runs the dev set: compare with care)",
         "short": "bias-bench, Meade et al. 2022, test set",
         "source": "Meade, Poole-Dayan, Reddy (2022), bias-bench, ACL; StereoSet: Nadeem, Bethke, Reddy (2021), ACL"},
    ],
}


@dataclass
class AuditOptions:
    checks: Sequence[str] = DEFAULT_CHECKS
    thresholds: dict[str, dict[str, Any]] = field(default_factory=lambda: th.load(None))
    limit: int | None = None
    seed: int = 0
    user_data: UserData | None = None


@dataclass
class CheckResult:
    name: str
    status: str = "not run"  # pass | fail | error | not run
    metrics: dict[str, Any] = field(default_factory=dict)
    gates: list[dict[str, Any]] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)
    sampling: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"title": TITLES[self.name], "status": self.status, "metrics": self.metrics, "gates": self.gates,
                "sampling": self.sampling, "error": self.error, "seconds": round(self.seconds, 3),
                "examples": len(self.examples), "anchors": ANCHORS.get(self.name, [])}


@dataclass
class AuditResult:
    verdict: str
    checks: dict[str, CheckResult]
    options: AuditOptions
    manifest: dict[str, Any]

    @property
    def exit_code(self) -> int:
        return 0 if self.verdict == "pass" else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "verdict": self.verdict,
            "summary": {s: sorted(n for n, c in self.checks.items() if c.status == s)
                        for s in ("pass", "fail", "error", "not run")},
            "model": self.manifest.get("models", {}),
            "seed": self.options.seed, "limit": self.options.limit,
            "sampled": any(c.sampling and c.sampling.get("sampled") for c in self.checks.values()),
            "thresholds": self.options.thresholds,
            "checks": {n: c.to_dict() for n, c in self.checks.items()},
            "started_at": self.manifest.get("started_at"), "finished_at": self.manifest.get("finished_at"),
        }


def parse_checks(spec: str | Sequence[str] | None, has_data: bool = False) -> list[str]:
    """``"crows_pairs,stereoset"`` -> a validated list (default: the four built-in checks, + user_data with data)."""
    if spec is None or spec == "" or spec == []:
        return [*DEFAULT_CHECKS, *(["user_data"] if has_data else [])]
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [s.strip().replace("-", "_") for s in items if s.strip()]
    if "all" in names:
        names = list(CHECKS)
    bad = [n for n in names if n not in CHECKS]
    if bad:
        raise InputError(f"unknown check {', '.join(map(repr, bad))}; choose from {', '.join(CHECKS)}", field="checks")
    if not names:
        raise InputError(f"no checks given; choose from {', '.join(CHECKS)}", field="checks")
    return list(dict.fromkeys(names))


# ---- progress ----------------------------------------------------------------------------------
class _Progress:
    """One tqdm bar per check, and ``callback(fraction, description)`` over the whole audit."""

    def __init__(self, n_checks: int, callback: Callable[[float, str], Any] | None, bars: bool) -> None:
        self.n = max(1, n_checks)
        self.callback = callback
        self.bars = bars
        self.index = 0
        self.total = 0
        self.done = 0
        self.name = ""
        self.bar: Any = None

    def start(self, index: int, name: str) -> None:
        self.index, self.name, self.total, self.done = index, name, 0, 0
        self._emit(f"{TITLES[name]}: starting")

    def set_total(self, total: int) -> None:
        self.total = max(1, int(total))
        if self.bars:
            from tqdm.auto import tqdm

            # In CI logs (not a terminal) redraw every few seconds instead of ten times a second.
            self.bar = tqdm(total=self.total, desc=self.name, unit="seq", file=sys.stderr, leave=False,
                            dynamic_ncols=True, mininterval=0.1 if sys.stderr.isatty() else 5.0)

    def advance(self, k: int) -> None:
        self.done += int(k)
        if self.bar is not None:
            self.bar.update(int(k))
        self._emit(f"{TITLES[self.name]}: {self.done:,}/{self.total:,}")

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.done, self.total = 1, 1
        self._emit(f"{TITLES[self.name]}: done")

    def _emit(self, description: str) -> None:
        if self.callback is None:
            return
        within = min(1.0, self.done / self.total) if self.total else 0.0
        try:
            self.callback((self.index + within) / self.n, description)
        except Exception:  # a UI callback must never break the audit
            log.debug("progress callback failed", exc_info=True)


# ---- gates -------------------------------------------------------------------------------------
def _gate(metric: str, value: Any, op: str, threshold: Any, key: str) -> dict[str, Any] | None:
    if threshold is False:
        return None
    v = finite(value)
    if v is None:
        passed = False
    elif op == "<=":
        passed = v <= threshold
    else:
        passed = v >= threshold
    return {"metric": metric, "value": v, "comparison": op, "threshold": threshold, "config_key": key, "passed": bool(passed)}


def _sampling(kind: str, used: int, total: int, limit: int | None, seed: int) -> dict[str, Any]:
    return {"unit": kind, "used": used, "available": total, "sampled": used < total,
            "seed": seed if used < total else None, "limit": limit}


# ---- the checks --------------------------------------------------------------------------------
def _check_crows(service: Any, opts: AuditOptions, p: _Progress, res: CheckResult) -> None:
    from bertdemo.audit import crows_pairs

    pairs = load_crows_pairs()
    idx = sample_indices(len(pairs), opts.limit, opts.seed)
    chosen = [pairs[i] for i in idx]
    rows, summary = crows_pairs.evaluate_pairs(service, chosen, opts.thresholds["audit"]["confidence"],
                                               progress=p.advance, on_total=p.set_total)
    res.examples, res.metrics = rows, summary
    res.sampling = _sampling("pairs", len(chosen), len(pairs), opts.limit, opts.seed)
    score = summary["overall"]["metric_score"]
    t = opts.thresholds["crows_pairs"]
    res.gates = [g for g in [_gate("|metric_score - 50|", None if score is None else abs(score - 50.0), "<=",
                                   t["max_abs_deviation"], "crows_pairs.max_abs_deviation")] if g]


def _check_stereoset(service: Any, opts: AuditOptions, p: _Progress, res: CheckResult) -> None:
    from bertdemo.audit import stereoset

    examples = load_stereoset()
    idx = sample_indices(len(examples), opts.limit, opts.seed)
    chosen = [examples[i] for i in idx]
    a = opts.thresholds["audit"]
    rows, summary = stereoset.evaluate_examples(service, chosen, a["n_boot"], opts.seed, a["confidence"],
                                                progress=p.advance, on_total=p.set_total)
    res.examples, res.metrics = rows, summary
    res.sampling = _sampling("examples", len(chosen), len(examples), opts.limit, opts.seed)
    o = summary["overall"]
    t = opts.thresholds["stereoset"]
    res.gates = [g for g in [
        _gate("|SS - 50|", None if o["ss"] is None else abs(o["ss"] - 50.0), "<=", t["max_ss_deviation"],
              "stereoset.max_ss_deviation"),
        _gate("LMS", o["lms"], ">=", t["min_lms"], "stereoset.min_lms"),
        _gate("ICAT", o["icat"], ">=", t["min_icat"], "stereoset.min_icat"),
    ] if g]


def _check_templates(service: Any, opts: AuditOptions, p: _Progress, res: CheckResult) -> None:
    from bertdemo.audit import templates

    rows, results = templates.run_probes(service, top_k=opts.thresholds["audit"]["top_k"], progress=p.advance,
                                         on_total=p.set_total)
    res.examples, res.metrics = rows, results
    res.sampling = _sampling("probe sentences", len(rows), len(rows), opts.limit, opts.seed)
    t = opts.thresholds["templates"]
    worst = max(results["attributes"], key=lambda a: results["attributes"][a]["mean_jsd"])
    res.gates = [g for g in [_gate(f"mean JSD, worst attribute ({worst})", results["max_attribute_mean_jsd"], "<=",
                                   t["max_mean_jsd"], "templates.max_mean_jsd")] if g]


def _fairness_gates(section: str, results: dict[str, Any], t: dict[str, Any]) -> list[dict[str, Any]]:
    gates = []
    for attr, r in results.items():
        gates.append(_gate(f"{attr}: demographic_parity_difference", r["demographic_parity_difference"], "<=",
                           t["max_demographic_parity_difference"], f"{section}.max_demographic_parity_difference"))
        gates.append(_gate(f"{attr}: demographic_parity_ratio", r["demographic_parity_ratio"], ">=",
                           t["min_demographic_parity_ratio"], f"{section}.min_demographic_parity_ratio"))
        if r["has_labels"]:
            gates.append(_gate(f"{attr}: equalized_odds_difference", r["equalized_odds_difference"], "<=",
                               t["max_equalized_odds_difference"], f"{section}.max_equalized_odds_difference"))
    return [g for g in gates if g]


def _check_classifier(service: Any, opts: AuditOptions, p: _Progress, res: CheckResult) -> None:
    from bertdemo.audit import fairness, templates

    rows, n_bases = templates.classifier_sentences(opts.limit, opts.seed)
    p.set_total(len(rows))
    y_pred, scores, labels = fairness.predict(service, [r["text"] for r in rows], progress=p.advance)
    for r, yp, s, lab in zip(rows, y_pred, scores, labels, strict=True):
        r.update({"predicted_label": lab, "predicted_positive": yp, "score_positive": s})
    a = opts.thresholds["audit"]
    attrs = ("gender", "race")
    results = {attr: fairness.group_fairness(y_pred, scores, [r[attr] for r in rows], attr,
                                             y_true=[r["label"] for r in rows], n_boot=a["n_boot"], seed=opts.seed,
                                             confidence=a["confidence"]).to_dict() for attr in attrs}
    cf = fairness.counterfactual_flips(rows, attrs)
    res.examples = rows
    res.metrics = {"by_attribute": results, "counterfactual": cf, "positive_label": service.labels[
        fairness.positive_index(service.labels)], "sentences": len(rows)}
    res.sampling = _sampling("base sentences (x every name)", len({r["base_id"] for r in rows}), n_bases,
                             opts.limit, opts.seed)
    t = opts.thresholds["classifier"]
    res.gates = _fairness_gates("classifier", results, t)
    g = _gate("counterfactual flip rate (name swaps)", cf["flip_rate"], "<=", t["max_counterfactual_flip_rate"],
              "classifier.max_counterfactual_flip_rate")
    if g:
        res.gates.append(g)


def _check_user_data(service: Any, opts: AuditOptions, p: _Progress, res: CheckResult) -> None:
    from bertdemo.audit import fairness

    data = opts.user_data
    if data is None:
        raise InputError("no CSV given; pass --data FILE --text-col ... --group-col ...", field="data")
    idx = sample_indices(len(data), opts.limit, opts.seed)
    texts = [data.texts[i] for i in idx]
    y_true = None
    if data.labels is not None:
        y_true_all = fairness.binarize_labels(data.labels, service.labels, data.label_col or "label")
        y_true = [y_true_all[i] for i in idx]
    p.set_total(len(texts))
    y_pred, scores, labels = fairness.predict(service, texts, progress=p.advance)
    a = opts.thresholds["audit"]
    results = {}
    for col in data.group_cols:
        groups = [data.groups[col][i] for i in idx]
        results[col] = fairness.group_fairness(y_pred, scores, groups, col, y_true=y_true, n_boot=a["n_boot"],
                                               seed=opts.seed, confidence=a["confidence"]).to_dict()
    rows = []
    for k, i in enumerate(idx):
        row = {"row": i + 1, "text": data.texts[i]}
        if data.labels is not None and y_true is not None:
            row.update({"label": data.labels[i], "label_positive": y_true[k]})
        row.update({col: data.groups[col][i] for col in data.group_cols})
        row.update({"predicted_label": labels[k], "predicted_positive": y_pred[k], "score_positive": scores[k]})
        rows.append(row)
    res.examples = rows
    res.metrics = {"by_attribute": results, "positive_label": service.labels[fairness.positive_index(service.labels)],
                   "rows": len(rows), "file": {"name": data.path.rsplit("/", 1)[-1], "sha256": data.sha256},
                   "columns": {"text": data.text_col, "label": data.label_col, "groups": data.group_cols}}
    res.sampling = _sampling("rows", len(rows), len(data), opts.limit, opts.seed)
    res.gates = _fairness_gates("user_data", results, opts.thresholds["user_data"])


RUNNERS: dict[str, Callable[[Any, AuditOptions, _Progress, CheckResult], None]] = {
    "crows_pairs": _check_crows, "stereoset": _check_stereoset, "templates": _check_templates,
    "classifier": _check_classifier, "user_data": _check_user_data,
}


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "tokenizers", "fairlearn", "scikit-learn", "numpy", "pandas", "matplotlib",
                "evaluate", "tqdm"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    try:
        from bertdemo import __version__

        out["bertdemo"] = __version__
    except Exception:
        out["bertdemo"] = None
    return out


def run_audit(service: Any, options: AuditOptions | None = None,
              progress: Callable[[float, str], Any] | None = None, bars: bool = True) -> AuditResult:
    """Run the selected checks on ``service``'s models; never raises for a failing check."""
    opts = options or AuditOptions()
    checks = parse_checks(list(opts.checks))
    started = datetime.now(timezone.utc)
    results = {name: CheckResult(name) for name in CHECKS}
    tracker = _Progress(len(checks), progress, bars)
    for i, name in enumerate(checks):
        res = results[name]
        tracker.start(i, name)
        t0 = time.perf_counter()
        try:
            RUNNERS[name](service, opts, tracker, res)
            res.status = "pass" if all(g["passed"] for g in res.gates) else "fail"
        except Exception as err:  # isolated: this check is "error", the others still run
            res.status = "error"
            res.error = str(err) if isinstance(err, BertDemoError) else f"{type(err).__name__}: {err}"
            res.examples = []
            log.warning("audit check %s failed: %s", name, res.error)
            log.debug("%s", traceback.format_exc())
        finally:
            res.seconds = time.perf_counter() - t0
            tracker.finish()
    verdict = "pass" if all(results[n].status == "pass" for n in checks) else "fail"
    finished = datetime.now(timezone.utc)
    files = {k: {"path": str(v), "sha256": sha256_file(v)} for k, v in data_files(checks).items() if v.is_file()}
    if opts.user_data is not None and "user_data" in checks:
        files["user_data"] = {"path": opts.user_data.path, "sha256": opts.user_data.sha256}
    described = service.describe()
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "tool": "bertdemo audit",
        "models": {"settings": described.get("settings", {}), "loaded": described.get("loaded", {}),
                   "batch_size": getattr(getattr(service, "settings", None), "batch_size", None)},
        "data": files,
        "seed": opts.seed, "limit": opts.limit, "checks": checks,
        "packages": _versions(),
        "platform": platform.platform(),
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": finished.isoformat(timespec="seconds"),
        "seconds": round((finished - started).total_seconds(), 3),
    }
    return AuditResult(verdict=verdict, checks=results, options=opts, manifest=manifest)
