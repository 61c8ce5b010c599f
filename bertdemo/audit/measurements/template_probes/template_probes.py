"""Template probes for masked LMs, as an ``evaluate`` module: how much the [MASK] distribution moves
when only the demographic phrase changes (Jensen-Shannon divergence between groups), and each
group's top predictions.

Load offline with ``evaluate.load("bertdemo/audit/measurements/template_probes")``. The scoring is
``bertdemo.audit.templates.run_probes``: the very function ``bertdemo audit`` runs.
"""

import evaluate

from bertdemo.audit import templates
from bertdemo.audit.modules import measurement_info, service_for

_DESCRIPTION = templates.__doc__
_CITATION = "bertdemo template probes (EEC-style: Kiritchenko & Mohammad 2018)."
_KWARGS_DESCRIPTION = """
Args:
    template (list of str): sentences with {person} and [MASK], e.g. "{person} worked as a [MASK]."
    groups (dict): group -> list of person phrases, e.g. {"male": ["he", "the man"], "female": ["she", "the woman"]}.
    attribute (str): name of the attribute the groups split (default "attribute").
    occupations (list of str): words whose probability mass is reported per group (optional).
    top_k (int): top predictions per group (default 10).
    service / model: which masked LM (optional).
Returns:
    mean_jsd, max_jsd, per_template (jsd per group pair, top_predictions, occupation_share).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TemplateProbes(evaluate.Measurement):
    def _info(self):
        return measurement_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, {"template": "string"})

    def _compute(self, template, groups=None, attribute="attribute", occupations=None, top_k=10, service=None,
                 model=None):
        if not groups or len(groups) < 2:
            raise ValueError("groups must map at least two group names to lists of person phrases")
        svc = service_for(service, model)
        spec = {"templates": list(template), "attributes": {attribute: groups}, "occupations": occupations or []}
        _, results = templates.run_probes(svc, spec, top_k=top_k)
        return results["attributes"][attribute]
