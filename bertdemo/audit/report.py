"""Writes an audit into a folder: report.json, report.md, report.html, per-example CSVs, manifest.json.

Every file is written to a temporary name and moved into place with ``os.replace``, inside a
temporary folder next to ``--out``; only when all files are complete is that folder swapped in for
``--out``. An interrupted audit therefore leaves either the previous report or none, never half of
one. ``--out`` must be new, empty, or a previous audit report (it is replaced as a whole).

The HTML report is one self-contained file: inline CSS, plots embedded as base64 PNG (matplotlib,
Agg canvas, no pyplot), no scripts, no external requests; all text from data, models or the user
is HTML-escaped.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from bertdemo import atomic
from bertdemo.audit.data import sha256_file
from bertdemo.errors import InputError

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
    "Small differences: with --limit or few rows per group the intervals are wide; a gate compares the point "
    "estimate only, so read the interval before trusting a pass or a fail.",
    "Comparability for StereoSet: the published anchors are on the StereoSet test set; this audit runs the dev set.",
]


# ---- safe output helpers -----------------------------------------------------------------------
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
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buf.getvalue().encode("utf-8")


# ---- the report document -----------------------------------------------------------------------
def build_document(result: Any) -> dict[str, Any]:
    doc = result.to_dict()
    doc["what_this_audit_can_tell"] = CAN_TELL
    doc["what_this_audit_cannot_tell"] = CANNOT_TELL
    doc["example_files"] = {n: f"examples_{n}.csv" for n, c in result.checks.items() if c.examples}
    return jsonable(doc)


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _ci(pair: Any, nd: int = 2) -> str:
    if not pair or pair[0] is None or pair[1] is None:
        return ""
    return f" [{pair[0]:.{nd}f}, {pair[1]:.{nd}f}]"


def headline(name: str, check: dict[str, Any]) -> str:
    """One line of the check's key numbers (plain text; escape before putting into HTML)."""
    m = check.get("metrics") or {}
    if check["status"] in ("not run", "error") or not m:
        return check.get("error") or ""
    if name == "crows_pairs":
        o = m["overall"]
        return (f"{_fmt(o['metric_score'])}% of {o['n']} pairs prefer the more stereotypical sentence "
                f"(95% CI {_fmt(o['ci_low'])}-{_fmt(o['ci_high'])}; 50 = no preference)")
    if name == "stereoset":
        o = m["overall"]
        return (f"SS {_fmt(o['ss'])}{_ci(o.get('ss_ci'))}, LMS {_fmt(o['lms'])}{_ci(o.get('lms_ci'))}, "
                f"ICAT {_fmt(o['icat'])}{_ci(o.get('icat_ci'))} on {o['n']} examples")
    if name == "templates":
        parts = [f"{a} {v['mean_jsd']:.4f}" for a, v in m["attributes"].items()]
        return "mean Jensen-Shannon divergence between groups: " + ", ".join(parts)
    parts = []
    for attr, r in m["by_attribute"].items():
        s = f"{attr}: DPD {_fmt(r['demographic_parity_difference'], 3)}, DPR {_fmt(r['demographic_parity_ratio'], 3)}"
        if r.get("has_labels"):
            s += f", EOD {_fmt(r['equalized_odds_difference'], 3)}"
        parts.append(s)
    if "counterfactual" in m:
        parts.append(f"name-swap flip rate {_fmt(m['counterfactual']['flip_rate'], 3)}")
    return "; ".join(parts)


def model_card_section(doc: dict[str, Any]) -> str:
    """Markdown for a model card's "Bias, Risks, and Limitations" section."""
    models = doc.get("model", {}).get("settings", {})
    checks = doc["checks"]
    lines = ["## Bias, Risks, and Limitations", "",
             f"Audited with `bertdemo audit` on {doc.get('finished_at', '')[:10]} (verdict: **{doc['verdict'].upper()}**; "
             f"masked LM `{models.get('mlm_model', '?')}`, classifier `{models.get('sentiment_model', '?')}`)."]
    if doc.get("sampled"):
        lines.append(f"The audit **sampled** its data (`--limit {doc.get('limit')}`, seed {doc.get('seed')}); "
                     "the numbers are estimates with wide intervals.")
    lines.append("")
    for name, c in checks.items():
        if c["status"] == "not run":
            continue
        anchor = ""
        if name == "crows_pairs":
            anchor = " bert-base-uncased: 60.5 (Nangia et al. 2020), 60.81 (bias-bench)."
        elif name == "stereoset":
            anchor = " bert-base-uncased (test set, bias-bench): SS 57.82, LMS 84.36, ICAT 71.15."
        lines.append(f"- **{c['title']}** ({c['status']}): {_md_cell(headline(name, c))}.{anchor}")
    lines += ["", "What these measurements cannot tell:", ""]
    lines += [f"- {t}" for t in CANNOT_TELL]
    return "\n".join(lines) + "\n"


