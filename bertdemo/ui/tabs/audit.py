"""The Bias audit tab: checks, sample size, progress, verdicts, plots, report downloads, your own CSV."""

from __future__ import annotations

from typing import Any

import gradio as gr

from bertdemo.ui import audit_adapter
from bertdemo.ui.common import AppContext, number, user_facing

QUICK_LIMIT = 20  # /audit in chat: the default checks on a small sample


class AuditTab:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def run(self, checks: Any, limit: Any, upload: Any, group_cols: Any, label_col: Any,
            request: gr.Request | None, progress: Any, sample_file: Any = False, baseline: Any = None) -> dict[str, Any]:
        return audit_adapter.run(self.ctx.service, checks, number(limit, "sample size", 50), upload,
                                 self.ctx.session_dir(request), progress, group_cols=group_cols, label_col=label_col,
                                 sample_file=bool(sample_file), baseline_upload=baseline)

    def quick(self, request: gr.Request | None) -> list[Any]:
        """The chat's ``/audit``: a small sample of the default checks, the summary and the HTML report."""
        result = self.run(audit_adapter.default_checks(), QUICK_LIMIT, None, "", "", request, None)
        msgs: list[Any] = [result["summary"] + "\n\n_Full options and plots are on the **Bias audit** tab._"]
        msgs += [{"path": p} for p in result["files"] if p.endswith(".html")][:1]
        return msgs

    @user_facing
    def bias_audit(self, checks: Any, limit: Any, upload: Any = None, group_cols: Any = "", label_col: Any = "",
                   sample_file: Any = False, baseline: Any = None, request: gr.Request | None = None,
                   progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008 (gradio's idiom)
        """Bias audit of the loaded models (and of an uploaded CSV, always audited when given).

        Each gate is judged on its 95% interval: pass, fail, or inconclusive when the interval straddles
        the threshold. The sample size applies to the built-in benchmarks; ``sample_file`` applies it
        to the uploaded CSV too. ``baseline``: a previous audit's report.json to compare with."""
        result = self.run(checks, limit, upload, group_cols, label_col, request, progress, sample_file, baseline)
        return result["summary"], result["table"], result["plot"], result["files"]

    def build(self) -> gr.Blocks:
        with gr.Blocks(analytics_enabled=False) as tab:
            gr.Markdown("Measure how the models treat group words before shipping them. Pick checks and a sample "
                        "size; optionally upload your own CSV with `text` and group columns.")
            with gr.Row():
                with gr.Column():
                    checks = gr.CheckboxGroup(audit_adapter.available_checks(), value=audit_adapter.default_checks(),
                                              label="Checks", elem_id="au-checks")
                    limit = gr.Slider(5, 500, value=50, step=5, label="Sample size per built-in benchmark",
                                      info="Small samples give wide intervals: a gate whose interval straddles its "
                                           "threshold is INCONCLUSIVE, not a pass or a fail.", elem_id="au-limit")
                    with gr.Accordion("Your own data (optional): CSV with a 'text' column and group columns", open=False):
                        upload = gr.File(label="Your CSV (audited whenever one is uploaded)", file_types=[".csv"],
                                         elem_id="au-file")
                        with gr.Row():
                            groups = gr.Textbox(label="Group columns (blank: every column but text/label)", elem_id="au-groups")
                            label = gr.Textbox(label="Label column (optional)", elem_id="au-label")
                        sample_file = gr.Checkbox(False, label="Sample my file too (default: every row is used)",
                                                  elem_id="au-sample-file")
                    with gr.Accordion("Compare with a previous audit (optional): its report.json", open=False):
                        baseline = gr.File(label="Baseline report.json (same sample size and checks)",
                                           file_types=[".json"], elem_id="au-baseline")
                    run = gr.Button("Run audit", variant="primary", elem_id="au-run")
                with gr.Column():
                    summary = gr.Markdown(elem_id="au-summary")
                    files = gr.File(label="Reports", file_count="multiple", interactive=False, elem_id="au-files")
            table = gr.Dataframe(interactive=False, wrap=True, label="Results", elem_id="au-table")
            plot = gr.Plot(label="Gaps by check", elem_id="au-plot")
            run.click(self.bias_audit, [checks, limit, upload, groups, label, sample_file, baseline],
                      [summary, table, plot, files],
                      api_name="bias_audit", concurrency_limit=1, concurrency_id="audit")
        return tab
