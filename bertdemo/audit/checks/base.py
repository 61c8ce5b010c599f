"""What an audit check is: one object with its name, title, anchors, thresholds, run and renderings.

A check owns everything that is particular to it: the published reference numbers it is read
against, the threshold keys it gates on (with defaults, ranges and meanings), how it runs on the
service, its one-line headline, and the tables and figures it contributes to the reports. The
runner, the CLI summary, the app's audit tab and the report templates loop over checks and never
branch on a check's name, so adding a check is one module in this package plus its test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from bertdemo.audit.stats import finite
from bertdemo.models import KIND_PRETRAINING

# key -> (default, lower bound, upper bound, what it means); a default of ``False`` = gate off
ThresholdSpec = dict[str, tuple[Any, float, float, str]]


@dataclass
class Gate:
    """One pass/fail comparison of a measured value with a configured threshold."""

    metric: str
    value: float | None
    comparison: str  # "<=" or ">="
    threshold: float
    config_key: str
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "comparison": self.comparison, "threshold": self.threshold,
                "config_key": self.config_key, "passed": self.passed}


def gate(metric: str, value: Any, op: str, threshold: Any, key: str) -> Gate | None:
    """A gate, or ``None`` when its threshold is switched off (``false`` in the config)."""
    if threshold is False:
        return None
    v = finite(value)
    passed = v is not None and (v <= threshold if op == "<=" else v >= threshold)
    return Gate(metric, v, op, threshold, key, bool(passed))


def sampling(unit: str, used: int, total: int, limit: int | None, seed: int) -> dict[str, Any]:
    """How much of a check's data was used (``--limit`` samples it, seeded)."""
    return {"unit": unit, "used": used, "available": total, "sampled": used < total,
            "seed": seed if used < total else None, "limit": limit}


@dataclass
class Table:
    """A block a check contributes to the reports: an optional heading, a sentence, a table."""

    headers: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    heading: str | None = None
    text: str | None = None


@dataclass
class Figure:
    """A horizontal bar chart a check contributes to the HTML report (drawn by the report)."""

    caption: str
    title: str
    labels: list[str]
    values: list[float | None]
    xlabel: str
    cis: list[Any] | None = None
    ref: float | None = None
    anchors: dict[str, float] = field(default_factory=dict)


@dataclass
class Context:
    """What a running check gets besides the service: options, thresholds, progress callbacks."""

    thresholds: dict[str, dict[str, Any]]
    limit: int | None
    seed: int
    user_data: Any = None
    advance: Callable[[int], None] = lambda k: None
    set_total: Callable[[int], None] = lambda n: None

    @property
    def audit(self) -> dict[str, Any]:
        return self.thresholds["audit"]


@dataclass
class Outcome:
    """What a check measured: its numbers, gates, per-example rows and the data it used."""

    metrics: dict[str, Any]
    gates: list[Gate]
    examples: list[dict[str, Any]]
    sampling: dict[str, Any] | None = None


class Check:
    """Base of the audit checks; subclasses set the class attributes and implement ``run``."""

    name: ClassVar[str]
    title: ClassVar[str]
    default: ClassVar[bool] = True  # run when no --checks are given
    uses_user_data: ClassVar[bool] = False  # runs on the user's CSV: added when one is given, refused without
    anchors: ClassVar[Sequence[dict[str, Any]]] = ()  # published numbers, each with a ``shown`` text
    thresholds: ClassVar[ThresholdSpec] = {}
    needs: ClassVar[str] = KIND_PRETRAINING  # the model kind it runs on (loaded up front by the CLI)
    data_files: ClassVar[dict[str, Path]] = {}  # the vendored files it reads (hashed into the manifest)

    def run(self, service: Any, ctx: Context) -> Outcome:
        raise NotImplementedError

    def gates(self, metrics: dict[str, Any], t: dict[str, Any]) -> list[Gate]:
        return []

    def headline(self, check: dict[str, Any]) -> str:
        """One line of the key numbers of a check's report entry (plain text)."""
        return ""

    def tables(self, check: dict[str, Any], examples: Sequence[dict[str, Any]]) -> list[Table]:
        return []

    def figures(self, check: dict[str, Any]) -> list[Figure]:
        return []

    def summary(self, check: dict[str, Any]) -> str:
        """The headline, or the error, of a check's report entry ("" when it did not run)."""
        if check.get("status") in ("not run", "error") or not check.get("metrics"):
            return check.get("error") or ""
        return self.headline(check)


def fmt(v: Any, nd: int = 2) -> str:
    """A number for a report cell: ``n/a`` for missing, ``nd`` decimals for floats."""
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def ci(pair: Any, nd: int = 2) -> str:
    """`` [low, high]`` after a number, or nothing when the interval is undefined."""
    if not pair or pair[0] is None or pair[1] is None:
        return ""
    return f" [{pair[0]:.{nd}f}, {pair[1]:.{nd}f}]"
