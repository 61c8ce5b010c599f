"""Bridge between the Bias audit tab and :mod:`bertdemo.audit`: options in, summary/table/plot/files out.

``run`` returns ``{"summary": markdown, "table": DataFrame, "plot": figure | None, "files": [paths],
"result": AuditResult}`` (``key_numbers(result)`` is the agents' tool's compact answer);
the reports are written by the audit's own writer (:func:`bertdemo.audit.report.write_report`)
into the session's folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bertdemo.audit import runner
from bertdemo.audit.baseline import comparison_text
from bertdemo.audit.checks.base import gate_text
from bertdemo.audit.report import headline
from bertdemo.csvfile import read_csv
from bertdemo.errors import InputError, LimitError
from bertdemo.ui.format import esc

TABLE_HEADERS = ["check", "check verdict", "gate", "value", "95% interval", "needs", "gate outcome"]
SAMPLE_MAX = 500  # the largest sample size the Bias audit tab's slider offers
COLOURS = {"pass": "#2e7d32", "inconclusive": "#b26a00", "fail": "#c62828"}


def available_checks() -> list[str]:
    return list(runner.CHECKS)


def default_checks() -> list[str]:
    return list(runner.DEFAULT_CHECKS)


def benchmark_checks() -> list[str]:
    """The checks that need no uploaded file (what an agent's audit may ask for)."""
    from bertdemo.audit.checks import REGISTRY

    return [name for name, check in REGISTRY.items() if not check.uses_user_data]


def _csv_header(path: Path) -> list[str]:
    try:
        return read_csv(path).columns
    except InputError:
        return []  # load_user_csv gives the precise message


def _split(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    raise InputError("must be column names separated by commas", field="group columns")


def load_upload(upload: Any, group_cols: Any, label_col: Any, settings: Any) -> Any:
    """The user's CSV as the audit's ``UserData`` (group columns inferred from the header when blank)."""
    from bertdemo.audit.data import load_user_csv

    path = Path(getattr(upload, "name", None) or getattr(upload, "path", None) or str(upload))
    if not path.is_file():
        raise InputError("could not be read; upload a .csv file", field="groups CSV")
    label = ((label_col or "").strip() if isinstance(label_col, str) else "") or None  # blank = none given
    groups = _split(group_cols)
    if not groups:
        header = _csv_header(path)
        if label is None and "label" in header:
            label = "label"
        groups = [c for c in header if c and c not in {"text", label}]
        if header and not groups:
            raise InputError("needs at least one group column besides 'text' and the label", field="groups CSV")
    most = settings.audit_max_group_columns
    if len(groups) > most:  # checked before the file's cells are split into groups
        raise LimitError(f"has {len(groups):,} group columns; at most {most:,} per audit "
                         "(BERTDEMO_AUDIT_MAX_GROUP_COLUMNS): name the ones to compare in 'Group columns'",
                         field="groups CSV")
    try:
        return load_user_csv(path, text_col="text", label_col=label or None, group_cols=groups or None,
                             max_bytes=settings.max_upload_bytes, max_rows=settings.max_upload_rows,
                             max_chars=settings.max_chars)
    except InputError as err:  # the audit's messages speak CLI ("--group-col"); keep the reason, drop the flag
        msg = str(err).removeprefix("data: ").replace(" with --group-col", " in 'Group columns'")
        raise InputError(msg, field="groups CSV") from None


def _round(x: Any) -> Any:
    return None if x is None else float(f"{float(x):.4g}")


def _table(result: Any) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for name, check in result.checks.items():
        if check.status == "not run":
            continue
        if not check.gates:
            rows.append([name, check.status, check.error or "-", None, "", "", ""])
        for g in check.gates:
            iv = g.interval if g.interval and g.interval[0] is not None else None
            rows.append([name, check.status, g.metric, _round(g.value),
                         f"{_round(iv[0])} to {_round(iv[1])}" if iv else ("too few items" if g.interval else "-"),
                         f"{g.comparison} {g.threshold:g}", g.outcome + (f": {g.note}" if g.note else "")])
    for c in result.regression:
        g = c.gate
        if g is not None:
            iv = g.interval
            rows.append([f"{c.check} vs baseline", c.outcome, f"change in {c.metric}", _round(g.value),
                         f"{_round(iv[0])} to {_round(iv[1])}" if iv and iv[0] is not None else "-",
                         f"<= {g.threshold:g}", c.outcome + (f": {c.note}" if c.note else "")])
    return rows


GATE_KEYS = ("metric", "value", "interval", "comparison", "threshold", "outcome", "note")


def key_numbers(result: Any, sample_size: int) -> dict[str, Any]:
    """The verdict and every gate's numbers, compact (the audit tool's answer; the reports hold the rest)."""
    checks: dict[str, Any] = {}
    for name, check in result.checks.items():
        if check.status == "not run":
            continue
        entry: dict[str, Any] = {"status": check.status}
        if check.error:
            entry["error"] = check.error
        else:
            entry["headline"] = headline(name, check.to_dict())
        if check.sampling:
            entry["items"] = check.sampling.get("used")
        gates = [{k: v for k, v in g.to_dict().items() if k in GATE_KEYS} for g in check.gates]
        for g in gates:
            g["value"] = _round(g["value"])
            g["interval"] = [_round(x) for x in g["interval"]] if g["interval"] else None
        entry["gates"] = gates
        checks[name] = entry
    return {"verdict": result.verdict, "sample_size": sample_size, "checks": checks,
            "regression": [c.to_dict() for c in result.regression] or None}


def _plot(result: Any) -> Any:
    gates = [(name, g) for name, c in result.checks.items() for g in c.gates if g.value is not None]
    if not gates:
        return None
    import matplotlib

    from bertdemo.drawing import release_fonts

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    release_fonts()  # gradio draws this figure later, in its own thread: drop the fonts of earlier drawings
    n = len(gates)
    fig, axes = plt.subplots(n, 1, figsize=(7, 0.75 * n + 0.6), squeeze=False)
    for ax, (check, g) in zip(axes[:, 0], gates, strict=True):
        value, threshold = g.value, g.threshold
        iv = g.interval if g.interval and g.interval[0] is not None else None
        err = [[max(0.0, value - iv[0])], [max(0.0, iv[1] - value)]] if iv else None
        ax.barh([0], [value], xerr=err, capsize=4, color=COLOURS.get(g.outcome, "#777"), height=0.6)
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
        hi = max(abs(value), abs(threshold), abs(iv[1]) if iv else 0.0) * 1.15 or 1.0
        ax.set_xlim(min(0.0, value * 1.25), hi)
        ax.set_yticks([])
        ax.set_title(f"{check}: {g.metric}  (needs {g.comparison} {threshold:g}): {g.outcome}", fontsize=8, loc="left")
        ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    plt.close(fig)
    return fig


def next_step(result: Any) -> str:
    """For an INCONCLUSIVE verdict that more data would decide: what to do, in one line, with the gates'
    estimates of how many items would decide them (``""`` otherwise)."""
    if result.verdict != "inconclusive":
        return ""
    needs: dict[str, int] = {}
    for name, check in result.checks.items():
        for g in check.gates:
            if g.outcome == "inconclusive" and g.needed_n:
                needs[name] = max(needs.get(name, 0), g.needed_n)
    if not needs:
        return ""

    def has(name: str) -> int:
        return int((result.checks[name].sampling or {}).get("available") or 0)

    shown = ", ".join(f"{esc(name)} about {n:,}" + (f" (it has {has(name):,}: more data than it holds)"
                                                   if 0 < has(name) < n else "") for name, n in needs.items())
    beyond = (f"; for more than this page's {SAMPLE_MAX}, run `bertdemo audit` on the command line (every item "
              "unless `--limit`)" if max(needs.values()) > SAMPLE_MAX else "")
    return f"**What to do:** raise the sample size: the gates say roughly how many items would decide them ({shown}){beyond}."


def _summary(result: Any) -> str:
    icon = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "inconclusive": "INCONCLUSIVE"}
    lines = [f"### Verdict: **{icon.get(result.verdict, result.verdict).upper()}**", ""]
    step = next_step(result)
    if step:
        lines += [step, ""]
    for name, check in result.checks.items():
        if check.status == "not run":
            continue
        line = f"- **{esc(name)}**: {icon.get(check.status, check.status)}"
        if check.sampling and check.sampling.get("sampled"):
            line += f" (sample of {check.sampling['used']:,} / {check.sampling['available']:,} {esc(check.sampling['unit'])})"
        if check.error:
            line += f" - {esc(check.error)}"
        else:
            line += f"<br>{esc(headline(name, check.to_dict()))}"
            line += "".join(f"<br>&nbsp;&nbsp;gate: {esc(gate_text(g.to_dict()))}" for g in check.gates)
        lines.append(line)
    if result.regression:
        lines += ["", "**Against the baseline report** (candidate - baseline on the same items; positive = worse):"]
        lines += [f"- **{esc(c.check)}**: {c.outcome.upper()} - {esc(comparison_text(c.to_dict()))}"
                  for c in result.regression]
    lines += ["", "_Each gate is judged on its 95% interval: PASS when the whole interval is inside the threshold, "
                  "FAIL when it is wholly outside, INCONCLUSIVE when it straddles it (a larger sample decides). A pass "
                  "means the measured gaps are within the configured thresholds on these samples; it is not proof "
                  "that the models are unbiased._"]
    return "\n".join(lines)


_ABS_PATH = re.compile(r"(?:/[^\s/'\"]+)+/([^\s/'\"]+)")


def _redact_paths(result: Any) -> None:
    """Reports offered to visitors name models and files by their last path part, never a server path."""
    models = result.manifest.get("models", {})
    for info in [models.get("settings", {}), *models.get("loaded", {}).values()]:
        for key, value in list(info.items()):
            if isinstance(value, str) and "/" in value:
                info[key] = _ABS_PATH.sub(r"\1", value)
    for meta in result.manifest.get("data", {}).values():
        if isinstance(meta, dict) and isinstance(meta.get("path"), str):
            meta["path"] = Path(meta["path"]).name
    for check in result.checks.values():
        if check.error:
            check.error = _ABS_PATH.sub(r"\1", check.error)


def _write_reports(result: Any, out_dir: Path) -> list[str]:
    """The audit's own report writer (atomic), into a fresh folder; the JSON, Markdown and HTML are offered."""
    from bertdemo.audit.report import write_report

    paths = write_report(result, out_dir / "audit-report")
    return [str(paths[name]) for name in ("report.json", "report.md", "report.html") if name in paths]


def load_baseline_upload(upload: Any, settings: Any) -> dict[str, Any] | None:
    """The report to compare with: the visitor's uploaded report.json, else the operator's, else none."""
    from bertdemo.audit.baseline import load_baseline

    if upload not in (None, ""):
        path = Path(getattr(upload, "name", None) or getattr(upload, "path", None) or str(upload))
        if path.is_file() and path.stat().st_size > settings.max_upload_bytes:
            raise InputError(f"is larger than {settings.max_upload_bytes:,} bytes", field="baseline report")
        try:
            return load_baseline(path)
        except InputError as err:
            raise InputError(str(err).removeprefix("baseline: "), field="baseline report") from None
    if settings.audit_baseline:
        return load_baseline(settings.audit_baseline)
    return None


def audit_work(names: list[str], limit: int, user_data: Any = None, sample_file: bool = False) -> int:
    """Work units of an audit: the sample size of each benchmark check, plus, for the checks on the
    visitor's CSV, the rows scored (all of them unless ``sample_file``) times the group columns compared."""
    from bertdemo.audit.checks import REGISTRY

    work = 0
    for name in names:
        if REGISTRY[name].uses_user_data and user_data is not None:
            rows = min(limit, len(user_data)) if sample_file else len(user_data)
            work += rows * max(1, len(user_data.group_cols))
        else:
            work += limit
    return work


def prepare(settings: Any, checks: Any, limit: Any, upload: Any = None, group_cols: Any = None,
            label_col: Any = None, sample_file: Any = False,
            baseline_upload: Any = None) -> tuple[runner.AuditOptions, list[str]]:
    """The audit's options (and the checks added because a CSV was uploaded), every input checked, and
    refused with :class:`LimitError` when it asks for more group columns or work than the settings
    allow. Cheap enough to run before queueing.

    An uploaded CSV is always audited (its check is added when not ticked); the sample size applies to
    the built-in benchmarks only unless ``sample_file``; a baseline report (uploaded, or the operator's
    ``BERTDEMO_AUDIT_BASELINE``) makes the run a comparison with it."""
    from bertdemo.textcheck import check_int

    limit = check_int(limit, "sample size", 1, 5000)
    user_data = load_upload(upload, group_cols, label_col, settings) if upload not in (None, "") else None
    chosen = _split(checks) if not isinstance(checks, (list, tuple)) else list(checks)
    if not chosen and user_data is None:
        raise InputError("tick at least one check, or upload a CSV to audit", field="checks")
    ticked = runner.parse_checks(chosen, has_data=True) if chosen else []
    names = runner.with_user_data(ticked, user_data is not None, "a CSV: upload one with a 'text' column and group columns")
    added = [n for n in names if n not in ticked]
    work, most = audit_work(names, limit, user_data, bool(sample_file)), settings.audit_max_work
    if work > most:
        raise LimitError(f"this audit is {work:,} work units (sample size per check, plus rows x group columns "
                         f"for your CSV); at most {most:,} per audit (BERTDEMO_AUDIT_MAX_WORK): lower the sample "
                         "size, choose fewer checks or group columns, or sample your file", field="audit")
    baseline = load_baseline_upload(baseline_upload, settings)
    return runner.AuditOptions(checks=names, limit=limit, user_data=user_data, sample_user_data=bool(sample_file),
                               baseline=baseline), added


def run(service: Any, checks: Any, limit: Any, upload: Any, out_dir: Path, progress: Any,
        group_cols: Any = None, label_col: Any = None, sample_file: bool = False,
        baseline_upload: Any = None) -> dict[str, Any]:
    options, added = prepare(service.settings, checks, limit, upload, group_cols, label_col, sample_file,
                             baseline_upload)

    def report(fraction: float, description: str) -> None:
        if progress is not None:
            progress(fraction, desc=description)

    result = runner.run_audit(service, options, progress=report, bars=False)
    _redact_paths(result)
    rows = _table(result)
    import pandas as pd

    summary = _summary(result)
    if added:
        summary = (f"_Your CSV was audited: the {', '.join(added)} check was added because you uploaded a file._\n\n"
                   + summary)
    return {"summary": summary, "table": pd.DataFrame(rows, columns=TABLE_HEADERS), "plot": _plot(result),
            "files": _write_reports(result, out_dir), "result": result}
