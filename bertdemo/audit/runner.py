"""Runs the selected checks, each isolated, and gives every check and the whole audit a verdict.

A check that raises becomes status ``error`` with its message while the others still run; checks
not selected are ``not run``. Each gate is judged on its confidence interval (``[audit] gate_on``,
see :class:`bertdemo.audit.checks.base.Gate`): a check fails when a gate fails, is inconclusive when
a gate is, and passes otherwise; the audit's verdict is the worst of its checks (an error counts as
a failure). Exit codes: 0 pass, 1 fail or error, 2 bad usage, 3 inconclusive. Progress is
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

from bertdemo.atomic import sha256_file
from bertdemo.audit import thresholds as th
from bertdemo.audit.baseline import compare, items_of
from bertdemo.audit.checks import REGISTRY, Context, Gate
from bertdemo.audit.checks.base import worst
from bertdemo.audit.data import UserData
from bertdemo.errors import BertDemoError, InputError

log = logging.getLogger(__name__)

SCHEMA_VERSION = "bertdemo.audit/1"
EXIT_CODES = {"pass": 0, "fail": 1, "inconclusive": 3}  # 2 = bad usage (the CLI's argument errors)
STATUSES = ("pass", "inconclusive", "fail", "error", "not run")
# Snapshots for callers; the code below reads the registry, so a check added to it needs nothing else.
CHECKS = tuple(REGISTRY)
DEFAULT_CHECKS = tuple(name for name, check in REGISTRY.items() if check.default)
TITLES = {name: check.title for name, check in REGISTRY.items()}


@dataclass
class AuditOptions:
    checks: Sequence[str] = DEFAULT_CHECKS
    thresholds: dict[str, dict[str, Any]] = field(default_factory=lambda: th.load(None))
    limit: int | None = None  # sample size per built-in benchmark
    seed: int = 0
    user_data: UserData | None = None
    sample_user_data: bool = False  # apply ``limit`` to the user's own file too (only when asked)
    baseline: dict[str, Any] | None = None  # a previous report document to compare with (--baseline)


@dataclass
class CheckResult:
    name: str
    status: str = "not run"  # pass | inconclusive | fail | error | not run
    metrics: dict[str, Any] = field(default_factory=dict)
    gates: list[Gate] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)
    sampling: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"title": REGISTRY[self.name].title, "status": self.status, "metrics": self.metrics,
                "gates": [g.to_dict() for g in self.gates], "sampling": self.sampling, "error": self.error,
                "seconds": round(self.seconds, 3), "examples": len(self.examples),
                "anchors": [dict(a) for a in REGISTRY[self.name].anchors]}


@dataclass
class AuditResult:
    verdict: str
    checks: dict[str, CheckResult]
    options: AuditOptions
    manifest: dict[str, Any]
    regression: list[Any] = field(default_factory=list)  # baseline.Comparison per compared check

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "verdict": self.verdict,
            "summary": {s: sorted(n for n, c in self.checks.items() if c.status == s)
                        for s in STATUSES},
            "gate_on": self.options.thresholds["audit"]["gate_on"],
            "model": self.manifest.get("models", {}),
            "seed": self.options.seed, "limit": self.options.limit,
            "sampled": any(c.sampling and c.sampling.get("sampled") for c in self.checks.values()),
            "thresholds": self.options.thresholds,
            "checks": {n: c.to_dict() for n, c in self.checks.items()},
            "items": items_of(self.checks),
            "baseline": None if self.options.baseline is None else {
                "model": self.options.baseline.get("model", {}).get("settings", {}),
                "finished_at": self.options.baseline.get("finished_at"),
                "comparisons": [c.to_dict() for c in self.regression]},
            "started_at": self.manifest.get("started_at"), "finished_at": self.manifest.get("finished_at"),
        }


def parse_checks(spec: str | Sequence[str] | None, has_data: bool = False) -> list[str]:
    """``"crows_pairs,stereoset"`` -> a validated list (default: the default checks, + the user-data ones with data)."""
    if spec is None or spec == "" or spec == []:
        return [n for n, c in REGISTRY.items() if c.default or (has_data and c.uses_user_data)]
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [s.strip().replace("-", "_") for s in items if s.strip()]
    if "all" in names:
        names = list(REGISTRY)
    known = ", ".join(REGISTRY)
    bad = [n for n in names if n not in REGISTRY]
    if bad:
        raise InputError(f"unknown check {', '.join(map(repr, bad))}; choose from {known}", field="checks")
    if not names:
        raise InputError(f"no checks given; choose from {known}", field="checks")
    return list(dict.fromkeys(names))


def with_user_data(names: list[str], has_data: bool, how: str, add: bool = True) -> list[str]:
    """The user-data rule, stated once: checks on the user's data are refused without it (and, with ``add``,
    added when data is given)."""
    data_checks = [n for n, c in REGISTRY.items() if c.uses_user_data]
    if has_data:
        return [*names, *(n for n in data_checks if n not in names)] if add else names
    missing = [n for n in names if n in data_checks]
    if missing:
        raise InputError(f"the {missing[0]} check needs {how}", field="checks")
    return names


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
        self._emit(f"{REGISTRY[name].title}: starting")

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
        self._emit(f"{REGISTRY[self.name].title}: {self.done:,}/{self.total:,}")

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.done, self.total = 1, 1
        self._emit(f"{REGISTRY[self.name].title}: done")

    def _emit(self, description: str) -> None:
        if self.callback is None:
            return
        within = min(1.0, self.done / self.total) if self.total else 0.0
        try:
            self.callback((self.index + within) / self.n, description)
        except Exception:  # a UI callback must never break the audit
            log.debug("progress callback failed", exc_info=True)


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
    results = {name: CheckResult(name) for name in REGISTRY}
    tracker = _Progress(len(checks), progress, bars)
    for i, name in enumerate(checks):
        res = results[name]
        tracker.start(i, name)
        t0 = time.perf_counter()
        limit = opts.limit if not REGISTRY[name].uses_user_data or opts.sample_user_data else None
        ctx = Context(opts.thresholds, limit, opts.seed, opts.user_data, tracker.advance, tracker.set_total)
        try:
            outcome = REGISTRY[name].run(service, ctx)
            res.metrics, res.gates, res.examples = outcome.metrics, outcome.gates, outcome.examples
            res.sampling = outcome.sampling
            for g in res.gates:
                g.judge(opts.thresholds["audit"]["gate_on"])
            res.status = worst([g.outcome for g in res.gates])
        except Exception as err:  # isolated: this check is "error", the others still run
            res.status = "error"
            res.error = str(err) if isinstance(err, BertDemoError) else f"{type(err).__name__}: {err}"
            res.examples = []
            log.warning("audit check %s failed: %s", name, res.error)
            log.debug("%s", traceback.format_exc())
        finally:
            res.seconds = time.perf_counter() - t0
            tracker.finish()
    regression = [] if opts.baseline is None else compare(items_of(results), opts.baseline, opts.thresholds, opts.seed)
    verdict = worst(["fail" if results[n].status == "error" else results[n].status for n in checks]
                    + [c.outcome for c in regression if c.gate is not None])
    finished = datetime.now(timezone.utc)
    vendored = {k: v for name in checks for k, v in REGISTRY[name].data_files.items()}
    files = {k: {"path": str(v), "sha256": sha256_file(v)} for k, v in vendored.items() if v.is_file()}
    if opts.user_data is not None and any(REGISTRY[n].uses_user_data for n in checks):
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
    return AuditResult(verdict=verdict, checks=results, options=opts, manifest=manifest, regression=regression)
