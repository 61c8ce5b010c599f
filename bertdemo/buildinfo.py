"""What the bundled models' own build measured, read from their ``metrics.json`` for the About tab.

A checkpoint built by ``python -m modelbuild`` carries its held-out and user-style numbers; any other
checkpoint (bert-base from the hub, a fine-tuned folder) has none and gets ``None``. Nothing here
loads a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# Published figures for bert-base-uncased, printed beside the bundled model's own.
BERT_BASE_PUBLISHED = {"nsp": "97-98 % (Devlin et al. 2019)", "sst2": "93.5 % on SST-2 movie reviews (GLUE test)",
                       "params": "110M"}


@dataclass(frozen=True)
class BuildNumbers:
    """The headline numbers of a bundled build (fractions in 0-1, None where not measured)."""

    mlm_params_m: float | None = None  # size of the masked LM, millions of parameters
    train_minutes: float | None = None  # its probe + pre-training (+ continue) time
    cloze_items: int = 0  # everyday cloze sentences ...
    cloze_top1: float | None = None  # ... right word first
    cloze_top5: float | None = None  # ... right word in the top 5
    user_nsp_pairs: int = 0  # everyday next-sentence pairs ...
    user_nsp: float | None = None  # ... right verdict
    corpus_nsp: float | None = None  # held-out documents, same-source negatives
    app_examples: str = ""  # "sensible/judged" over the app's own examples
    sentiment_amazon: float | None = None  # VADER's human-rated Amazon snippets


def _json(folder: str) -> dict:
    try:
        return json.loads((Path(folder) / "metrics.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def build_numbers(mlm_folder: str, sentiment_folder: str) -> BuildNumbers | None:
    """Numbers of a ``modelbuild`` checkpoint pair, or None when neither folder has them."""
    m, s = _json(mlm_folder), _json(sentiment_folder)
    final = m.get("evaluate", {}).get("final", {})
    user, corpus = final.get("user", {}), final.get("corpus", {})
    held = s.get("heldout_test", {})
    if not user and not held:
        return None
    chosen = m.get("pretrain", {}).get("chosen")
    cand = m.get("probe", {}).get("candidates", {}).get(chosen, {})
    params = cand.get("params_m")
    seconds = [cand.get("train", {}).get("seconds"), m.get("pretrain", {}).get("train", {}).get("seconds")]
    if "continue" in m:  # a second pre-training round
        seconds.append(m["continue"].get("train", {}).get("seconds"))
    ex = user.get("app_examples", {})
    return BuildNumbers(
        mlm_params_m=params,
        train_minutes=sum(seconds) / 60 if all(seconds) else None,
        cloze_top1=user.get("cloze", {}).get("top1"), cloze_top5=user.get("cloze", {}).get("top5"),
        cloze_items=user.get("cloze", {}).get("items", 0), user_nsp=user.get("nsp", {}).get("accuracy"),
        user_nsp_pairs=user.get("nsp", {}).get("pairs", 0), corpus_nsp=corpus.get("nsp_accuracy"),
        app_examples=f"{ex['reasonable']}/{ex['judged']}" if ex else "", sentiment_amazon=held.get("accuracy"))
