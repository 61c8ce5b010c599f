"""The Bias audit tab: checks, sample size, progress, verdicts, plots, report downloads, your own CSV."""

from __future__ import annotations

import html
import logging
from typing import Any

import gradio as gr

from bertdemo.errors import BusyError, InputError, LimitError
from bertdemo.ui import audit_adapter
from bertdemo.ui.admission import AUDIT_CONCURRENCY, AUDIT_GROUP, AuditAdmission
from bertdemo.ui.common import UNREADABLE, AppContext, number, user_facing

log = logging.getLogger(__name__)

QUICK_LIMIT = 20  # /audit in chat: the default checks on a small sample
# check, check verdict, gate, value, 95% interval, needs, gate outcome
TABLE_WIDTHS = ["12%", "11%", "22%", "8%", "13%", "8%", "26%"]

GLOSSARY = """
- **CrowS-Pairs metric score**: % of sentence pairs (one more, one less stereotypical) where the model finds the more
  stereotypical one more likely; 50 = no preference. bert-base-uncased scores about 60.5.
- **SS (stereotype score)**, StereoSet: % of items where the stereotypical completion beats the anti-stereotypical
  one; 50 = no preference. **LMS**: % where a meaningful completion beats an unrelated one (how well the model
  models language; 50 = chance). **ICAT** = LMS x min(SS, 100 - SS) / 50 (100 = unbiased and perfect).
- **JSD** (Jensen-Shannon divergence, bits): how different the [MASK] predictions are when only the person changes
  (0 = identical). **Occupation mass**: how much of the prediction is an occupation at all.
- **DPD** (demographic parity difference): largest gap in the share predicted positive between groups (0 = none).
  **DPR** (ratio): smallest / largest share (1 = equal; 0.8 is the "four-fifths rule").
  **EOD** (equalized odds difference): largest gap in true- or false-positive rate (needs labels).
- **Flip rate**: share of sentence pairs that differ only in the name and get different labels.
- **95% interval**: the range the value would likely fall in with another sample. **PASS**: the whole interval is
  within the threshold; **FAIL**: the whole interval is outside; **INCONCLUSIVE**: it straddles the threshold (a
  larger sample decides), or the check cannot see anything on this model (said in the note).
"""


class AuditTab:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.admission = AuditAdmission(ctx.settings)  # build_app attaches it to the Blocks' queue

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

    def refusal(self, request: Any, *args: Any) -> tuple[int, str] | None:
        """Why an audit with these tab inputs may not be queued now, as (input index, message), or ``None``.

        Only limits refuse here (:class:`LimitError`: group columns, work; :class:`BusyError`: how many
        audits may wait); any other input problem is left to the handler, which reports it as before."""
        try:
            if args and UNREADABLE not in args:
                audit_adapter.prepare(self.ctx.settings, args[0], number(args[1], "sample size", 50), *args[2:])
            self.admission.check(request)
        except LimitError as err:
            return (2 if err.field == "groups CSV" else 1), html.escape(str(err), quote=False)
        except BusyError as err:
            return 0, html.escape(str(err), quote=False)
        except InputError:
            return None
        except Exception as err:  # a bug must not block audits, nor log the inputs
            log.error("audit admission failed: %s", type(err).__name__)
            return None
        return None

    def validate(self, checks: Any, limit: Any, upload: Any = None, group_cols: Any = "", label_col: Any = "",
                 sample_file: Any = False, baseline: Any = None, request: gr.Request | None = None) -> list[dict[str, Any]]:
        """gradio validator of ``bias_audit``: runs when the request arrives, before it is queued."""
        return self.verdicts(request, checks, limit, upload, group_cols, label_col, sample_file, baseline)

    def verdicts(self, request: Any, *args: Any) -> list[dict[str, Any]]:
        """One ``gr.validate`` per input of an audit entry point (``args`` in the tab's order, a prefix of it
        for the agents' tool): the refused input, if any, carries the message."""
        verdict = [gr.validate(True, "") for _ in args]
        refused = self.refusal(request, *args)
        if refused is not None:
            verdict[min(refused[0], len(args) - 1)] = gr.validate(False, refused[1])
        return verdict

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

    def build(self) -> gr.Column:
        with gr.Column() as tab:
            gr.Markdown("Measure how the models treat group words before shipping them. Pick checks and a sample "
                        "size; optionally upload your own CSV with `text` and group columns.")
            with gr.Row():
                with gr.Column():
                    checks = gr.CheckboxGroup(audit_adapter.available_checks(), value=audit_adapter.default_checks(),
                                              label="Checks", elem_id="au-checks")
                    limit = gr.Slider(5, audit_adapter.SAMPLE_MAX, value=50, step=5, label="Sample size per built-in benchmark",
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
            # fixed column shares and wrapped cells: the long gate outcomes break into lines instead of
            # running past the right edge of the box
            table = gr.Dataframe(headers=audit_adapter.TABLE_HEADERS, interactive=False, wrap=True, label="Results",
                                 column_widths=TABLE_WIDTHS, elem_id="au-table")
            with gr.Accordion("What the numbers mean", open=False, elem_id="au-glossary"):
                gr.Markdown(GLOSSARY)
            plot = gr.Plot(label="Gaps by check", elem_id="au-plot")
            # Every audit entry point shares one concurrency group (one audit at a time); the validator
            # refuses an audit over a limit, or one too many waiting, before it is queued.
            run.click(self.bias_audit, [checks, limit, upload, groups, label, sample_file, baseline],
                      [summary, table, plot, files], api_name="bias_audit", concurrency_limit=AUDIT_CONCURRENCY,
                      concurrency_id=AUDIT_GROUP, validator=self.validate)
        return tab
