"""Two models, one question: both answers side by side with size, time per request and audit numbers.

The operator configures a second masked LM and/or classifier (``BERTDEMO_COMPARE_MLM_MODEL``,
``BERTDEMO_COMPARE_SENTIMENT_MODEL``); the service holds them (:meth:`ModelService.for_model`), so
every answer here comes from the same loading path and batching as the rest of the app. Visitors
choose models by the names :meth:`ModelService.model_names` offers, never by path.

Audit numbers: when ``BERTDEMO_AUDIT_REPORTS`` names a folder of ``bertdemo audit --out`` reports,
a model is shown with the newest report whose audited weights (sha256) are exactly its own, so a
number is never shown beside a model it was not measured on.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertdemo.errors import InputError
from bertdemo.models import KIND_CLASSIFIER, KIND_PRETRAINING
from bertdemo.tasks.base import Result
from bertdemo.tasks.fill_mask import FillMaskResult
from bertdemo.tasks.next_sentence import NextSentenceResult
from bertdemo.tasks.sentiment import SentimentResult

FILL, NSP, SENTIMENT = "fill mask", "next sentence", "sentiment"
TASKS: dict[str, str] = {FILL: KIND_PRETRAINING, NSP: KIND_PRETRAINING, SENTIMENT: KIND_CLASSIFIER}
ENABLE = ("Comparing two models is off on this server. The operator turns it on by naming a second checkpoint: "
          "`BERTDEMO_COMPARE_MLM_MODEL` (a masked LM with a next-sentence head: fill mask, next sentence) and/or "
          "`BERTDEMO_COMPARE_SENTIMENT_MODEL` (a sentiment classifier); `BERTDEMO_AUDIT_REPORTS` (a folder of "
          "`bertdemo audit --out` reports) adds each model's bias-audit numbers.")
STATUS_ORDER = ("pass", "inconclusive", "fail", "error")
MAX_REPORT_BYTES = 50 * 1024 * 1024
TIMED_ROUNDS = 3  # timed requests per model after one untimed warm-up (the median is shown)


@dataclass
class AuditCheck(Result):
    """One check of an audit report: its title, status and key numbers in one line."""

    title: str
    status: str
    headline: str


@dataclass
class AuditNumbers(Result):
    """What an audit report measured on one model's exact weights (only the checks run on that model)."""

    report: str  # the report's folder name
    finished_at: str
    verdict: str  # the worst status of these checks
    checks: list[AuditCheck] = field(default_factory=list)


@dataclass
class ModelFacts(Result):
    """The size of a model as served, and its audit numbers when a report of its weights exists."""

    name: str
    parameters: int
    size_mb: float  # weights and buffers in memory, at the served precision
    precision: str
    device: str
    audit: AuditNumbers | None = None


@dataclass
class ModelAnswer(Result):
    """One model's answer and the wall time of that request (tokenizing, forward pass, result)."""

    model: ModelFacts
    milliseconds: float
    answer: FillMaskResult | NextSentenceResult | SentimentResult


@dataclass
class Comparison(Result):
    """The same input answered by each chosen model, in the order chosen."""

    task: str
    text: str
    second: str
    answers: list[ModelAnswer]

    @property
    def same_answer(self) -> bool:
        """Whether every model gives the same top answer (top words, verdict or label)."""
        return len({top_answer(self.task, a.answer) for a in self.answers}) <= 1


def top_answer(task: str, answer: Any) -> str:
    """The answer in a word: the top word per [MASK], follows / does not follow, or the label."""
    if task == FILL:
        return ", ".join(answer.top_tokens)
    if task == NSP:
        return "follows" if answer.follows else "does not follow"
    return str(answer.label)


def tasks_enabled(service: Any) -> list[str]:
    """The tasks whose model kind has a second model configured (empty: the feature is hidden)."""
    return [t for t, kind in TASKS.items() if len(service.model_names(kind)) > 1]