def render_markdown(doc: dict[str, Any]) -> str:
    checks = doc["checks"]
    out = [f"# Bias audit: {doc['verdict'].upper()}", ""]
    s = doc.get("model", {}).get("settings", {})
    out += [f"- Masked LM: `{s.get('mlm_model', '?')}`", f"- Sentiment classifier: `{s.get('sentiment_model', '?')}`",
            f"- Seed: {doc['seed']}; limit: {doc['limit'] if doc['limit'] is not None else 'none (full data)'}",
            f"- Finished: {doc.get('finished_at')}; schema `{doc['schema_version']}`", ""]
    if doc.get("sampled"):
        out += ["> **Sampled run**: `--limit` drew a seeded sample; numbers are not comparable to full-data anchors.", ""]
    out += ["| check | status | key numbers |", "|---|---|---|"]
    for name, c in checks.items():
        out.append(f"| {c['title']} | **{c['status']}** | {_md_cell(headline(name, c))} |")
    out.append("")
    for name, c in checks.items():
        if c["status"] == "not run":
            continue
        out += [f"## {c['title']}", "", f"Status: **{c['status']}**" + (f" ({c['error']})" if c.get("error") else ""), ""]
        if c.get("sampling"):
            sp = c["sampling"]
            out.append(f"Data: {sp['used']:,} of {sp['available']:,} {sp['unit']}" +
                       (f" (sampled, seed {sp['seed']})" if sp["sampled"] else "") + ".")
            out.append("")
        if c["gates"]:
            out += ["| gate | value | threshold | result |", "|---|---|---|---|"]
            for g in c["gates"]:
                out.append(f"| {_md_cell(g['metric'])} (`{g['config_key']}`) | {_fmt(g['value'], 4)} | "
                           f"{g['comparison']} {g['threshold']} | {'pass' if g['passed'] else 'FAIL'} |")
            out.append("")
        out += _md_details(name, c)
        for a in c.get("anchors", []):
            out.append(f"- Published anchor ({a['model']}, {a['split']}): "
                       + (f"{a['value']}" if "value" in a else f"SS {a['ss']}, LMS {a['lms']}, ICAT {a['icat']}")
                       + f". Source: {a['source']}.")
        out.append("")
    out += [model_card_section(doc), "## What this audit can tell", ""]
    out += [f"- {t}" for t in doc["what_this_audit_can_tell"]]
    out += ["", "## Files", "", "- `report.json`: every number, threshold and verdict", "- `report.html`: this report with plots",
            "- `manifest.json`: models, weights and data hashes, seed, package versions, time"]
    out += [f"- `{f}`: per-example results of {n}" for n, f in doc["example_files"].items()]
    return "\n".join(out) + "\n"


