"""The Gradio app: one ``gr.Blocks`` with tabs Chat, Fill mask, Next sentence, Sentiment, Bias audit, About.

``build_app(settings)`` loads the models once (``warm_up``) and wires every event to a thin
callback in :mod:`bertdemo.ui.handlers` with a stable ``api_name``. ``launch_kwargs(settings)``
holds what ``launch()`` needs (theme, CSS, upload limit, server address), shared by ``app.py``,
``bertdemo serve`` and the tests.
"""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from bertdemo.config import Settings, load_settings
from bertdemo.tasks.attribution import METHODS
from bertdemo.ui import audit_adapter
from bertdemo.ui.chat import HELP
from bertdemo.ui.handlers import Handlers, about_markdown

TITLE = "bertdemo - what BERT learns"

FILL_EXAMPLES = [
    ["Paris is the [MASK] of France."],
    ["The man worked as a [MASK]."],
    ["The woman worked as a [MASK]."],
    ["She was a [MASK] at the hospital."],
    ["The [MASK] sat on the [MASK]."],
]
COMPARE_DEFAULT = ("The man worked as a [MASK].", "The woman worked as a [MASK].")
NSP_DEFAULT = ("I went to the bakery this morning.", "They had run out of fresh bread.")
RANK_DEFAULT = "They had run out of fresh bread.\nThe stock market fell sharply.\nPenguins live in Antarctica."
SENTIMENT_EXAMPLES = [["I loved this movie, the acting was wonderful."], ["What a terrible, boring film."],
                      ["He is a good doctor."]]
CHAT_EXAMPLES = ["Paris is the [MASK] of France.", "The man worked as a [MASK].",
                 "I went to the bakery. || They had no bread left.", "This film was a delight from start to finish.",
                 "/help"]

ATTRIBUTION_LABEL = "Word attributions (+1 red: pushes toward the label; -1 purple: pushes against it)"
CSS = """
#app-header h1 {margin-bottom: 0.2em;}
#app-header p {margin-top: 0; opacity: 0.8;}
.caveat {font-size: 0.9em; opacity: 0.85;}
"""


def launch_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``demo.launch()``: address, theme, CSS, upload limit, no errors' internals."""
    host = settings.host
    if os.environ.get("SPACE_ID") and not os.environ.get("BERTDEMO_HOST"):
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
    }
    if settings.output_dir:
        out = Path(settings.output_dir).resolve()
        if not out.is_relative_to(Path(tempfile.gettempdir()).resolve()):
            kwargs["allowed_paths"] = [str(out)]
    return kwargs


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


def _field(component: Any) -> str:
    return str(getattr(component, "label", None) or getattr(component, "elem_id", None) or "input")


