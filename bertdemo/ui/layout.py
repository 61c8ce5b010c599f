"""The Gradio app: one ``gr.Blocks`` with tabs Chat, Fill mask, Next sentence, Sentiment, Attention, Bias audit, About
(and Compare models, when the operator configures a second model).

``build_app(settings)`` loads the models once (``warm_up``) and renders one ``gr.Blocks`` per tab
(:mod:`bertdemo.ui.tabs`), each wiring its events to its own thin callbacks with a stable
``api_name``. ``launch_kwargs(settings)``
holds what ``launch()`` needs (theme, CSS, upload limit, server address), shared by ``app.py``,
``bertdemo serve`` and the tests.
"""

from __future__ import annotations

import html
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from bertdemo.config import Settings, load_settings
from bertdemo.ui import files, security, tools
from bertdemo.ui.common import UNREADABLE, AppContext
from bertdemo.ui.tabs import about
from bertdemo.ui.tabs.attention import AttentionTab
from bertdemo.ui.tabs.audit import AuditTab
from bertdemo.ui.tabs.chat import ChatTab
from bertdemo.ui.tabs.compare import CompareTab
from bertdemo.ui.tabs.fill import FillTab
from bertdemo.ui.tabs.nsp import NextSentenceTab
from bertdemo.ui.tabs.sentiment import SentimentTab

TITLE = "bertdemo - what BERT learns"
FAST_ENDPOINTS = ("fill_mask", "next_sentence", "sentiment")  # concurrency_limit = settings.fast_concurrency
CSS = """
#app-header h1 {margin-bottom: 0.2em;}
#app-header p {margin-top: 0; opacity: 0.8;}
.caveat {font-size: 0.9em; opacity: 0.85;}
/* Markdown tables (About, chat answers) on a phone: scroll sideways and break lines between words,
   never inside them (an 8-column table otherwise squeezes each word into a letter per line) */
@media (max-width: 640px) {
  #tabs .prose table {display: block; overflow-x: auto; max-width: 100%; border: none;}
  #tabs .prose th, #tabs .prose td {word-break: normal; overflow-wrap: normal; min-width: 5.5em;}
}
#mc-result td:first-child {white-space: nowrap;}  /* compare models: row names on one line */
/* the Bias audit table on a phone: its columns keep a readable width and the table scrolls sideways in
   its box (squeezed to 390 px, every word would break into a letter per line) */
@media (max-width: 640px) {
  #au-table .table-container {min-width: 1000px;}
  #au-table {overflow-x: auto;}
}
/* chat answers on a phone: an answer's bubble takes the whole width and its tables' cells may shrink to their
   longest word (a two-sentence answer then shows both sentences' columns; wider tables still scroll in the bubble) */
@media (max-width: 640px) {
  #chat-bot .bot-row {max-width: 100%; margin-left: 0 !important;}
  #tabs #chat-bot .prose table {font-size: 0.92em;}
  #tabs #chat-bot .prose th, #tabs #chat-bot .prose td {min-width: 0; padding: 4px 5px; overflow-wrap: break-word;}
}
"""


