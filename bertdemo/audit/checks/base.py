"""What an audit check is: one object with its name, title, anchors, thresholds, run and renderings.

A check owns everything that is particular to it: the published reference numbers it is read
against, the threshold keys it gates on (with defaults, ranges and meanings), how it runs on the
service, its one-line headline, and the tables and figures it contributes to the reports. The
runner, the CLI summary, the app's audit tab and the report templates loop over checks and never
branch on a check's name, so adding a check is one module in this package plus its test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from bertdemo.audit.stats import finite
from bertdemo.models import KIND_PRETRAINING

# key -> (default, lower bound, upper bound, what it means); a default of ``False`` = gate off
ThresholdSpec = dict[str, tuple[Any, float, float, str]]


GATE_MODES = ("interval", "point")
OUTCOMES = ("pass", "inconclusive", "fail")  # worst last


@dataclass
class Gate:
    """One comparison of a measured value with a configured threshold, judged on its interval.

    With ``gate_on = "interval"`` (the default) a gate passes only when its whole confidence interval
    is inside the allowed region, fails when the whole interval is outside, and is ``inconclusive``
    otherwise, with a rough sample size that would decide it (the interval shrinks as 1/sqrt(n)). A
    gate without an interval is judged on its value (``basis = "point"``); a gate whose metric cannot
    tell anything here (``blind``: a probe whose word class the model never predicts, a classifier
    that gives every input the same label) is ``inconclusive`` whatever its value.
    ``gate_on = "point"`` compares the value alone, as releases before 0.4 did.
    """

    metric: str
    value: float | None
    comparison: str  # "<=" or ">="
    threshold: float
    config_key: str
    interval: list[float] | None = None  # the value's confidence interval, in the metric's own units
    n: int | None = None  # the sample size behind the interval
    half_width: float | None = None  # of the underlying estimate (for the sample-size estimate)
    blind: str | None = None  # why this metric cannot tell anything on this model/data
    outcome: str = "pass"  # pass | fail | inconclusive
    basis: str = "interval"  # interval | point | blind
    needed_n: int | None = None  # for an inconclusive interval: about how many items would decide it
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"

    def judge(self, mode: str = "interval") -> Gate:
        """Set ``outcome``, ``basis``, ``needed_n`` and ``note`` for ``mode`` (``interval`` or ``point``)."""
        v, t = self.value, self.threshold
        self.needed_n, self.note = None, ""
        if v is None:
            self.outcome, self.basis, self.note = "fail", "point", "not measured"
            return self
        if self.blind and mode == "interval":
            self.outcome, self.basis, self.note = "inconclusive", "blind", self.blind
            return self

        def inside(x: float) -> bool:
            return x <= t if self.comparison == "<=" else x >= t

        lo, hi = self.interval if self.interval else (None, None)
        if mode == "point" or lo is None or hi is None:
            self.outcome, self.basis = ("pass" if inside(v) else "fail"), "point"
            if mode == "interval" and self.interval is not None:
                self.outcome, self.note = "inconclusive", "too few items for an interval"
            return self
        self.basis = "interval"
        if inside(lo) and inside(hi):
            self.outcome = "pass"
        elif not inside(lo) and not inside(hi):
            self.outcome = "fail"
        else:
            self.outcome = "inconclusive"
            w = self.half_width if self.half_width is not None else (hi - lo) / 2.0
            gap = abs(v - t)
            if self.n and w > 0 and gap > 0:
                self.needed_n = math.ceil(self.n * (w / gap) ** 2)
                self.note = f"interval straddles the threshold; about {self.needed_n:,} items would decide it"
            else:
                self.note = ("the estimate equals the threshold: a larger sample narrows the interval around it "
                             "but cannot put it on one side")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "comparison": self.comparison, "threshold": self.threshold,
                "config_key": self.config_key, "interval": self.interval, "n": self.n, "outcome": self.outcome,
                "basis": self.basis, "needed_n": self.needed_n, "note": self.note, "blind": self.blind,
                "passed": self.passed}


def gate(metric: str, value: Any, op: str, threshold: Any, key: str, interval: Any = None, n: int | None = None,
         half_width: float | None = None, blind: str | None = None) -> Gate | None:
    """A gate judged on its interval (see :class:`Gate`), or ``None`` when its threshold is switched off."""
    if threshold is False:
        return None
    iv = None
    if interval is not None:
        lo, hi = (finite(x) for x in interval) if len(interval) == 2 else (None, None)
        iv = [lo, hi] if lo is not None and hi is not None else [None, None]
        if iv[0] is not None:
            iv = [min(iv), max(iv)]
    return Gate(metric, finite(value), op, threshold, key, interval=iv, n=n, half_width=half_width, blind=blind).judge()


def _num(x: float) -> str:
    return format(x, ".4g")


def gate_text(g: dict[str, Any]) -> str:
    """One line for a gate's report entry: value, interval, threshold, outcome and why (plain text)."""
    value = "n/a" if g.get("value") is None else _num(g["value"])
    iv = g.get("interval")
    if iv and iv[0] is not None and iv[1] is not None:
        value += f" (95% CI {_num(iv[0])} to {_num(iv[1])})"
    text = f"{g['metric']} = {value}; needs {g['comparison']} {g['threshold']:g}: {g.get('outcome', 'pass').upper()}"
    if g.get("basis") == "point" and g.get("outcome") != "inconclusive":
        text += " (on the estimate alone)"
    return text + (f" - {g['note']}" if g.get("note") else "")


def deviation_interval(interval: Any, centre: float) -> tuple[list[float] | None, float | None]:
    """The interval of ``|x - centre|`` for ``x`` in ``interval``, and ``x``'s half-width."""
    if not interval or interval[0] is None or interval[1] is None:
        return None, None
    lo, hi = float(interval[0]), float(interval[1])
    ends = [abs(lo - centre), abs(hi - centre)]
    low = 0.0 if lo <= centre <= hi else min(ends)
    return [low, max(ends)], (hi - lo) / 2.0


def worst(outcomes: Sequence[str]) -> str:
    """fail if any fails, else inconclusive if any is, else pass."""
    return max(outcomes, key=OUTCOMES.index, default="pass")


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

    # Regression against a baseline report (``bertdemo audit --baseline``): the same items in both runs,
    # each reduced to a few numbers (:meth:`items`), and one "badness" statistic over them (higher = worse).
    regression_metric: ClassVar[str] = ""  # what :meth:`regression_stat` measures; "" = not compared

    def run(self, service: Any, ctx: Context) -> Outcome:
        raise NotImplementedError

    def items(self, examples: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
        """Per-example rows -> {stable item id: numbers}, for pairing two runs item by item."""
        return {}

    def regression_stat(self, values: Any) -> float:
        """The badness statistic over an (items x numbers) array (higher = worse)."""
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