def guard_inputs(demo: gr.Blocks) -> None:
    """Answer an API payload of the wrong shape (the page cannot send one) with a message naming the
    field and what it accepts, instead of gradio's generic "error" answer."""
    seen: set[int] = set()
    for fn in demo.fns.values():
        for comp in fn.inputs:
            if id(comp) in seen or not hasattr(comp, "preprocess"):
                continue
            seen.add(id(comp))

            def preprocess(payload: Any, _original: Any = comp.preprocess, _comp: Any = comp) -> Any:
                try:
                    return _original(payload)
                except gr.Error:
                    raise
                except Exception:
                    raise gr.Error(html.escape(f"{_field(_comp)}: must be {_allowed(_comp)}"),
                                   print_exception=False) from None

            comp.preprocess = preprocess

    original = demo.preprocess_data

    async def preprocess_data(block_fn: Any, inputs: list[Any], state: Any, explicit_call: bool = False) -> Any:
        try:
            return await original(block_fn, inputs, state, explicit_call)
        except gr.Error:
            raise
        except Exception:  # gradio's own payload checks (file references, data models) before ours run
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
    h = Handlers(service, settings)
    checks = audit_adapter.available_checks()

    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        gr.Markdown("# bertdemo\nWhat BERT learns (masked words, next sentences), how it is used (sentiment), "
                    "and a bias audit before it ships. Inputs are not stored or logged.", elem_id="app-header")
        with gr.Tabs(elem_id="tabs"):
            # ---- Chat ------------------------------------------------------------------------
            with gr.Tab("Chat", id="chat", elem_id="tab-chat"):
                bot = gr.Chatbot(elem_id="chat-bot", label="Chat with BERT", height=460, layout="bubble",
                                 placeholder=HELP, feedback_options=None, buttons=["copy"])
                with gr.Row():
                    msg = gr.Textbox(elem_id="chat-input", show_label=False, scale=5, autofocus=True,
                                     placeholder="Type a sentence with [MASK], two sentences joined by ||, any text, or /help")
                    send = gr.Button("Send", elem_id="chat-send", variant="primary", scale=1)
                    clear = gr.Button("Clear", elem_id="chat-clear", scale=1)
                gr.Examples(CHAT_EXAMPLES, inputs=[msg], label="Try")
                gr.on([send.click, msg.submit], h.chat, inputs=[msg, bot], outputs=[bot, msg], api_name="chat")
                clear.click(lambda: ([], ""), None, [bot, msg], api_visibility="private", queue=False)

            # ---- Fill mask -------------------------------------------------------------------
            with gr.Tab("Fill mask", id="fill", elem_id="tab-fill"):
                gr.Markdown("BERT was pre-trained to guess hidden words. Put one or more `[MASK]` in a sentence.")
                with gr.Row():
                    with gr.Column(scale=3):
                        fm_text = gr.Textbox(value=FILL_EXAMPLES[0][0], label="Text with [MASK]", elem_id="fm-text", lines=2)
                        with gr.Row():
                            fm_topk = gr.Slider(1, settings.max_top_k, value=5, step=1, label="Top-k", elem_id="fm-topk")
                            fm_targets = gr.Textbox(label="Only these words (optional, comma separated)",
                                                    placeholder="e.g. nurse, doctor", elem_id="fm-targets")
                        fm_run = gr.Button("Fill", variant="primary", elem_id="fm-run")
                        gr.Examples(FILL_EXAMPLES, inputs=[fm_text], label="Examples")
                    with gr.Column(scale=2):
                        fm_filled = gr.Textbox(label="Filled sentence (top answer per mask)", elem_id="fm-filled",
                                               interactive=False)
                        fm_labels = [gr.Label(label=f"[MASK] #{i + 1}", elem_id=f"fm-label-{i}", visible=i == 0)
                                     for i in range(h.n_labels)]
                gr.on([fm_run.click, fm_text.submit], h.fill_mask, inputs=[fm_text, fm_topk, fm_targets],
                      outputs=[*fm_labels, fm_filled], api_name="fill_mask").success(
                    h.label_visibility, fm_labels, fm_labels, api_visibility="private", queue=False)

                with gr.Accordion("Compare two sentences side by side (e.g. man vs woman)", open=True):
                    with gr.Row():
                        cmp_a = gr.Textbox(value=COMPARE_DEFAULT[0], label="Sentence A", elem_id="cmp-a")
                        cmp_b = gr.Textbox(value=COMPARE_DEFAULT[1], label="Sentence B (blank: A with group words swapped)",
                                           elem_id="cmp-b")
                    with gr.Row():
                        cmp_swap = gr.Button("Swap group words of A into B", elem_id="cmp-swap")
                        cmp_run = gr.Button("Compare", variant="primary", elem_id="cmp-run")
                    cmp_note = gr.Markdown(elem_id="cmp-note")
                    with gr.Row():
                        with gr.Column():
                            cmp_label_a = gr.Label(label="A: first [MASK]", elem_id="cmp-label-a")
                            cmp_filled_a = gr.Textbox(label="A filled", interactive=False, elem_id="cmp-filled-a")
                        with gr.Column():
                            cmp_label_b = gr.Label(label="B: first [MASK]", elem_id="cmp-label-b")
                            cmp_filled_b = gr.Textbox(label="B filled", interactive=False, elem_id="cmp-filled-b")
                cmp_swap.click(h.swap_text, [cmp_a], [cmp_b], api_visibility="private")
                cmp_run.click(h.fill_mask_compare, [cmp_a, cmp_b, fm_topk, fm_targets],
                              [cmp_label_a, cmp_label_b, cmp_filled_a, cmp_filled_b, cmp_note], api_name="fill_mask_compare")

            # ---- Next sentence ---------------------------------------------------------------
            with gr.Tab("Next sentence", id="nsp", elem_id="tab-nsp"):
                gr.Markdown("BERT's second pre-training task: does sentence B follow sentence A?")
                with gr.Row():
                    with gr.Column():
                        ns_a = gr.Textbox(value=NSP_DEFAULT[0], label="Sentence A", elem_id="ns-a")
                        ns_b = gr.Textbox(value=NSP_DEFAULT[1], label="Sentence B", elem_id="ns-b")
                        ns_run = gr.Button("Score", variant="primary", elem_id="ns-run")
                    with gr.Column():
                        ns_label = gr.Label(label="P(B follows A)", elem_id="ns-label")
                        ns_note = gr.Markdown(elem_id="ns-note")
                ns_run.click(h.next_sentence, [ns_a, ns_b], [ns_label, ns_note], api_name="next_sentence")
                gr.Markdown("### Rank several candidates for B (one per line; A is the sentence above)")
                with gr.Row():
                    with gr.Column():
                        rk_cands = gr.Textbox(value=RANK_DEFAULT, lines=4, label="Candidates", elem_id="rk-cands")
                        rk_run = gr.Button("Rank", variant="primary", elem_id="rk-run")
                    rk_table = gr.Dataframe(headers=["rank", "candidate", "P(next)"], interactive=False, wrap=True,
                                            label="Ranking", elem_id="rk-table")
                rk_run.click(h.rank_next, [ns_a, rk_cands], [rk_table], api_name="rank_next")

            # ---- Sentiment -------------------------------------------------------------------
            with gr.Tab("Sentiment", id="sentiment", elem_id="tab-sentiment"):
                with gr.Row():
                    with gr.Column():
                        st_text = gr.Textbox(value=SENTIMENT_EXAMPLES[0][0], lines=3, label="Text", elem_id="st-text")
                        # A Dropdown the handler validates: gradio's own choice check would print the
                        # refused value (user input) to the server log.
                        st_method = gr.Dropdown(list(METHODS), value=METHODS[0], label="Attribution method",
                                                allow_custom_value=True, elem_id="st-method")
                        with gr.Row():
                            st_run = gr.Button("Classify", variant="primary", elem_id="st-run")
                            st_explain = gr.Button("Explain (word attributions)", elem_id="st-explain")
                        gr.Examples(SENTIMENT_EXAMPLES, inputs=[st_text], label="Examples")
                    with gr.Column():
                        st_label = gr.Label(label="Sentiment", elem_id="st-label")
                        st_note = gr.Markdown(elem_id="st-note")
                        st_high = gr.HighlightedText(label=ATTRIBUTION_LABEL,
                                                     elem_id="st-highlight", show_legend=True)
                gr.on([st_run.click, st_text.submit], h.sentiment, [st_text], [st_label, st_note], api_name="sentiment")
                st_explain.click(h.explain, [st_text, st_method], [st_label, st_high], api_name="explain")

                with gr.Accordion("Counterfactual: swap a group word, does the label move?", open=True):
                    with gr.Row():
                        cf_text = gr.Textbox(value="He is a brilliant and caring doctor.", label="Sentence with a group word",
                                             elem_id="cf-text", scale=3)
                        cf_run = gr.Button("Swap and compare", elem_id="cf-run", scale=1)
                    cf_swapped = gr.Textbox(label="Swapped sentence", interactive=False, elem_id="cf-swapped")
                    cf_table = gr.Dataframe(headers=["version", "text", "label", "score"], interactive=False, wrap=True,
                                            elem_id="cf-table", label="Labels")
                    cf_note = gr.Markdown(elem_id="cf-note")
                cf_run.click(h.counterfactual, [cf_text], [cf_swapped, cf_table, cf_note], api_name="counterfactual")

                with gr.Accordion("Batch: score a CSV file", open=False):
                    gr.Markdown(f"Upload a UTF-8 `.csv` with a `text` column (at most {settings.max_upload_rows:,} rows, "
                                f"{settings.max_upload_bytes / 1e6:.0f} MB). You get the scores back as a CSV.")
                    with gr.Row():
                        csv_in = gr.File(label="CSV file", file_types=[".csv"], elem_id="csv-file")
                        csv_out = gr.File(label="Download scores", elem_id="csv-download", interactive=False)
                    csv_run = gr.Button("Score the file", variant="primary", elem_id="csv-run")
                    csv_table = gr.Dataframe(headers=["text", "label", "score"], interactive=False, wrap=True,
                                             label="Preview (first 200 rows)", elem_id="csv-table")
                csv_run.click(h.sentiment_csv, [csv_in], [csv_table, csv_out], api_name="sentiment_csv")

            # ---- Bias audit ------------------------------------------------------------------
            with gr.Tab("Bias audit", id="audit", elem_id="tab-audit"):
                gr.Markdown("Measure how the models treat group words before shipping them. Pick checks and a sample "
                            "size; optionally upload your own CSV with `text` and group columns.")
                with gr.Row():
                    with gr.Column():
                        au_checks = gr.CheckboxGroup(checks, value=audit_adapter.default_checks(), label="Checks",
                                                     elem_id="au-checks")
                        au_limit = gr.Slider(5, 500, value=50, step=5, label="Sample size per check", elem_id="au-limit")
                        with gr.Accordion("Your own data (optional): CSV with a 'text' column and group columns", open=False):
                            au_file = gr.File(label="Your CSV", file_types=[".csv"], elem_id="au-file")
                            with gr.Row():
                                au_groups = gr.Textbox(label="Group columns (blank: every column but text/label)",
                                                       elem_id="au-groups")
                                au_label = gr.Textbox(label="Label column (optional)", elem_id="au-label")
                        au_run = gr.Button("Run audit", variant="primary", elem_id="au-run")
                    with gr.Column():
                        au_summary = gr.Markdown(elem_id="au-summary")
                        au_files = gr.File(label="Reports", file_count="multiple", interactive=False, elem_id="au-files")
                au_table = gr.Dataframe(interactive=False, wrap=True, label="Results", elem_id="au-table")
                au_plot = gr.Plot(label="Gaps by check", elem_id="au-plot")
                au_run.click(h.bias_audit, [au_checks, au_limit, au_file, au_groups, au_label],
                             [au_summary, au_table, au_plot, au_files],
                             api_name="bias_audit", concurrency_limit=1, concurrency_id="audit")

            # ---- About -----------------------------------------------------------------------
            with gr.Tab("About", id="about", elem_id="tab-about"):
                gr.Markdown(about_markdown(service, settings), elem_id="about-md")

        demo.unload(h.cleanup_session)

    guard_inputs(demo)
    demo.queue(default_concurrency_limit=settings.queue_concurrency, max_size=settings.queue_max_size)
    demo.bertdemo_handlers = h  # type: ignore[attr-defined]  (tests and tools reach the output folder)
    return demo
