"""The Sentiment tab: probabilities, word attributions, a counterfactual group-word swap, CSV scoring."""

from __future__ import annotations

from typing import Any

import gradio as gr

from bertdemo.csvfile import write_csv
from bertdemo.errors import InputError
from bertdemo.groupwords import swap_group_words
from bertdemo.tasks.attribution import METHODS
from bertdemo.ui import format as fmt
from bertdemo.ui.common import AppContext, user_facing

EXAMPLES = [["I loved this movie, the acting was wonderful."], ["What a terrible, boring film."], ["He is a good doctor."]]
ATTRIBUTION_LABEL = "Word attributions (+1 red: pushes toward the label; -1 purple: pushes against it)"
PREVIEW_ROWS = 200


class SentimentTab:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    @user_facing
    def sentiment(self, text: Any) -> tuple[dict[str, float], str]:
        (res,) = self.ctx.service.sentiment([text])
        return dict(res.scores), fmt.sentiment_note(res)

    @user_facing
    def explain(self, text: Any, method: Any = "integrated_gradients") -> tuple[dict[str, float], list[tuple[str, float]]]:
        res = self.ctx.service.explain_sentiment(text, method=method or "integrated_gradients")
        return dict(res.scores), fmt.highlighted(res)

    @user_facing
    def counterfactual(self, text: Any) -> tuple[str, list[list[Any]], str]:
        if not isinstance(text, str) or not text.strip():
            raise InputError("is empty; type a sentence with a group word (he, she, man, woman, ...)", field="text")
        swapped, swaps = swap_group_words(text)
        if not swaps:
            raise InputError("has no group word to swap; try one with he, she, man, woman, his, her ...", field="text")
        orig, other = self.ctx.service.sentiment([text, swapped])
        return swapped, fmt.counterfactual_rows([text, swapped], [orig, other]), fmt.label_swap_note(orig, other, swaps)

    @user_facing
    def sentiment_csv(self, upload: Any, request: gr.Request | None = None) -> tuple[list[list[Any]], str]:
        table = self.ctx.read_upload(upload)
        col = next((c for c in table.columns if c.lower() == "text"), None)
        if col is None:
            if len(table.columns) != 1:
                shown = ", ".join(c[:30] for c in table.columns[:10])
                raise InputError(f"needs a column named 'text' (found: {shown})", field="file")
            col = table.columns[0]
        texts = [r[col] for r in table.rows]
        blank = [i + 2 for i, t in enumerate(texts) if not t.strip()]
        if blank:
            raise InputError(f"has empty text on line {blank[0]}" + (f" and {len(blank) - 1} more" if len(blank) > 1 else ""),
                             field="file")
        # The upload's row limit (max_upload_rows) is the one limit for a file; the service takes
        # at most max_batch_texts texts per call, so the rows go to it in chunks of that size.
        step = self.ctx.settings.max_batch_texts
        results = [r for start in range(0, len(texts), step) for r in self.ctx.service.sentiment(texts[start:start + step])]
        header, rows = fmt.scores_rows(texts, results)
        out = self.ctx.session_dir(request) / "sentiment_scores.csv"
        write_csv(out, header, rows)  # cells that a spreadsheet would run as formulas are neutralised
        return [[t[:200], label, score] for t, label, score, *_ in rows[:PREVIEW_ROWS]], str(out)

    def build(self) -> gr.Blocks:
        s = self.ctx.settings
        with gr.Blocks(analytics_enabled=False) as tab:
            with gr.Row():
                with gr.Column():
                    text = gr.Textbox(value=EXAMPLES[0][0], lines=3, label="Text", elem_id="st-text")
                    # A Dropdown the handler validates: gradio's own choice check would print the
                    # refused value (user input) to the server log.
                    method = gr.Dropdown(list(METHODS), value=METHODS[0], label="Attribution method",
                                         allow_custom_value=True, elem_id="st-method")
                    with gr.Row():
                        run = gr.Button("Classify", variant="primary", elem_id="st-run")
                        explain = gr.Button("Explain (word attributions)", elem_id="st-explain")
                    gr.Examples(EXAMPLES, inputs=[text], label="Examples")
                with gr.Column():
                    label = gr.Label(label="Sentiment", elem_id="st-label")
                    note = gr.Markdown(elem_id="st-note")
                    high = gr.HighlightedText(label=ATTRIBUTION_LABEL, elem_id="st-highlight", show_legend=True)
            gr.on([run.click, text.submit], self.sentiment, [text], [label, note], api_name="sentiment")
            explain.click(self.explain, [text, method], [label, high], api_name="explain")

            with gr.Accordion("Counterfactual: swap a group word, does the label move?", open=True):
                with gr.Row():
                    cf_text = gr.Textbox(value="He is a brilliant and caring doctor.", label="Sentence with a group word",
                                         elem_id="cf-text", scale=3)
                    cf_run = gr.Button("Swap and compare", elem_id="cf-run", scale=1)
                cf_swapped = gr.Textbox(label="Swapped sentence", interactive=False, elem_id="cf-swapped")
                cf_table = gr.Dataframe(headers=["version", "text", "label", "score"], interactive=False, wrap=True,
                                        elem_id="cf-table", label="Labels")
                cf_note = gr.Markdown(elem_id="cf-note")
            cf_run.click(self.counterfactual, [cf_text], [cf_swapped, cf_table, cf_note], api_name="counterfactual")

            with gr.Accordion("Batch: score a CSV file", open=False):
                gr.Markdown(f"Upload a UTF-8 `.csv` with a `text` column (at most {s.max_upload_rows:,} rows, "
                            f"{s.max_upload_bytes / 1e6:.0f} MB). You get the scores back as a CSV.")
                with gr.Row():
                    csv_in = gr.File(label="CSV file", file_types=[".csv"], elem_id="csv-file")
                    csv_out = gr.File(label="Download scores", elem_id="csv-download", interactive=False)
                csv_run = gr.Button("Score the file", variant="primary", elem_id="csv-run")
                csv_table = gr.Dataframe(headers=["text", "label", "score"], interactive=False, wrap=True,
                                         label="Preview (first 200 rows)", elem_id="csv-table")
            csv_run.click(self.sentiment_csv, [csv_in], [csv_table, csv_out], api_name="sentiment_csv")
        return tab
