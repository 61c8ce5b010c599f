"""The Compare models tab: one input, two models, their answers side by side (shown only when configured).

The visitor picks a task and, for each side, one of the names the service offers for that task's
model kind (:meth:`~bertdemo.service.ModelService.model_names`); the handler refuses any other name,
so an API payload can never make the server load a path. The table is the chat's ``/compare`` answer.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from bertdemo import compare
from bertdemo.tasks.base import plain
from bertdemo.ui import format as fmt
from bertdemo.ui.common import AppContext, show_errors_in_place, user_facing

EXAMPLES = {compare.FILL: ("Paris is the [MASK] of France.", ""),
            compare.NSP: ("I went to the bakery this morning.", "They had run out of fresh bread."),
            compare.SENTIMENT: ("The plot was thin, but the acting carried the film.", "")}
FIELDS = {"task": "Task", "model": "Model", "text": "Text", "texts": "Text", "first": "Text",
          "second": "Sentence B", "sentence pair": "Text and Sentence B together", "top_k": "Top-k"}
INTRO = ("The same input to two models, side by side: their answers, their size, their time per request "
         "(each warmed up, the two taking turns) and, where the operator has audited them, their bias-audit "
         "numbers. A larger model often answers better but costs more memory and time per request.")


class CompareTab:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.tasks = compare.tasks_enabled(ctx.service)

    @property
    def enabled(self) -> bool:
        """Whether a second model is configured (otherwise the tab is not built)."""
        return bool(self.tasks)

    def names(self, task: Any) -> list[str]:
        return self.ctx.service.model_names(compare.TASKS.get(task, compare.TASKS[self.tasks[0]]))

    @user_facing(fields=FIELDS, in_place=True)
    def compare_models(self, task: Any, text: Any, second: Any = "", model_a: Any = None,
                       model_b: Any = None) -> tuple[str, dict[str, Any]]:
        """Ask models A and B (names this server offers for the task) the same question; Markdown and JSON."""
        names = self.names(task)
        chosen = [model_a or names[0], model_b or names[-1]]
        res = compare.compare(self.ctx.service, task, text, second, chosen)
        return fmt.comparison_markdown(res), plain(res)

    def task_changed(self, task: Any, text: Any, second: Any) -> tuple[Any, ...]:
        """UI-only: the model choices of the task's kind, and its example when the boxes hold another example."""
        names = self.names(task)
        ex = EXAMPLES.get(task, ("", ""))
        untouched = any((text, second or "") == e for e in EXAMPLES.values())
        return (gr.update(choices=names, value=names[0]), gr.update(choices=names, value=names[-1]),
                gr.update(value=ex[0]) if untouched else gr.update(), gr.update(value=ex[1]) if untouched else gr.update())

    def build(self) -> gr.Column:
        first = self.tasks[0]
        names = self.names(first)
        with gr.Column() as tab:
            gr.Markdown(INTRO)
            with gr.Row():
                with gr.Column(scale=3):
                    task = gr.Radio(self.tasks, value=first, label="Task", elem_id="mc-task")
                    text = gr.Textbox(value=EXAMPLES[first][0], lines=2, label="Text", elem_id="mc-text",
                                      info="fill mask: put [MASK] where a word goes; next sentence: this is sentence A")
                    second = gr.Textbox(value=EXAMPLES[first][1], label="Sentence B (next sentence only)",
                                        elem_id="mc-second")
                with gr.Column(scale=2):
                    # Dropdowns the handler validates against the configured names (gradio's own check
                    # would print a refused value, which may be user text, to the server log)
                    model_a = gr.Dropdown(names, value=names[0], label="Model A", allow_custom_value=True,
                                          elem_id="mc-model-a")
                    model_b = gr.Dropdown(names, value=names[-1], label="Model B", allow_custom_value=True,
                                          elem_id="mc-model-b")
                    run = gr.Button("Compare", variant="primary", elem_id="mc-run")
            result = gr.Markdown(elem_id="mc-result")
            with gr.Accordion("The same numbers as JSON", open=False):
                raw = gr.JSON(elem_id="mc-json", show_label=False)
            task.change(self.task_changed, [task, text, second], [model_a, model_b, text, second],
                        api_visibility="private", queue=False, show_progress="hidden")
            compared = gr.on([run.click, text.submit], self.compare_models, [task, text, second, model_a, model_b],
                             [result, raw], api_name="compare_models")
            show_errors_in_place(compared, self.compare_models, [result, raw], ["", None], result)
        return tab
