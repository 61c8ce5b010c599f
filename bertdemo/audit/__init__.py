"""The bias audit: intrinsic checks of the masked LM and group-fairness checks of the classifier.

Faces call the same code: ``bertdemo audit`` (CLI, :mod:`bertdemo.audit.cli`), the app's Bias audit
tab, and the ``evaluate`` modules in ``measurements/``. From Python::

    from bertdemo.audit import AuditOptions, run_audit, write_report, load_thresholds
    result = run_audit(service, AuditOptions(checks=["crows_pairs", "templates"], limit=100),
                       progress=lambda fraction, text: ...)   # e.g. gr.Progress()
    paths = write_report(result, "out/")                     # report.json/.md/.html, CSVs, manifest
    result.verdict, result.exit_code

Modules: ``checks`` (one object per check), ``data`` (vendored benchmarks, user CSV), scoring in ``crows_pairs``,
``stereoset``, ``templates``, ``fairness``; ``thresholds``, ``runner``, ``render`` (templates), ``report`` (writing).
"""

from __future__ import annotations

from bertdemo.audit.data import load_user_csv
from bertdemo.audit.report import write_report
from bertdemo.audit.runner import CHECKS, DEFAULT_CHECKS, AuditOptions, AuditResult, parse_checks, run_audit
from bertdemo.audit.thresholds import load as load_thresholds

__all__ = ["CHECKS", "DEFAULT_CHECKS", "AuditOptions", "AuditResult", "load_thresholds", "load_user_csv",
           "parse_checks", "run_audit", "write_report"]