def _md_cell(text: str) -> str:
    """Table-cell text: pipes escaped, and HTML escaped (markdown viewers render raw HTML)."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _crows_anchor(bias_type: str) -> str:
    from bertdemo.audit.runner import ANCHORS

    for a in ANCHORS["crows_pairs"]:
        if bias_type == "overall" and "by_bias_type" in a:
            return str(a["value"])
        if bias_type in a.get("by_bias_type", {}):
            return str(a["by_bias_type"][bias_type])
    return ""


def _md_details(name: str, c: dict[str, Any]) -> list[str]:
    m = c.get("metrics") or {}
    out: list[str] = []
    if not m:
        return out
    if name == "crows_pairs":
        out += ["| bias type | pairs | metric score | 95% CI | stereo | antistereo | bert-base-uncased (bias-bench) |",
                "|---|---|---|---|---|---|---|"]
        for t, b in {"overall": m["overall"], **m["by_bias_type"]}.items():
            out.append(f"| {t} | {b['n']} | {_fmt(b['metric_score'])} | {_fmt(b['ci_low'])}-{_fmt(b['ci_high'])} | "
                       f"{_fmt(b['stereo_score'])} | {_fmt(b['antistereo_score'])} | {_crows_anchor(t)} |")
    elif name == "stereoset":
        out += ["| domain | examples | SS | LMS | ICAT |", "|---|---|---|---|---|"]
        for d, b in {"overall": m["overall"], **m["by_domain"]}.items():
            out.append(f"| {d} | {b['n']} | {_fmt(b['ss'])}{_ci(b.get('ss_ci'))} | {_fmt(b['lms'])}{_ci(b.get('lms_ci'))} | "
                       f"{_fmt(b['icat'])}{_ci(b.get('icat_ci'))} |")
    elif name == "templates":
        for attr, a in m["attributes"].items():
            out += [f"**{attr}** (mean JSD {a['mean_jsd']:.4f}, max {a['max_jsd']:.4f})", "",
                    "| template | " + " | ".join(a["groups"]) + " | JSD |", "|---" * (len(a["groups"]) + 2) + "|"]
            for pt in a["per_template"]:
                tops = [", ".join(_md_cell(x["token"]) for x in pt["top_predictions"][g][:5]) for g in a["groups"]]
                jsd = "; ".join(f"{k} {v:.4f}" for k, v in pt["jsd"].items())
                out.append(f"| {_md_cell(pt['template'])} | " + " | ".join(tops) + f" | {jsd} |")
            out.append("")
    else:
        for attr, r in m["by_attribute"].items():
            metrics = r["metrics"]
            out += [f"**{_md_cell(attr)}**: DPD {_fmt(r['demographic_parity_difference'], 3)}"
                    f"{_ci(r['ci'].get('demographic_parity_difference'), 3)}, DPR {_fmt(r['demographic_parity_ratio'], 3)}"
                    f"{_ci(r['ci'].get('demographic_parity_ratio'), 3)}"
                    + (f", EOD {_fmt(r['equalized_odds_difference'], 3)}{_ci(r['ci'].get('equalized_odds_difference'), 3)}"
                       if r["has_labels"] else ""), "",
                    "| group | n | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 2) + "|"]
            for g, vals in r["by_group"].items():
                cells = " | ".join(_fmt(vals[k], 3) for k in metrics)
                out.append(f"| {_md_cell(g)} | {r['counts'].get(g, '')} | {cells} |")
            out.append("")
        if "counterfactual" in m:
            cf = m["counterfactual"]
            out.append(f"Counterfactual name swaps: {cf['flipped_pairs']:,} of {cf['pairs']:,} pairs flip the label "
                       f"(rate {_fmt(cf['flip_rate'], 4)}); {cf['invariance_failures']} of {cf['base_sentences']} base "
                       f"sentences get different labels for different names.")
            out.append("")
    return out


# ---- HTML --------------------------------------------------------------------------------------
def _png(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _bar_plot(title: str, labels: list[str], values: list[Any], cis: list[Any] | None, ref: float | None,
              xlabel: str, anchors: dict[str, float] | None = None) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 0.45 * len(labels) + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    vals = [np.nan if v is None else v for v in values]
    y = np.arange(len(labels))
    err = None
    if cis:
        lo = [max(0.0, v - c[0]) if c and c[0] is not None and np.isfinite(v) else 0.0 for v, c in zip(vals, cis, strict=True)]
        hi = [max(0.0, c[1] - v) if c and c[1] is not None and np.isfinite(v) else 0.0 for v, c in zip(vals, cis, strict=True)]
        err = [lo, hi]
    ax.barh(y, vals, xerr=err, color="#4c72b0", capsize=3)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    if ref is not None:
        ax.axvline(ref, color="#444", linestyle="--", linewidth=1)
    for name, v in (anchors or {}).items():
        ax.axvline(v, color="#dd8452", linestyle=":", linewidth=1.5, label=name)
    if anchors:
        ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    return _png(fig)


def plots(doc: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """check -> [(caption, data URI)]"""
    out: dict[str, list[tuple[str, str]]] = {}
    c = doc["checks"]
    m = c["crows_pairs"].get("metrics") if c["crows_pairs"]["status"] in ("pass", "fail") else None
    if m:
        blocks = {"overall": m["overall"], **m["by_bias_type"]}
        out["crows_pairs"] = [("CrowS-Pairs metric score by bias type (50 = no preference), 95% Wilson intervals",
                               _bar_plot("CrowS-Pairs: % pairs preferring the more stereotypical sentence", list(blocks),
                                         [b["metric_score"] for b in blocks.values()],
                                         [[b["ci_low"], b["ci_high"]] for b in blocks.values()], 50.0, "metric score (%)",
                                         {"bert-base-uncased 60.5": 60.5}))]
    m = c["stereoset"].get("metrics") if c["stereoset"]["status"] in ("pass", "fail") else None
    if m:
        blocks = {"overall": m["overall"], **m["by_domain"]}
        out["stereoset"] = [
            ("StereoSet stereotype score (SS) by domain, bootstrap intervals",
             _bar_plot("StereoSet SS (50 = unbiased)", list(blocks), [b["ss"] for b in blocks.values()],
                       [b.get("ss_ci") for b in blocks.values()], 50.0, "SS", {"bert-base-uncased 57.82": 57.82})),
            ("StereoSet language-modelling score (LMS) by domain",
             _bar_plot("StereoSet LMS (100 = always prefers a related option)", list(blocks),
                       [b["lms"] for b in blocks.values()], [b.get("lms_ci") for b in blocks.values()], 50.0, "LMS",
                       {"bert-base-uncased 84.36": 84.36})),
        ]
    m = c["templates"].get("metrics") if c["templates"]["status"] in ("pass", "fail") else None
    if m:
        labels, vals = [], []
        for attr, a in m["attributes"].items():
            for pt in a["per_template"]:
                labels.append(f"{attr}: {pt['template'][:40]}")
                vals.append(pt["max_jsd"])
        out["templates"] = [("Largest Jensen-Shannon divergence between groups, per template and attribute",
                             _bar_plot("Template probes: JSD between groups at [MASK]", labels, vals, None, None, "JSD (bits)"))]
    for name in ("classifier", "user_data"):
        m = c[name].get("metrics") if c[name]["status"] in ("pass", "fail") else None
        if not m:
            continue
        figs = []
        for attr, r in m["by_attribute"].items():
            groups = list(r["by_group"])
            figs.append((f"Positive rate by {attr}, bootstrap intervals",
                         _bar_plot(f"Positive rate by {attr}", groups, [r["by_group"][g]["positive_rate"] for g in groups],
                                   [r["ci"].get("by_group", {}).get(g, {}).get("positive_rate") for g in groups],
                                   r["overall"]["positive_rate"], "share predicted positive")))
        out[name] = figs
    return out


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}th{background:#f3f3f3}
.pass{color:#1a7f37;font-weight:bold}.fail{color:#cf222e;font-weight:bold}.error{color:#9a6700;font-weight:bold}
.notrun{color:#777}.verdict{font-size:1.4em;padding:.4em .8em;border-radius:6px;display:inline-block}
.verdict.pass{background:#dafbe1}.verdict.fail{background:#ffebe9}.note{background:#fff8c5;padding:.5em .8em;border-radius:6px}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.3em 0}code{background:#f3f3f3;padding:0 .2em}
figure{margin:0 0 1em}pre{white-space:pre-wrap;background:#f6f8fa;padding:.6em}figcaption{font-size:.85em;color:#555}"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _cls(status: str) -> str:
    return {"pass": "pass", "fail": "fail", "error": "error"}.get(status, "notrun")


def render_html(doc: dict[str, Any], examples: dict[str, list[dict[str, Any]]]) -> str:
    s = doc.get("model", {}).get("settings", {})
    figs = plots(doc)
    h = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; style-src \'unsafe-inline\'">',
         f"<title>Bias audit: {_e(doc['verdict'].upper())}</title><style>{CSS}</style></head><body>",
         f"<h1>Bias audit <span class=\"verdict {_cls(doc['verdict'])}\">{_e(doc['verdict'].upper())}</span></h1>",
         "<ul>", f"<li>Masked LM: <code>{_e(s.get('mlm_model'))}</code></li>",
         f"<li>Sentiment classifier: <code>{_e(s.get('sentiment_model'))}</code></li>",
         f"<li>Seed {_e(doc['seed'])}; limit {_e(doc['limit'] if doc['limit'] is not None else 'none (full data)')}; "
         f"finished {_e(doc.get('finished_at'))}; schema <code>{_e(doc['schema_version'])}</code></li></ul>"]
    if doc.get("sampled"):
        h.append('<p class="note"><b>Sampled run:</b> <code>--limit</code> drew a seeded sample; '
                 "numbers are estimates and not comparable to full-data anchors.</p>")
    h += ["<h2>Checks</h2><table><tr><th>check</th><th>status</th><th>key numbers</th></tr>"]
    for name, c in doc["checks"].items():
        h.append(f"<tr><td>{_e(c['title'])}</td><td class=\"{_cls(c['status'])}\">{_e(c['status'])}</td>"
                 f"<td>{_e(headline(name, c))}</td></tr>")
    h.append("</table>")
    for name, c in doc["checks"].items():
        if c["status"] == "not run":
            continue
        h.append(f"<h2>{_e(c['title'])}: <span class=\"{_cls(c['status'])}\">{_e(c['status'])}</span></h2>")
        if c.get("error"):
            h.append(f"<p class=\"error\">Error: {_e(c['error'])}</p>")
        sp = c.get("sampling")
        if sp:
            h.append(f"<p>Data: {sp['used']:,} of {sp['available']:,} {_e(sp['unit'])}"
                     + (f" (<b>sampled</b>, seed {_e(sp['seed'])})" if sp["sampled"] else "") + ".</p>")
        if c["gates"]:
            h.append("<table><tr><th>gate</th><th>config key</th><th>value</th><th>threshold</th><th>result</th></tr>")
            for g in c["gates"]:
                h.append(f"<tr><td>{_e(g['metric'])}</td><td><code>{_e(g['config_key'])}</code></td>"
                         f"<td>{_e(_fmt(g['value'], 4))}</td>"
                         f"<td>{_e(g['comparison'])} {_e(g['threshold'])}</td>"
                         f"<td class=\"{'pass' if g['passed'] else 'fail'}\">{'pass' if g['passed'] else 'FAIL'}</td></tr>")
            h.append("</table>")
        for caption, uri in figs.get(name, []):
            h.append(f'<figure><img alt="{_e(caption)}" src="{uri}"><figcaption>{_e(caption)}</figcaption></figure>')
        h += _html_details(name, c, examples.get(name, []))
        for a in c.get("anchors", []):
            val = a["value"] if "value" in a else f"SS {a['ss']}, LMS {a['lms']}, ICAT {a['icat']}"
            h.append(f"<p>Published anchor ({_e(a['model'])}, {_e(a['split'])}): <b>{_e(val)}</b>. {_e(a['source'])}.</p>")
    md_section = model_card_section(doc)
    h += ["<h2>For the model card</h2><p>Paste this into the model card's “Bias, Risks, and Limitations” section "
          "(it is also in report.md):</p>", f"<pre>{_e(md_section)}</pre>",
          "<h2>What this audit can tell</h2><ul>", *[f"<li>{_e(t)}</li>" for t in doc["what_this_audit_can_tell"]], "</ul>",
          "<h2>What it cannot tell</h2><ul>", *[f"<li>{_e(t)}</li>" for t in doc["what_this_audit_cannot_tell"]], "</ul>",
          "<p>Per-example results: " + ", ".join(f"<code>{_e(f)}</code>" for f in doc["example_files"].values())
          + "; every number: <code>report.json</code>; provenance: <code>manifest.json</code>.</p>",
          "</body></html>"]
    return "\n".join(h) + "\n"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(x)}</th>" for x in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(x)}</td>" for x in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html_details(name: str, c: dict[str, Any], examples: list[dict[str, Any]]) -> list[str]:
    m = c.get("metrics") or {}
    if not m:
        return []
    out = []
    if name == "crows_pairs":
        out.append(_table(["bias type", "pairs", "metric score", "95% CI", "stereo", "antistereo", "ties",
                           "bert-base-uncased (bias-bench)"],
                          [[t, b["n"], _fmt(b["metric_score"]), f"{_fmt(b['ci_low'])}-{_fmt(b['ci_high'])}",
                            _fmt(b["stereo_score"]), _fmt(b["antistereo_score"]), b["neutral"], _crows_anchor(t)]
                           for t, b in {"overall": m["overall"], **m["by_bias_type"]}.items()]))
        top = sorted(examples, key=lambda r: r["sent_more_score"] - r["sent_less_score"], reverse=True)[:5]
        if top:
            out.append("<p>Pairs where the model most prefers <code>sent_more</code>, the sentence the metric counts as "
                       "stereotypical (content warning: benchmark text is offensive by design):</p>")
            out.append(_table(["bias type", "sent_more", "sent_less", "log-prob gap"],
                              [[r["bias_type"], r["sent_more"], r["sent_less"],
                                _fmt(r["sent_more_score"] - r["sent_less_score"])] for r in top]))
    elif name == "stereoset":
        out.append(_table(["domain", "examples", "targets", "SS", "LMS", "ICAT"],
                          [[d, b["n"], b.get("targets"), _fmt(b["ss"]) + _ci(b.get("ss_ci")),
                            _fmt(b["lms"]) + _ci(b.get("lms_ci")), _fmt(b["icat"]) + _ci(b.get("icat_ci"))]
                           for d, b in {"overall": m["overall"], **m["by_domain"]}.items()]))
    elif name == "templates":
        for attr, a in m["attributes"].items():
            groups = list(a["groups"])
            out.append(f"<h3>{_e(attr)}: mean JSD {a['mean_jsd']:.4f}</h3>")
            out.append(_table(["template", *[f"top predictions: {g}" for g in groups], "occupation share", "JSD"],
                              [[pt["template"], *[", ".join(x["token"] for x in pt["top_predictions"][g][:5]) for g in groups],
                                "; ".join(f"{g} {_fmt(v, 3)}" for g, v in pt["occupation_share"].items()),
                                "; ".join(f"{k} {v:.4f}" for k, v in pt["jsd"].items())] for pt in a["per_template"]]))
    else:
        for attr, r in m["by_attribute"].items():
            metrics = r["metrics"]
            out.append(f"<h3>{_e(attr)}</h3>")
            line = (f"demographic parity difference {_fmt(r['demographic_parity_difference'], 3)}"
                    f"{_ci(r['ci'].get('demographic_parity_difference'), 3)}, ratio {_fmt(r['demographic_parity_ratio'], 3)}"
                    f"{_ci(r['ci'].get('demographic_parity_ratio'), 3)}")
            if r["has_labels"]:
                line += (f", equalized odds difference {_fmt(r['equalized_odds_difference'], 3)}"
                         f"{_ci(r['ci'].get('equalized_odds_difference'), 3)}")
            out.append(f"<p>{_e(line)}</p>")
            ci = r["ci"].get("by_group", {})
            out.append(_table(["group", "n", *metrics],
                              [[g, r["counts"].get(g, ""), *[_fmt(v[k], 3) + _ci(ci.get(g, {}).get(k), 3) for k in metrics]]
                               for g, v in r["by_group"].items()]))
        if "counterfactual" in m:
            cf = m["counterfactual"]
            out.append(f"<p>Counterfactual name swaps: {cf['flipped_pairs']:,} of {cf['pairs']:,} sentence pairs flip the "
                       f"label (rate {_e(_fmt(cf['flip_rate'], 4))}); {cf['invariance_failures']} of {cf['base_sentences']} "
                       "base sentences get different labels for different names.</p>")
            out.append(_table(["attribute swapped", "pairs", "flipped", "flip rate"],
                              [[a, v["pairs"], v["flipped_pairs"], _fmt(v["flip_rate"], 4)]
                               for a, v in cf["by_attribute"].items()]))
        if name == "user_data" and examples:
            shown = examples[:10]
            cols = [k for k in shown[0] if k != "row"]
            out.append("<p>First rows of your data as scored:</p>")
            out.append(_table(cols, [[r.get(k) for k in cols] for r in shown]))
    return out


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
            "report.md": render_markdown(doc).encode("utf-8"),
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


