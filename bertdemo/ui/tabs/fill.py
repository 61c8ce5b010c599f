"""The Fill mask tab: top-k words per [MASK], and two sentences side by side (e.g. man vs woman).

Each result area is replaced as a whole: a new answer or an error (shown in the area's note)
leaves nothing of the previous answer behind.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from bertdemo.errors import InputError
from bertdemo.groupwords import swap_group_words
from bertdemo.ui import format as fmt
from bertdemo.ui.common import AppContext, number, parse_targets, show_errors_in_place, user_facing

MAX_LABELS = 8  # most [MASK] results shown as separate Label components
EXAMPLES = [
    ["Paris is the [MASK] of France."],
    ["The man worked as a [MASK]."],
    ["The woman worked as a [MASK]."],
    ["She was a [MASK] at the hospital."],
    ["The [MASK] sat on the [MASK]."],
]
COMPARE_DEFAULT = ("The man worked as a [MASK].", "The woman worked as a [MASK].")
FIELDS = {"text": "Text with [MASK]", "top_k": "Top-k", "targets": "Only these words"}


def _as(field: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; an error about the text is re-labelled as being about ``field`` (Sentence A or B)."""
    try:
        return fn(*args, **kwargs)
    except InputError as err:
        if err.field in (None, "text"):
            raise InputError(err.message, field=field) from None
        raise


def label_note(*values: Any) -> str:
    """Every [MASK]'s candidates with their probability in the one number format (the Label rounds to whole %).

    ``values`` are the Labels' values as gradio passes them to a function: ``{word: probability}``.
    """
    shown = [v for v in values if isinstance(v, dict) and v]
    lines = []
    for i, v in enumerate(shown, 1):
        cands = ", ".join(f"{fmt.code(w)} {fmt.pct(p)}" for w, p in sorted(v.items(), key=lambda kv: -kv[1]))
        lines.append((f"**[MASK] #{i}:** " if len(shown) > 1 else "**Candidates:** ") + cands)
    return "\n\n".join(lines)