def launch_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``demo.launch()``: address, theme, CSS, upload limit, no errors' internals,
    security headers (:mod:`bertdemo.ui.security`), monitoring off, the MCP server when asked for."""
    host = settings.host
    if os.environ.get("SPACE_ID") and not (os.environ.get("BERTDEMO_HOST") or os.environ.get("GRADIO_SERVER_NAME")):
        host = "0.0.0.0"  # a Hugging Face Space must listen on all interfaces
    kwargs: dict[str, Any] = {
        "server_name": host,
        "server_port": settings.port,
        "share": False,
        "show_error": False,
        "max_file_size": settings.max_upload_bytes,
        "theme": gr.themes.Soft(),
        "css": CSS,
        "footer_links": ["api"],
        # CSP frame-ancestors (Hub embedding only), nosniff, Referrer-Policy; bodies over max_request_bytes
        # or JSON with more than max_json_values values refused before parsing; errors logged without tracebacks
        "app_kwargs": security.app_kwargs(settings.max_request_bytes, settings.max_json_values, settings.log_user_text),
        "state_session_capacity": settings.max_sessions,  # bounds gradio's per-session memory (bertdemo.config)
        "enable_monitoring": settings.monitoring,  # off unless the operator turns it on (BERTDEMO_MONITORING)
        "mcp_server": settings.mcp,  # BERTDEMO_MCP, else gradio's GRADIO_MCP_SERVER (read by load_settings)
        # gradio runs handlers in a thread pool of max_threads (40 by default): room for every fast endpoint's
        # fast_concurrency plus the other events', so a full fill-mask lane cannot starve the rest
        "max_threads": max(40, len(FAST_ENDPOINTS) * settings.fast_concurrency + 8 * settings.queue_concurrency),
    }
    if settings.output_dir:
        out = Path(settings.output_dir).resolve()
        if not out.is_relative_to(Path(tempfile.gettempdir()).resolve()):
            kwargs["allowed_paths"] = [str(out)]
    return kwargs


# What gradio's queue keeps for its /monitoring pages when they are off: gradio records every event
# (up to GRADIO_ANALYTICS_MAX_EVENTS, 10,000) and, by default after every finished event, rebuilds a pandas
# summary of all of them (GRADIO_ANALYTICS_CACHE_FREQUENCY=1): measured in the served app, 8 % of the
# time holding the GIL after 1,000 requests, growing with the record until 10,000. Nothing reads either
# while monitoring is off.
QUIET_ANALYTICS = {"GRADIO_ANALYTICS_MAX_EVENTS": "64", "GRADIO_ANALYTICS_CACHE_FREQUENCY": str(2**62)}


def no_queue_analytics() -> None:
    """Keep gradio's queue from recording and summarising events nobody reads (monitoring off).

    gradio reads these variables when a queue is made (``demo.queue()``); an operator's own values win.
    """
    for name, value in QUIET_ANALYTICS.items():
        os.environ.setdefault(name, value)


def _allowed(component: Any) -> str:
    """What an input component accepts, in words, for the message a wrong-shaped API payload gets."""
    if isinstance(component, gr.Slider):
        return f"a number from {component.minimum:g} to {component.maximum:g}"
    if isinstance(component, (gr.Dropdown, gr.Radio, gr.CheckboxGroup)):
        return "one of: " + ", ".join(str(c[1] if isinstance(c, tuple) else c) for c in component.choices)
    if isinstance(component, gr.File):
        return "an uploaded file"
    if isinstance(component, gr.Chatbot):
        return "a list of chat messages"
    return "text"


def _accepts(component: Any, payload: Any) -> bool:
    """Whether an API payload has the type its component declares. gradio turns any JSON value into text
    for a Textbox (a number, a list: scored as if typed) and names neither the field nor the range when a
    slider's value is out of bounds (it repeats the value, 400 digits of it if sent)."""
    if payload is None:
        return True  # gradio's default for a missing value
    if isinstance(component, gr.Textbox):
        return isinstance(payload, str)
    if isinstance(component, (gr.Slider, gr.Number)):
        if isinstance(payload, bool) or not isinstance(payload, (int, float)):
            return False
        if isinstance(payload, float) and not math.isfinite(payload):
            return False
        if isinstance(component, gr.Slider):
            return component.minimum <= payload <= component.maximum
    return True


def _field(component: Any) -> str:
    return str(getattr(component, "label", None) or getattr(component, "elem_id", None) or "input")


def _quiet(err: gr.Error) -> gr.Error:
    """gradio's own message (which may quote the payload) for the visitor, escaped, and never printed with
    a traceback to the server log: logs carry no user-supplied values (``BERTDEMO_LOG_USER_TEXT``)."""
    return gr.Error(html.escape(str(getattr(err, "message", "") or "invalid input")), print_exception=False)


