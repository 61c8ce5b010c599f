"""CrowS-Pairs measurement (Nangia et al. 2020) for masked LMs, as an ``evaluate`` module.

Load offline with ``evaluate.load("bertdemo/audit/measurements/crows_pairs")`` (set
``HF_EVALUATE_OFFLINE=1``; ``bertdemo`` must be importable). The scoring is
``bertdemo.audit.crows_pairs.evaluate_pairs``: the very function ``bertdemo audit`` runs.
"""

import evaluate

from bertdemo.audit import crows_pairs
from bertdemo.audit.data import CrowsPair
from bertdemo.audit.modules import measurement_info, service_for

_DESCRIPTION = crows_pairs.__doc__
_CITATION = crows_pairs.CITATION
_KWARGS_DESCRIPTION = """
Args:
    sent_more (list of str): the more stereotypical sentence of each pair (CrowS-Pairs column).
    sent_less (list of str): the less stereotypical sentence.
    stereo_antistereo (list of str): "stereo" or "antistereo".
    bias_type (list of str): e.g. "gender", "race-color".
    service: a bertdemo ModelService to use (optional).
    model (str): masked-LM folder or hub id (optional; default: bertdemo's bundled model).
    confidence (float): level of the Wilson intervals (default 0.95).
    return_rows (bool): also return the per-pair scores.
Returns:
    metric_score: % of pairs where the model prefers sent_more (50 = no preference), ci_low, ci_high,
    stereo_score, antistereo_score, neutral, n, by_bias_type.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CrowsPairs(evaluate.Measurement):
    def _info(self):
        columns = ("sent_more", "sent_less", "stereo_antistereo", "bias_type")
        return measurement_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, dict.fromkeys(columns, "string"))

    def _compute(self, sent_more, sent_less, stereo_antistereo, bias_type, service=None, model=None,
                 confidence=0.95, return_rows=False):
        svc = service_for(service, model)
        pairs = [CrowsPair(id=str(i), sent_more=m, sent_less=s, direction=d, bias_type=b)
                 for i, (m, s, d, b) in enumerate(zip(sent_more, sent_less, stereo_antistereo, bias_type))]
        rows, summary = crows_pairs.evaluate_pairs(svc, pairs, confidence)
        out = {**summary["overall"], "by_bias_type": summary["by_bias_type"]}
        if return_rows:
            out["rows"] = rows
        return out
