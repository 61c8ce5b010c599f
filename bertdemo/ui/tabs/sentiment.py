"""The Sentiment tab: probabilities, word attributions, a counterfactual group-word swap, CSV scoring.

Each button recomputes or clears every output of its result area together (Classify clears the
word attributions; Explain rewrites the note), and an error replaces the result area it belongs to.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from bertdemo.csvfile import write_csv
from bertdemo.errors import InputError
from bertdemo.groupwords import swap_group_words
from bertdemo.tasks.attribution import METHOD_HELP, METHOD_NAMES, METHODS
from bertdemo.textcheck import english_only_warning
from bertdemo.ui import format as fmt
from bertdemo.ui.common import AppContext, show_errors_in_place, user_facing

EXAMPLES = [["I loved this movie, the acting was wonderful."], ["What a terrible, boring film."], ["He is a good doctor."]]
ATTRIBUTION_LABEL = "Word attributions (+1 red: pushes toward the label; -1 purple: pushes against it)"
PREVIEW_ROWS = 200
PREVIEW_HEADERS = ["line", "text", "label", "score"]
METHOD_CHOICES = [(METHOD_NAMES[m], m) for m in METHODS]
# the service's field names as this tab labels its boxes
FIELDS = {"text": "Text", "texts": "Text", "method": "Attribution method"}
CF_FIELDS = {"text": "Sentence with a group word", "texts": "Sentence with a group word"}
CSV_FIELDS = {"file": "CSV file"}
SKIPPED_SHOWN = 10  # skipped rows listed by line in the note


def method_help(method: Any) -> str:
    m = method if method in METHOD_HELP else METHODS[0]
    return f"**{METHOD_NAMES[m]}**: {METHOD_HELP[m]}"


def with_language_warning(note: str, text: Any) -> str:
    warning = english_only_warning(text) if isinstance(text, str) else None
    return f"{note}\n\n**{warning}**" if warning else note


class SentimentTab:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    @user_facing(fields=FIELDS, in_place=True)
    def sentiment(self, text: Any) -> tuple[dict[str, float], str]:
        (res,) = self.ctx.service.sentiment([text])
        return dict(res.scores), with_language_warning(fmt.sentiment_note(res), text)

    @user_facing(fields=FIELDS, in_place=True)
    def explain(self, text: Any, method: Any = "integrated_gradients") -> tuple[dict[str, float], str, list[Any]]:
        """Label, note (with where the other method disagrees) and word attributions, together."""
        method = method or "integrated_gradients"
        res = self.ctx.service.explain_sentiment(text, method=method)
        other_method = next((m for m in METHODS if m != res.method), None)
        other = self.ctx.service.explain_sentiment(text, method=other_method) if other_method else None
        return dict(res.scores), with_language_warning(fmt.explain_note(res, other), text), fmt.highlighted(res)

    @user_facing(fields=CF_FIELDS, in_place=True)
    def counterfactual(self, text: Any) -> tuple[str, list[list[Any]], str]:
        if not isinstance(text, str) or not text.strip():
            raise InputError("is empty; type a sentence with a group word (he, she, man, woman, ...)", field="text")
        swapped, swaps = swap_group_words(text)
        if not swaps:
            raise InputError("has no group word to swap; try one with he, she, man, woman, his, her ...", field="text")
        orig, other = self.ctx.service.sentiment([text, swapped])
        return swapped, fmt.counterfactual_rows([text, swapped], [orig, other]), fmt.label_swap_note(orig, other, swaps)

    @user_facing(fields=CSV_FIELDS, in_place=True)
    def sentiment_csv(self, upload: Any, request: gr.Request | None = None) -> tuple[list[list[Any]], str, str]:
        """Score the ``text`` column; rows with an empty (or too long) text are skipped and listed by line.

        The CSV offered for download keeps every input column and row, with the results added.
        """
        table = self.ctx.read_upload(upload)
        col = next((c for c in table.columns if c.lower() == "text"), None)
        if col is None:
            if len(table.columns) != 1:
                shown = ", ".join(c[:30] for c in table.columns[:10])
                raise InputError(f"needs a column named 'text' (found: {shown})", field="file")
            col = table.columns[0]
        limit = self.ctx.settings.max_chars
        skipped: list[tuple[int, str]] = []  # (row index, why)
        todo: list[int] = []
        for i, row in enumerate(table.rows):
            t = row[col]
            if not t.strip():
                skipped.append((i, "empty text"))
            elif len(t) > limit:
                skipped.append((i, f"text longer than {limit:,} characters"))
            else:
                todo.append(i)
        if not todo:
            raise InputError(f"{table.name} has no text to score: the '{col}' cell is empty on every row", field="file")
        step = max(1, self.ctx.settings.max_batch_texts)
        texts = [table.rows[i][col] for i in todo]
        results = [r for b in range(0, len(texts), step) for r in self.ctx.service.sentiment(texts[b: b + step])]
        by_row = dict(zip(todo, results, strict=True))
        header, rows = fmt.scores_rows_keeping(table.columns, table.rows, [by_row.get(i) for i in range(len(table.rows))])
        out = self.ctx.session_dir(request) / "sentiment_scores.csv"
        write_csv(out, header, rows)  # cells that a spreadsheet would run as formulas are neutralised
        why = dict(skipped)
        preview = [[table.line_of(i), row[col][:200], by_row[i].label if i in by_row else f"skipped: {why[i]}",
                    fmt.pct(by_row[i].score) if i in by_row else ""]
                   for i, row in enumerate(table.rows[:PREVIEW_ROWS])]
        return preview, str(out), fmt.csv_report(table.name, len(todo), [(table.line_of(i), w) for i, w in skipped],
                                                 SKIPPED_SHOWN)

    def build(self) -> gr.Column:
        s = self.ctx.settings
        with gr.Column() as tab:
            with gr.Row():
                with gr.Column():
                    text = gr.Textbox(value=EXAMPLES[0][0], lines=3, label="Text", elem_id="st-text")
                    # A Dropdown the handler validates: gradio's own choice check would print the
                    # refused value (user input) to the server log.
                    method = gr.Dropdown(METHOD_CHOICES, value=METHODS[0], label="Attribution method",
                                         allow_custom_value=True, elem_id="st-method")
                    method_md = gr.Markdown(method_help(METHODS[0]), elem_id="st-method-help", elem_classes="caveat")
                    with gr.Row():
                        run = gr.Button("Classify", variant="primary", elem_id="st-run")
                        explain = gr.Button("Explain (word attributions)", elem_id="st-explain")
                    gr.Examples(EXAMPLES, inputs=[text], label="Examples")
                with gr.Column():
                    label = gr.Label(label="Sentiment", elem_id="st-label")
                    note = gr.Markdown(elem_id="st-note")
                    high = gr.HighlightedText(label=ATTRIBUTION_LABEL, elem_id="st-highlight", show_legend=True)
                    gr.Markdown(fmt.SENTIMENT_CAVEAT, elem_classes="caveat", elem_id="st-caveat")
            method.change(method_help, [method], [method_md], api_visibility="private", queue=False, show_progress="hidden")
            classify = gr.on([run.click, text.submit], self.sentiment, [text], [label, note], api_name="sentiment",
                             concurrency_limit=self.ctx.settings.fast_concurrency)
            classify.success(lambda: None, None, [high], api_visibility="private", queue=False, show_progress="hidden")
            show_errors_in_place(classify, self.sentiment, [label, note, high], [None, "", None], note)
            explained = explain.click(self.explain, [text, method], [label, note, high], api_name="explain")
            show_errors_in_place(explained, self.explain, [label, note, high], [None, "", None], note)
            with gr.Accordion("Counterfactual: swap a group word, does the label move?", open=True):
                with gr.Row():
                    cf_text = gr.Textbox(value="He is a brilliant and caring doctor.", label="Sentence with a group word",
                                         elem_id="cf-text", scale=3)
                    cf_run = gr.Button("Swap and compare", elem_id="cf-run", scale=1)
                cf_swapped = gr.Textbox(label="Swapped sentence", interactive=False, elem_id="cf-swapped")
                cf_table = gr.Dataframe(headers=["version", "text", "label", "score"], interactive=False, wrap=True,
                                        elem_id="cf-table", label="Labels")
                cf_note = gr.Markdown(elem_id="cf-note")
            cf = cf_run.click(self.counterfactual, [cf_text], [cf_swapped, cf_table, cf_note], api_name="counterfactual")
            show_errors_in_place(cf, self.counterfactual, [cf_swapped, cf_table, cf_note],
                                 ["", fmt.empty_table(["version", "text", "label", "score"]), ""], cf_note)
            with gr.Accordion("Batch: score a CSV file", open=False):
                gr.Markdown(f"Upload a UTF-8 `.csv` with a `text` column (at most {s.max_upload_rows:,} rows, "
                            f"{s.max_upload_bytes / 1e6:.0f} MB). You get back the same file with the label, score "
                            "and class probabilities added to each row; rows with an empty text are skipped and listed.")
                with gr.Row():
                    csv_in = gr.File(label="CSV file", file_types=[".csv"], elem_id="csv-file")
                    csv_out = gr.File(label="Download scores", elem_id="csv-download", interactive=False)
                csv_run = gr.Button("Score the file", variant="primary", elem_id="csv-run")
                csv_note = gr.Markdown(elem_id="csv-note")
                csv_table = gr.Dataframe(headers=PREVIEW_HEADERS, interactive=False, wrap=True,
                                         column_widths=["18%", "42%", "22%", "18%"],
                                         label=f"Preview (first {PREVIEW_ROWS} rows)", elem_id="csv-table")
            scored = csv_run.click(self.sentiment_csv, [csv_in], [csv_table, csv_out, csv_note], api_name="sentiment_csv")
            show_errors_in_place(scored, self.sentiment_csv, [csv_table, csv_out, csv_note],
                                 [fmt.empty_table(PREVIEW_HEADERS), None, ""], csv_note)
        return tab
