"""Template probes: the same sentence with only the demographic word changed.

* Masked-LM probes (``mlm_probes.json``): "{person} worked as a [MASK]." for each person phrase of
  each group. Per template and attribute (gender, race, religion), the distribution at [MASK] is
  averaged over a group's phrases, and groups are compared with the Jensen-Shannon divergence
  (base 2: 0 = identical, 1 = disjoint). Also reported: each group's top predictions and the share
  of probability mass on occupation words.
* Classifier sentences (``classifier_eec_style.json`` x ``names.json``): EEC-style sentences with a
  name whose gender and race are known; see :mod:`bertdemo.audit.fairness` for the metrics.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bertdemo.audit.data import CLASSIFIER_TEMPLATES_FILE, MLM_PROBES_FILE, NAMES_FILE, load_json
from bertdemo.audit.stats import finite, sample_indices


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def fill(template: str, person: str) -> str:
    """Insert a person phrase, capitalizing it at the start of the sentence."""
    text = template.replace("{person}", person)
    return _capitalize(text) if template.startswith("{person}") else text


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0..1) between two probability vectors."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    p = p / p.sum()
    q = q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / b[nz])))

    return max(0.0, 0.5 * kl(p, m) + 0.5 * kl(q, m))


def probe_items(spec: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """Every (template, attribute, group, phrase) with its filled sentence."""
    spec = spec or load_json(MLM_PROBES_FILE)
    items = []
    for t, template in enumerate(spec["templates"]):
        for attribute, groups in spec["attributes"].items():
            for group, phrases in groups.items():
                for phrase in phrases:
                    items.append({"template_id": t, "template": template, "attribute": attribute, "group": group,
                                  "phrase": phrase, "text": fill(template, phrase)})
    return items


def occupation_ids(tokenizer: Any, words: Sequence[str]) -> list[int]:
    """Vocabulary ids of the occupation words that are single tokens of this tokenizer."""
    ids = []
    for w in words:
        pieces = tokenizer.tokenize(w)
        if len(pieces) == 1 and pieces[0] != tokenizer.unk_token:
            ids.append(int(tokenizer.convert_tokens_to_ids(pieces[0])))
    return sorted(set(ids))


def run_probes(service: Any, spec: dict[str, Any] | None = None, top_k: int = 10,
               progress: Callable[[int], None] | None = None,
               on_total: Callable[[int], None] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Distributions at [MASK] per probe; JSD between groups; top predictions; occupation share."""
    spec = spec or load_json(MLM_PROBES_FILE)
    tok = service.mlm.tokenizer
    items = probe_items(spec)
    texts = [it["text"].replace("[MASK]", tok.mask_token) for it in items]
    if on_total is not None:
        on_total(len(texts))
    dists = [np.asarray(d, dtype=np.float64) for d in service.mask_distributions(texts, progress=progress)]
    occ = occupation_ids(tok, spec.get("occupations", []))
    rows = []
    for it, d in zip(items, dists, strict=True):
        top = np.argsort(-d)[:3]
        rows.append({**it, "top_predictions": " ".join(tok.convert_ids_to_tokens([int(i) for i in top])),
                     "top_probability": float(d[top[0]]), "occupation_mass": float(d[occ].sum()) if occ else None})
    results: dict[str, Any] = {"templates": list(spec["templates"]), "attributes": {}, "occupation_words_in_vocab": len(occ),
                               "divergence": "Jensen-Shannon divergence, base 2 (0 identical .. 1 disjoint)"}
    for attribute, groups in spec["attributes"].items():
        per_template = []
        for t, template in enumerate(spec["templates"]):
            mean = {}
            for g in groups:
                sel = [d for it, d in zip(items, dists, strict=True)
                       if it["template_id"] == t and it["attribute"] == attribute and it["group"] == g]
                mean[g] = np.mean(sel, axis=0)
            pairs = {f"{a} vs {b}": jensen_shannon(mean[a], mean[b]) for a, b in itertools.combinations(groups, 2)}
            top = {g: [{"token": tok.convert_ids_to_tokens(int(i)), "probability": float(mean[g][i])}
                       for i in np.argsort(-mean[g])[:top_k]] for g in groups}
            occ_share = {g: (finite(mean[g][occ].sum()) if occ else None) for g in groups}
            per_template.append({"template": template, "jsd": pairs, "max_jsd": max(pairs.values()),
                                 "top_predictions": top, "occupation_share": occ_share})
        all_jsd = [v for pt in per_template for v in pt["jsd"].values()]
        results["attributes"][attribute] = {
            "groups": {g: list(p) for g, p in groups.items()},
            "mean_jsd": float(np.mean(all_jsd)), "max_jsd": float(np.max(all_jsd)),
            "per_template": per_template,
        }
    results["mean_jsd"] = float(np.mean([a["mean_jsd"] for a in results["attributes"].values()]))
    results["max_attribute_mean_jsd"] = float(max(a["mean_jsd"] for a in results["attributes"].values()))
    return rows, results


# ---- classifier sentences ----------------------------------------------------------------------
def classifier_sentences(limit: int | None = None, seed: int = 0, templates: dict[str, Any] | None = None,
                         names: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], int]:
    """EEC-style sentences: each base sentence (template x word) with every name.

    ``limit`` samples base sentences (seeded), never names, so every counterfactual set stays
    complete. Returns (rows, number of base sentences before sampling).
    """
    templates = templates or load_json(CLASSIFIER_TEMPLATES_FILE)
    names = names or load_json(NAMES_FILE)
    people = [(name, race, gender) for race, by_gender in names["names"].items()
              for gender, lst in by_gender.items() for name in lst]
    bases = []
    for t in templates["templates"]:
        for polarity, words in templates["words"][t["words"]].items():
            for w in words:
                bases.append((t, w, 1 if polarity == "positive" else 0))
    chosen = sample_indices(len(bases), limit, seed)
    rows = []
    for b in chosen:
        t, w, label = bases[b]
        for name, race, gender in people:
            rows.append({"base_id": f"{t['id']}:{w}", "template": t["text"], "word": w, "name": name,
                         "gender": gender, "race": race, "label": label,
                         "text": t["text"].replace("{person}", name).replace("{word}", w)})
    return rows, len(bases)
