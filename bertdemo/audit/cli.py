"""``bertdemo audit``: run the bias audit, write the report, exit 0 pass / 1 fail / 2 bad input / 3 inconclusive."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from bertdemo.errors import InputError

# Bulk scoring is several times faster in larger minibatches on a CPU (measured: CrowS-Pairs on a
# bert-tiny-sized model, batch 128 vs 32: ~1.7x); used unless --batch-size / BERTDEMO_BATCH_SIZE is set.
AUDIT_BATCH_SIZE = 128

EPILOG = """checks: crows_pairs, stereoset, templates, classifier, user_data (default: the first four, plus
user_data when --data is given). Thresholds: --config FILE (TOML, JSON or YAML) overrides these defaults:

{defaults}

Each gate is judged on its 95% interval: pass when the whole interval is inside the allowed region,
fail when it is wholly outside, inconclusive otherwise ([audit] gate_on = "point" judges the estimate).

exit status: 0 every selected check passed; 1 a check failed or could not run; 2 bad usage or input;
3 no check failed but at least one was inconclusive (more data, e.g. a larger --limit, would decide it)."""


def register(subparsers: Any) -> None:
    from bertdemo.audit.thresholds import describe_defaults
    from bertdemo.cli import add_model_flags

    p = subparsers.add_parser(
        "audit", help="bias audit (CrowS-Pairs, StereoSet, template probes, classifier fairness) with a pass/fail gate",
        description="Bias audit of the masked LM and the sentiment classifier; writes report.json, report.md, "
                    "report.html, per-example CSVs and manifest.json into --out.",
        epilog=EPILOG.format(defaults=describe_defaults()), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE", help="thresholds file (.toml, .json, .yaml)")
    p.add_argument("--checks", metavar="LIST", help="comma-separated checks to run (default: all built-in)")
    p.add_argument("--data", metavar="CSV", help="your CSV: a text column, optional label column, group column(s)")
    p.add_argument("--text-col", default="text", help="text column of --data (default: text)")
    p.add_argument("--label-col", help="label column of --data (classifier label names or class numbers)")
    p.add_argument("--group-col", action="append", default=None, metavar="COL",
                   help="group column of --data (repeat for several)")
    p.add_argument("--out", default="audit-report", metavar="DIR", help="report folder (default: ./audit-report); "
                   "must be new, empty, or a previous report, which is replaced")
    p.add_argument("--limit", type=int, metavar="N", help="sample N items per built-in benchmark (seeded) for a quick "
                   "run; your --data file is used whole unless --sample-data")
    p.add_argument("--sample-data", action="store_true", help="apply --limit to the --data file too")
    p.add_argument("--baseline", metavar="REPORT", help="a previous audit's folder or report.json: compare on the same "
                   "items and fail when a check got worse by more than its max_regression")
    p.add_argument("--seed", type=int, default=0, help="seed for sampling and bootstrap (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    p.add_argument("--json", action="store_true", help="print report.json to stdout instead of a summary")
    add_model_flags(p)
    p.set_defaults(handler=run_cli)


def _service(args: argparse.Namespace) -> Any:
    from bertdemo.cli import settings_from_args
    from bertdemo.config import ENV_VARS
    from bertdemo.service import ModelService

    settings = settings_from_args(args)
    if getattr(args, "batch_size", None) is None and not os.environ.get(ENV_VARS["batch_size"]):
        settings = settings.replace(batch_size=AUDIT_BATCH_SIZE)
    if getattr(args, "precision", None) is None and not os.environ.get(ENV_VARS["precision"]):
        # An audit's numbers must not depend on the CPU it runs on (a CI gate, a baseline made elsewhere):
        # fp32 unless asked, where serving's "auto" would pick bf16 on CPUs with bf16 units.
        settings = settings.replace(precision="fp32")
    return ModelService(settings)


def run_cli(args: argparse.Namespace) -> int:
    from bertdemo.audit import thresholds
    from bertdemo.audit.baseline import comparison_text, load_baseline
    from bertdemo.audit.checks import REGISTRY
    from bertdemo.audit.checks.base import gate_text
    from bertdemo.audit.data import load_user_csv
    from bertdemo.audit.fairness import binarize_labels
    from bertdemo.audit.report import build_document, check_out_dir, write_report
    from bertdemo.audit.runner import AuditOptions, parse_checks, run_audit, with_user_data

    if args.limit is not None and args.limit < 1:
        raise InputError("must be at least 1", field="--limit")
    limits = thresholds.load(args.config)
    baseline = load_baseline(args.baseline) if args.baseline else None
    checks = with_user_data(parse_checks(args.checks, has_data=bool(args.data)), bool(args.data),
                            "--data FILE (with --group-col)")
    out = check_out_dir(args.out)
    service = _service(args)
    user = None
    if args.data:
        s = service.settings
        user = load_user_csv(args.data, args.text_col, args.label_col, args.group_col, s.max_upload_bytes,
                             s.max_upload_rows, s.max_chars)
    # Load the models the checks need now: a wrong model path is bad input (exit 2), not a failed check.
    for kind in {REGISTRY[name].needs for name in checks}:
        service.model(kind)
    if user is not None and user.labels is not None:
        binarize_labels(user.labels, service.labels, args.label_col)
    opts = AuditOptions(checks=checks, thresholds=limits, limit=args.limit, seed=args.seed, user_data=user,
                        sample_user_data=args.sample_data, baseline=baseline)
    result = run_audit(service, opts, bars=not args.no_progress)
    paths = write_report(result, out)
    if args.json:
        print(json.dumps(build_document(result), indent=2, ensure_ascii=False))
        return result.exit_code
    doc = build_document(result)
    print(f"bias audit: {doc['verdict'].upper()}" + ("  (sampled with --limit)" if doc["sampled"] else ""))
    for name, c in doc["checks"].items():
        if c["status"] == "not run":
            continue
        print(f"  {c['status']:<12} {c['title']}: {REGISTRY[name].summary(c)}")
        for g in c["gates"]:
            print(f"           {gate_text(g)} [{g['config_key']}]")
        for a in c.get("anchors", []):
            print(f"           published {a['model']}: {a['shown']} ({a['short']})")
    if doc.get("baseline"):
        print(f"  against the baseline ({doc['baseline'].get('finished_at') or 'undated'}):")
        for comp in doc["baseline"]["comparisons"]:
            print(f"  {comp['outcome']:<12} {comp['title']}: {comparison_text(comp)}")
    print(f"report: {paths['report.html'].parent}", file=sys.stdout)
    return result.exit_code
