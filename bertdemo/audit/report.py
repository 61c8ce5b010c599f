"""Writes an audit into a folder: report.json, report.md, report.html, per-example CSVs, manifest.json.

Every file is written to a temporary name and moved into place with ``os.replace``, inside a
temporary folder next to ``--out``; only when all files are complete is that folder swapped in for
``--out``. An interrupted audit therefore leaves either the previous report or none, never half of
one. ``--out`` must be new, empty, or a previous audit report (it is replaced as a whole).

The Markdown and HTML are rendered from templates by :mod:`bertdemo.audit.render`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from bertdemo import atomic
from bertdemo.atomic import sha256_file
from bertdemo.audit.checks import REGISTRY
from bertdemo.audit.render import model_card_section, render_html, render_markdown
from bertdemo.csvfile import csv_text
from bertdemo.errors import InputError

__all__ = ["build_document", "check_out_dir", "headline", "model_card_section", "render_html", "render_markdown",
           "write_report"]

REPORT_FILES = ("report.json", "report.md", "report.html", "manifest.json")
MARKER = "bertdemo audit"

CAN_TELL = [
    "Whether the masked LM gives systematically higher probability to the more stereotypical sentence of a "
    "minimal pair (CrowS-Pairs) or to the stereotypical completion of a sentence (StereoSet), on two published, "
    "crowd-sourced US-English benchmarks, and where it stands against bert-base-uncased.",
    "Whether the masked LM's predictions at [MASK] change when only a demographic word changes (template probes).",
    "Whether the sentiment classifier's predictions on template sentences change with first names associated with "
    "gender and race in the US (group parity, equalized odds, and how often swapping only the name flips the label).",
    "On your own CSV: how the classifier's positive rate (and, with labels, its error rates) differ between your groups.",
]
CANNOT_TELL = [
    "That the model is fair or safe. Passing means these numbers are within the configured thresholds on these tests "
    "only; a score near 50 does not mean the model is unbiased (the CrowS-Pairs authors caution against this reading).",
    "Anything about harms in your application: intrinsic scores of a masked LM correlate weakly with downstream bias "
    "(Goldfarb-Tarrant et al. 2021; Delobelle et al. 2022). Test the deployed task on data from your users.",
    "Bias outside the benchmarks' scope: they are English, US-centric, mostly binary in gender, and many of their "
    "items are noisy or ill-posed (Blodgett et al. 2021). Names are imperfect proxies for gender and race.",
    "Which fairness criterion is right for you: demographic parity and equalized odds can conflict; pick the gate "
    "that matches the decision the model supports.",
    "Small differences: with --limit or few rows per group the intervals are wide, and a gate whose interval "
    "straddles its threshold is inconclusive rather than a pass or a fail; the intervals cover sampling noise only, "
    "not the benchmarks' own flaws below.",
    "Whether the benchmarks measure what they name: Blodgett et al. (2021, 'Stereotyping Norwegian Salmon', ACL) "
    "found that many CrowS-Pairs and StereoSet items are ill-posed (pairs that differ in more than the group, "
    "sentences that are not stereotypes, unclear target groups), so a score is a noisy indicator, not a measurement "
    "of a construct. CrowS-Pairs' own authors add that a lower score does not mean a less biased model.",
    "Comparability for StereoSet: the published anchors (Nadeem et al. 2021; bias-bench) are on the hidden test set; "
    "this audit runs the public dev set, and its sentences overlap in style but not in items with the test set.",
]


# ---- output helpers ----------------------------------------------------------------------------
def jsonable(obj: Any) -> Any:
    """Plain JSON types only: numpy scalars to Python, nan/inf to null."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write to a temporary file in the same folder, fsync, then ``os.replace``."""
    atomic.write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)


def check_out_dir(out: str | Path) -> Path:
    """Refuse an ``--out`` that is a file, or a non-empty folder that is not an audit report."""
    p = Path(out).expanduser()
    if p.exists():
        if not p.is_dir():
            raise InputError(f"{p} exists and is not a folder", field="out")
        entries = list(p.iterdir())
        if entries and not _is_report_dir(p):
            raise InputError(f"{p} is not empty and is not a previous audit report; give a new or empty folder "
                             "(the audit replaces the whole folder)", field="out")
    return p


def _is_report_dir(p: Path) -> bool:
    try:
        return json.loads((p / "manifest.json").read_text(encoding="utf-8")).get("tool") == MARKER
    except (OSError, ValueError, AttributeError):
        return False


def _csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    """The per-example CSV; cells (and column names, which come from the user's CSV) that a
    spreadsheet would run as formulas are neutralised by the project's one CSV writer."""
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    return csv_text(cols, ([r.get(k) for k in cols] for r in rows)).encode("utf-8")


# ---- the report document -----------------------------------------------------------------------
def build_document(result: Any) -> dict[str, Any]:
    doc = result.to_dict()
    doc["what_this_audit_can_tell"] = CAN_TELL
    doc["what_this_audit_cannot_tell"] = CANNOT_TELL
    doc["example_files"] = {n: f"examples_{n}.csv" for n, c in result.checks.items() if c.examples}
    return jsonable(doc)


def headline(name: str, check: dict[str, Any]) -> str:
    """One line of the check's key numbers, or its error (plain text; escape before putting into HTML)."""
    return REGISTRY[name].summary(check)


# ---- writing -----------------------------------------------------------------------------------
def write_report(result: Any, out: str | Path) -> dict[str, Path]:
    """Write every file of the report into ``out`` atomically; returns name -> final path."""
    target = check_out_dir(out).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    doc = build_document(result)
    examples = {n: c.examples for n, c in result.checks.items() if c.examples}
    with atomic.staged_dir(target) as staging:
        contents: dict[str, bytes] = {
            "report.json": json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False).encode("utf-8"),
            "report.md": render_markdown(doc, examples).encode("utf-8"),
            "report.html": render_html(doc, examples).encode("utf-8"),
        }
        for name, rows in examples.items():
            contents[f"examples_{name}.csv"] = _csv_bytes(rows)
        for fname, data in contents.items():
            atomic_write(staging / fname, data)
        manifest = jsonable({**result.manifest, "tool": MARKER,
                             "files": {f: {"sha256": sha256_file(staging / f), "bytes": len(d)} for f, d in contents.items()}})
        atomic_write(staging / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False))
    return {f: target / f for f in [*contents, "manifest.json"]}