def compare(service: Any, task: Any, text: Any, second: Any = "", models: Any = None, top_k: int = 5) -> Comparison:
    """Ask each of ``models`` (names from ``service.model_names``; default all) the same question."""
    if task not in tasks_enabled(service):
        shown = ", ".join(tasks_enabled(service)) or "none (comparing models is off)"
        raise InputError(f"must be one of the tasks compared on this server: {shown}", field="task")
    kind = TASKS[task]
    names = service.model_names(kind) if models is None else models
    if not isinstance(names, (list, tuple)) or not names:
        raise InputError("must name at least one model", field="model")
    services = [(str(n), service.for_model(kind, n)) for n in names]  # refuses any other name before any work

    def ask(svc: Any) -> Any:
        if task == FILL:
            return svc.fill_mask(text, top_k=top_k)
        if task == NSP:
            return svc.next_sentence(text, second)
        (answer,) = svc.sentiment([text])
        return answer

    # Fair times: every model is loaded and answers once untimed (first-call costs: lazy kernels, caches),
    # then each is timed TIMED_ROUNDS times, in alternating order, and its median is reported.
    loaded = [svc.model(kind) for _, svc in services]
    result = [ask(svc) for _, svc in services]  # the warm-up call is also the answer shown
    times: list[list[float]] = [[] for _ in services]
    for r in range(TIMED_ROUNDS):
        order = range(len(services)) if r % 2 == 0 else reversed(range(len(services)))
        for i in order:
            start = time.perf_counter()
            ask(services[i][1])
            times[i].append(1000 * (time.perf_counter() - start))
    answers = [ModelAnswer(facts(ld, name, service.settings.audit_reports), round(statistics.median(ms), 1), res)
               for (name, _), ld, res, ms in zip(services, loaded, result, times, strict=True)]
    return Comparison(task, str(text), str(second or ""), answers)


def facts(loaded: Any, name: str, reports: str = "") -> ModelFacts:
    """Size and audit numbers of a loaded model, under the name the visitor chose it by."""
    model = loaded.model
    footprint = getattr(model, "get_memory_footprint", None)
    size = footprint() if callable(footprint) else 4 * loaded.num_parameters
    return ModelFacts(name, int(loaded.num_parameters), round(size / 1e6, 1), loaded.precision, loaded.device,
                      audit_numbers(reports, loaded.kind, loaded.weights_sha256))


# ---- audit reports -----------------------------------------------------------------------------
_cache: dict[Path, tuple[float, dict[str, Any] | None]] = {}
_cache_lock = threading.Lock()


def _summary(path: Path) -> dict[str, Any] | None:
    """The few facts of a report.json the compare view needs (read once per file version)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    with _cache_lock:
        hit = _cache.get(path)
    if hit is not None and hit[0] == stat.st_mtime:
        return hit[1]
    summary = None
    if stat.st_size <= MAX_REPORT_BYTES:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            doc = None
        if isinstance(doc, dict) and str(doc.get("schema_version", "")).startswith("bertdemo.audit/"):
            loaded = (doc.get("model") or {}).get("loaded") or {}
            summary = {"weights": {k: (v or {}).get("weights_sha256", "") for k, v in loaded.items()},
                       "finished_at": str(doc.get("finished_at") or ""), "checks": doc.get("checks") or {},
                       "report": path.parent.name}
    with _cache_lock:
        _cache[path] = (stat.st_mtime, summary)
    return summary


def audit_numbers(folder: str, kind: str, sha256: str) -> AuditNumbers | None:
    """The newest report in ``folder`` (its ``*/report.json``) that audited these exact weights, or ``None``."""
    if not folder or not sha256:
        return None
    from bertdemo.audit.checks import REGISTRY

    root = Path(folder).expanduser()
    found: list[dict[str, Any]] = []
    for path in [root / "report.json", *sorted(root.glob("*/report.json"))]:
        s = _summary(path)
        if s is not None and s["weights"].get(kind) == sha256:
            found.append(s)
    for s in sorted(found, key=lambda s: s["finished_at"], reverse=True):
        checks = [AuditCheck(REGISTRY[n].title, c.get("status", ""), REGISTRY[n].summary(c))
                  for n, c in s["checks"].items()
                  if n in REGISTRY and REGISTRY[n].needs == kind and c.get("status") not in (None, "not run")]
        if checks:
            worst = max((c.status for c in checks), key=lambda st: STATUS_ORDER.index(st) if st in STATUS_ORDER else 0)
            return AuditNumbers(s["report"], s["finished_at"], worst, checks)
    return None

