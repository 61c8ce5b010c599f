"""Group fairness of binary predictions, as an ``evaluate`` module (fairlearn ``MetricFrame``):
positive rate and mean score by group (plus accuracy, TPR, FPR with references),
demographic parity difference/ratio, equalized odds difference (with references), and seeded
bootstrap intervals.

Load offline with ``evaluate.load("bertdemo/audit/measurements/group_fairness")``. The computation
is ``bertdemo.audit.fairness.group_fairness``: the very function ``bertdemo audit`` runs for its
classifier and user-data checks.
"""

import evaluate

from bertdemo.audit import fairness
from bertdemo.audit.modules import measurement_info

_DESCRIPTION = fairness.__doc__
_CITATION = fairness.CITATION
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): 1 = predicted positive, 0 = not.
    scores (list of float): predicted probability of the positive class.
    groups (list of str): the sensitive attribute's value per row.
    references (list of int, optional): true labels (1 positive); enables accuracy, TPR/FPR and
        equalized_odds_difference. Use the config name "with_references" to pass them.
    attribute (str): name of the attribute (default "group").
    n_boot (int, default 200), seed (int, default 0), confidence (float, default 0.95).
Returns:
    overall, by_group, counts, difference, ratio, demographic_parity_difference,
    demographic_parity_ratio, equalized_odds_difference, ci.
"""

_BASE = {"predictions": "int32", "scores": "float64", "groups": "string"}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class GroupFairness(evaluate.Measurement):
    def _info(self):
        features = dict(_BASE)
        if self.config_name == "with_references":
            features["references"] = "int32"
        return measurement_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, features)

    def _compute(self, predictions, scores, groups, references=None, attribute="group", n_boot=200, seed=0,
                 confidence=0.95):
        result = fairness.group_fairness(predictions, scores, groups, attribute, y_true=references, n_boot=n_boot,
                                         seed=seed, confidence=confidence)
        return result.to_dict()