def guard_inputs(demo: gr.Blocks) -> None:
    """Answer an API payload of the wrong shape (the page cannot send one) with a message naming the
    field and what it accepts, instead of gradio's generic "error" answer, and keep the payload out of
    the server log (gradio prints its own input errors with a traceback that quotes the value)."""
    seen: set[int] = set()
    for fn in demo.fns.values():
        for comp in fn.inputs:
            if id(comp) in seen or not hasattr(comp, "preprocess"):
                continue
            seen.add(id(comp))

            def preprocess(payload: Any, _original: Any = comp.preprocess, _comp: Any = comp) -> Any:
                refusal = gr.Error(html.escape(f"{_field(_comp)}: must be {_allowed(_comp)}"), print_exception=False)
                if not _accepts(_comp, payload):
                    raise refusal
                try:
                    return _original(payload)
                except gr.Error as err:  # gradio's own check: its words for a file (type, size), ours otherwise
                    raise (_quiet(err) if isinstance(_comp, gr.File) else refusal) from None
                except Exception:
                    raise refusal from None

            comp.preprocess = preprocess

    original = demo.preprocess_data

    async def preprocess_data(block_fn: Any, inputs: list[Any], state: Any, explicit_call: bool = False) -> Any:
        try:
            return await original(block_fn, inputs, state, explicit_call)
        except Exception as err:
            if getattr(block_fn, "is_validator_function", False):
                # A validator runs before queueing; a payload it cannot read is left to the handler,
                # whose answer names the field (a validator's refusal is for limits only).
                return [UNREADABLE] * len(block_fn.inputs)
            if isinstance(err, gr.Error):
                raise err if not err.print_exception else _quiet(err) from None
            # gradio's own payload checks (file references, data models) before ours run
            accepted = "; ".join(f"{_field(c)}: {_allowed(c)}" for c in block_fn.inputs)
            raise gr.Error(html.escape(f"an input has the wrong type for this endpoint. It accepts {accepted}"),
                           print_exception=False) from None

    demo.preprocess_data = preprocess_data  # type: ignore[method-assign]


def build_app(settings: Settings | None = None, service: Any = None, warm_up: bool = True) -> gr.Blocks:
    """The whole app, with models loaded (``warm_up``) and the queue configured from ``settings``."""
    if settings is None:
        settings = load_settings()
    if service is None:
        from bertdemo.service import get_service

        service = get_service(settings)
    if warm_up:
        service.warm_up()
    ctx = AppContext(service, settings)
    audit = AuditTab(ctx)
    compare = CompareTab(ctx)  # only with a second model; without one the About tab says how to turn it on
    tabs = {"chat": ChatTab(ctx, audit), "fill": FillTab(ctx), "nsp": NextSentenceTab(ctx),
            "sentiment": SentimentTab(ctx), "attention": AttentionTab(ctx),
            **({"compare": compare} if compare.enabled else {}), "audit": audit}
    names = {"chat": "Chat", "fill": "Fill mask", "nsp": "Next sentence", "sentiment": "Sentiment", "attention": "Attention",
             "compare": "Compare models", "audit": "Bias audit"}
    # Each tab module builds its components straight into its gr.Tab (a gr.Column, not a gr.Blocks of
    # its own: gradio makes a whole FastAPI app for every Blocks, twice, which took 1 of the 8 s start-up).
    builders = {key: tab.build for key, tab in tabs.items()}
    builders["about"] = lambda: about.build(service, settings)
    names["about"] = "About"

    # Files expire by bertdemo.ui.files (on unload, after file_ttl_s, at start-up), not gradio's delete_cache.
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown("# bertdemo\nWhat BERT learns (masked words, next sentences), how it is used (sentiment), "
                    "and a bias audit before it ships. Inputs are not stored or logged.", elem_id="app-header")
        # "wrap": on a phone the tab names wrap onto a second row instead of hiding behind a "..." menu
        with gr.Tabs(elem_id="tabs", overflow_behavior="wrap"):
            for key, build in builders.items():
                with gr.Tab(names[key], id=key, elem_id=f"tab-{key}"):
                    build()
        demo.unload(ctx.cleanup_session)
        if settings.mcp:
            tools.AgentTools(ctx, tabs).register()

    if settings.mcp:
        tools.document_only_tools(demo)

    guard_inputs(demo)
    files.track(demo, ctx.files)
    # Each endpoint has its own concurrency group: FAST_ENDPOINTS let fast_concurrency requests through at
    # once (so the micro-batcher can group them), the others queue_concurrency; audits share one group of
    # their own (one at a time) and may hold at most audit_max_waiting of the queue_max_size places
    # (bertdemo.ui.admission), so a flood of audits leaves the fast endpoints answering. Past
    # queue_max_size waiting requests, gradio answers "queue is full".
    if not settings.monitoring:
        no_queue_analytics()
    demo.queue(default_concurrency_limit=settings.queue_concurrency, max_size=settings.queue_max_size)
    audit.admission.attach(demo)
    demo.bertdemo_context = ctx  # type: ignore[attr-defined]  (tests and tools reach the output folder)
    demo.bertdemo_tabs = tabs  # type: ignore[attr-defined]
    return demo
