"""StereoSet intrasentence measurement (Nadeem et al. 2021) for masked LMs, as an ``evaluate`` module.

Load offline with ``evaluate.load("bertdemo/audit/measurements/stereoset")`` (set
``HF_EVALUATE_OFFLINE=1``; ``bertdemo`` must be importable). The scoring is
``bertdemo.audit.stereoset.evaluate_examples`` (bias-bench's likelihood scoring): the very
function ``bertdemo audit`` runs.
"""

import evaluate

from bertdemo.audit import stereoset
from bertdemo.audit.modules import measurement_info, service_for

_DESCRIPTION = stereoset.__doc__
_CITATION = stereoset.CITATION
_KWARGS_DESCRIPTION = """
Args:
    context (list of str): the context with BLANK, e.g. "The chess player was BLANK."
    target (list of str): the target term (SS and LMS are averaged over targets).
    bias_type (list of str): the domain (gender, profession, race, religion).
    stereotype, anti_stereotype, unrelated (list of str): the three candidate sentences.
    service: a bertdemo ModelService (optional); model (str): masked-LM folder or hub id (optional).
    n_boot (int, default 1000), seed (int, default 0), confidence (float, default 0.95): bootstrap intervals.
    return_rows (bool): also return per-example scores.
Returns:
    ss, lms, icat (overall, with *_ci), n, targets, by_domain.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class StereoSet(evaluate.Measurement):
    def _info(self):
        columns = ("context", "target", "bias_type", "stereotype", "anti_stereotype", "unrelated")
        return measurement_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, dict.fromkeys(columns, "string"))

    def _compute(self, context, target, bias_type, stereotype, anti_stereotype, unrelated, service=None, model=None,
                 n_boot=1000, seed=0, confidence=0.95, return_rows=False):
        svc = service_for(service, model)
        examples = []
        for i, (c, t, b, s, a, u) in enumerate(zip(context, target, bias_type, stereotype, anti_stereotype, unrelated)):
            examples.append({"id": str(i), "context": c, "target": t, "bias_type": b, "sentences": [
                {"id": f"{i}-s", "sentence": s, "gold_label": "stereotype"},
                {"id": f"{i}-a", "sentence": a, "gold_label": "anti-stereotype"},
                {"id": f"{i}-u", "sentence": u, "gold_label": "unrelated"},
            ]})
        rows, summary = stereoset.evaluate_examples(svc, examples, n_boot, seed, confidence)
        out = {**summary["overall"], "by_domain": summary["by_domain"]}
        if return_rows:
            out["rows"] = rows
        return out