class FillTab:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.n_labels = max(1, min(ctx.settings.max_masks, MAX_LABELS))

    @user_facing(fields=FIELDS, in_place=True)
    def fill_mask(self, text: Any, top_k: Any = 5, targets: Any = None) -> tuple[Any, ...]:
        res = self.ctx.service.fill_mask(text, top_k=number(top_k, "top_k", 5), targets=parse_targets(targets))
        preds = res.predictions
        labels = [fmt.candidates_label(preds[i]) if i < len(preds) else None for i in range(self.n_labels)]
        return (*labels, res.filled)

    def label_visibility(self, *values: Any) -> tuple[Any, ...]:
        """UI-only follow-up: show one Label per [MASK] that got predictions, hide the rest; the exact figures."""
        return (*(gr.update(visible=i == 0 or bool(v)) for i, v in enumerate(values)), label_note(*values))

    @user_facing(fields=FIELDS, in_place=True)
    def fill_mask_compare(self, text_a: Any, text_b: Any, top_k: Any = 5, targets: Any = None) -> tuple[Any, ...]:
        k, words = number(top_k, "top_k", 5), parse_targets(targets)
        if not (isinstance(text_b, str) and text_b.strip()) and isinstance(text_a, str):
            text_b, _ = swap_group_words(text_a)
        a = _as("Sentence A", self.ctx.service.fill_mask, text_a, top_k=k, targets=words)
        b = _as("Sentence B", self.ctx.service.fill_mask, text_b, top_k=k, targets=words)
        figures = (f"**A:** {fmt.candidates_line(a.predictions[0])}\n\n"
                   f"**B:** {fmt.candidates_line(b.predictions[0])}")
        return (fmt.candidates_label(a.predictions[0]), fmt.candidates_label(b.predictions[0]), a.filled, b.filled,
                f"{fmt.top_answer_note(a.top_tokens, b.top_tokens)}\n\n{figures}")

    @user_facing(in_place=True)
    def swap_text(self, text: Any) -> str:
        """UI helper: the sentence with group words swapped (for the compare box)."""
        if not isinstance(text, str) or not text.strip():
            raise InputError("is empty; type a sentence first", field="sentence A")
        swapped, swaps = swap_group_words(text)
        if not swaps:
            raise InputError("has no group word to swap (he, she, man, woman, ...)", field="sentence A")
        return swapped

    def build(self) -> gr.Column:
        with gr.Column() as tab:
            gr.Markdown("BERT was pre-trained to guess hidden words. Put one or more `[MASK]` in a sentence.")
            with gr.Row():
                with gr.Column(scale=3):
                    text = gr.Textbox(value=EXAMPLES[0][0], label="Text with [MASK]", elem_id="fm-text", lines=2)
                    with gr.Row():
                        topk = gr.Slider(1, self.ctx.settings.max_top_k, value=5, step=1, label="Top-k", elem_id="fm-topk")
                        targets = gr.Textbox(label="Only these words (optional, separated by commas or spaces)",
                                             placeholder="e.g. nurse, doctor", elem_id="fm-targets")
                    run = gr.Button("Fill", variant="primary", elem_id="fm-run")
                    gr.Examples(EXAMPLES, inputs=[text], label="Examples")
                with gr.Column(scale=2):
                    filled = gr.Textbox(label="Filled sentence (top answer per mask)", elem_id="fm-filled", interactive=False)
                    labels = [gr.Label(label=f"[MASK] #{i + 1}", elem_id=f"fm-label-{i}", visible=i == 0)
                              for i in range(self.n_labels)]
                    note = gr.Markdown(elem_id="fm-note")
                    gr.Markdown(fmt.FILL_CAVEAT, elem_classes="caveat", elem_id="fm-caveat")
            filling = gr.on([run.click, text.submit], self.fill_mask, inputs=[text, topk, targets], outputs=[*labels, filled],
                            api_name="fill_mask", concurrency_limit=self.ctx.settings.fast_concurrency)
            filling.success(self.label_visibility, labels, [*labels, note], api_visibility="private", queue=False,
                            show_progress="hidden")
            show_errors_in_place(filling, self.fill_mask, [*labels, filled],
                                 [gr.update(value=None, visible=i == 0) for i in range(self.n_labels)] + [""], note)

            with gr.Accordion("Compare two sentences side by side (e.g. man vs woman)", open=True):
                with gr.Row():
                    a = gr.Textbox(value=COMPARE_DEFAULT[0], label="Sentence A", elem_id="cmp-a")
                    b = gr.Textbox(value=COMPARE_DEFAULT[1], label="Sentence B (blank: A with group words swapped)",
                                   elem_id="cmp-b")
                with gr.Row():
                    swap = gr.Button("Swap group words of A into B", elem_id="cmp-swap")
                    compare = gr.Button("Compare", variant="primary", elem_id="cmp-run")
                cmp_note = gr.Markdown(elem_id="cmp-note")
                with gr.Row():
                    with gr.Column():
                        label_a = gr.Label(label="A: first [MASK]", elem_id="cmp-label-a")
                        filled_a = gr.Textbox(label="A filled", interactive=False, elem_id="cmp-filled-a")
                    with gr.Column():
                        label_b = gr.Label(label="B: first [MASK]", elem_id="cmp-label-b")
                        filled_b = gr.Textbox(label="B filled", interactive=False, elem_id="cmp-filled-b")
            compared = compare.click(self.fill_mask_compare, [a, b, topk, targets],
                                     [label_a, label_b, filled_a, filled_b, cmp_note], api_name="fill_mask_compare")
            show_errors_in_place(compared, self.fill_mask_compare, [label_a, label_b, filled_a, filled_b, cmp_note],
                                 [None, None, "", "", ""], cmp_note)
            swapping = swap.click(self.swap_text, [a], [b], api_visibility="private")
            show_errors_in_place(swapping, self.swap_text, [label_a, label_b, filled_a, filled_b, cmp_note],
                                 [None, None, "", "", ""], cmp_note)
        return tab
