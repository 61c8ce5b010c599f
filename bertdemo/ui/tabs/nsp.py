"""The Next sentence tab: P(B follows A), and candidates for B ranked (probabilities in %, caveat beside them)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from bertdemo.ui import format as fmt
from bertdemo.ui.common import AppContext, show_errors_in_place, user_facing

DEFAULT = ("I went to the bakery this morning.", "They had run out of fresh bread.")
RANK_DEFAULT = "They had run out of fresh bread.\nThe stock market fell sharply.\nPenguins live in Antarctica."
FIELDS = {"first": "Sentence A", "second": "Sentence B", "sentence pair": "Sentences A and B together",
          "candidates": "Candidates", "candidates[]": "Candidates, line {n}"}


class NextSentenceTab:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    @user_facing(fields=FIELDS, in_place=True)
    def next_sentence(self, first: Any, second: Any) -> tuple[dict[str, float], str]:
        res = self.ctx.service.next_sentence(first, second)
        return fmt.nsp_label(res), fmt.nsp_verdict(res)

    @user_facing(fields=FIELDS, in_place=True)
    def rank_next(self, first: Any, candidates: Any) -> list[list[Any]]:
        if isinstance(candidates, str):
            candidates = [c.strip() for c in candidates.splitlines() if c.strip()]
        return fmt.ranking_rows(self.ctx.service.rank_next(first, candidates))

    def build(self) -> gr.Column:
        with gr.Column() as tab:
            gr.Markdown("BERT's second pre-training task: does sentence B follow sentence A?")
            with gr.Row():
                with gr.Column():
                    a = gr.Textbox(value=DEFAULT[0], label="Sentence A", elem_id="ns-a")
                    b = gr.Textbox(value=DEFAULT[1], label="Sentence B", elem_id="ns-b")
                    run = gr.Button("Score", variant="primary", elem_id="ns-run")
                with gr.Column():
                    label = gr.Label(label="P(B follows A)", elem_id="ns-label")
                    note = gr.Markdown(elem_id="ns-note")
                    gr.Markdown(fmt.NSP_CAVEAT, elem_classes="caveat", elem_id="ns-caveat")
            scored = run.click(self.next_sentence, [a, b], [label, note], api_name="next_sentence",
                               concurrency_limit=self.ctx.settings.fast_concurrency)
            show_errors_in_place(scored, self.next_sentence, [label, note], [None, ""], note)
            gr.Markdown("### Rank several candidates for B (one per line; A is the sentence above)")
            with gr.Row():
                with gr.Column():
                    cands = gr.Textbox(value=RANK_DEFAULT, lines=4, label="Candidates", elem_id="rk-cands")
                    rank = gr.Button("Rank", variant="primary", elem_id="rk-run")
                with gr.Column():
                    table = gr.Dataframe(headers=fmt.RANKING_HEADERS, interactive=False, wrap=True,
                                         column_widths=["16%", "56%", "28%"], label="Ranking", elem_id="rk-table")
                    rk_note = gr.Markdown(elem_id="rk-note")
            ranked = rank.click(self.rank_next, [a, cands], [table], api_name="rank_next")
            ranked.success(lambda: fmt.NSP_CAVEAT, None, [rk_note], api_visibility="private", queue=False,
                           show_progress="hidden")
            show_errors_in_place(ranked, self.rank_next, [table], [fmt.empty_table(fmt.RANKING_HEADERS)], rk_note)
        return tab
