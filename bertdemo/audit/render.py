"""Renders a report document as Markdown, HTML and a model-card section, from Jinja2 templates.

The templates (``report_templates/``) loop over the checks and draw whatever tables and figures
each check contributes (:class:`bertdemo.audit.checks.Table`, :class:`~bertdemo.audit.checks.Figure`);
nothing here knows a check by name. Escaping is the template engine's, stated once: the HTML
environment autoescapes every value; the Markdown environment passes every value through
:func:`md_escape` (HTML entities, since Markdown viewers render raw HTML, and table pipes), so text
from data, models or the user is inert in both. The HTML page is self-contained: inline CSS, plots
as base64 PNG (matplotlib's Agg canvas, no pyplot), no scripts, no external requests.
"""

from __future__ import annotations

import base64
import html
import io
from functools import cache
from typing import Any

import numpy as np
from markupsafe import Markup

from bertdemo.audit.checks import REGISTRY, Figure

TEMPLATES = "report_templates"


def md_escape(value: Any) -> str:
    """Any value as inert Markdown table-safe text: ``&<>`` as entities, ``|`` escaped, one line."""
    if value is None:
        return ""
    if isinstance(value, Markup):  # already rendered Markdown (the model-card section)
        return str(value)
    return html.escape(str(value), quote=False).replace("|", "\\|").replace("\n", " ")


@cache
def _env(kind: str) -> Any:
    import jinja2

    loader = jinja2.PackageLoader("bertdemo.audit", TEMPLATES)
    if kind == "html":
        return jinja2.Environment(loader=loader, autoescape=True, trim_blocks=True, lstrip_blocks=True,
                                  undefined=jinja2.StrictUndefined)
    return jinja2.Environment(loader=loader, autoescape=False, finalize=md_escape, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


def check_views(doc: dict[str, Any], examples: dict[str, list[dict[str, Any]]] | None = None,
                figures: bool = False) -> list[dict[str, Any]]:
    """Per check of the document: its entry plus its headline, tables and (for HTML) drawn figures."""
    views = []
    for name, c in doc["checks"].items():
        check = REGISTRY[name]
        measured = c["status"] not in ("not run", "error") and bool(c.get("metrics"))
        views.append({**c, "name": name, "summary": check.summary(c),
                      "tables": check.tables(c, (examples or {}).get(name, [])) if measured else [],
                      "figures": [(f.caption, draw(f)) for f in check.figures(c)] if measured and figures else []})
    return views


def _context(doc: dict[str, Any], **extra: Any) -> dict[str, Any]:
    settings = doc.get("model", {}).get("settings", {})
    return {**doc, "settings": settings, "mlm_model": settings.get("mlm_model", "?"),
            "sentiment_model": settings.get("sentiment_model", "?"), **extra}


def model_card_section(doc: dict[str, Any]) -> str:
    """Markdown for a model card's "Bias, Risks, and Limitations" section."""
    return _env("md").get_template("model_card.md.j2").render(_context(doc, views=check_views(doc)))


def render_markdown(doc: dict[str, Any], examples: dict[str, list[dict[str, Any]]] | None = None) -> str:
    return _env("md").get_template("report.md.j2").render(
        _context(doc, views=check_views(doc, examples), model_card=Markup(model_card_section(doc))))


def render_html(doc: dict[str, Any], examples: dict[str, list[dict[str, Any]]]) -> str:
    return _env("html").get_template("report.html.j2").render(
        _context(doc, views=check_views(doc, examples, figures=True), model_card=model_card_section(doc)))


def draw(f: Figure) -> str:
    """A check's bar chart as a PNG data URI."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    from bertdemo.drawing import release_fonts

    fig = MplFigure(figsize=(7, 0.45 * len(f.labels) + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    vals = [np.nan if v is None else v for v in f.values]
    y = np.arange(len(f.labels))
    err = None
    if f.cis:
        def half(v: float, c: Any, k: int) -> float:
            ok = c and c[k] is not None and np.isfinite(v)
            return max(0.0, (v - c[0]) if k == 0 else (c[1] - v)) if ok else 0.0

        err = [[half(v, c, 0) for v, c in zip(vals, f.cis, strict=True)],
               [half(v, c, 1) for v, c in zip(vals, f.cis, strict=True)]]
    ax.barh(y, vals, xerr=err, color="#4c72b0", capsize=3)
    ax.set_yticks(y, f.labels)
    ax.invert_yaxis()
    if f.ref is not None:
        ax.axvline(f.ref, color="#444", linestyle="--", linewidth=1)
    for label, v in f.anchors.items():
        ax.axvline(v, color="#dd8452", linestyle=":", linewidth=1.5, label=label)
    if f.anchors:
        ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f.title, fontsize=10)
    ax.set_xlabel(f.xlabel)
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    release_fonts()
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
