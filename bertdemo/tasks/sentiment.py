"""Sentiment classification: label and class probabilities for each text, batched.

Policy for long text: truncated to the model's limit with ``truncated: true`` in the result, so a
batch of reviews is never refused because one of them is long.
"""

from __future__ import annotations

from typing import Any

from bertdemo.batching import Encoded


def preprocess(tok: Any, text: str, max_length: int) -> tuple[Encoded, bool]:
    enc = tok(text, add_special_tokens=True, truncation=False)
    ids = list(enc["input_ids"])
    truncated = len(ids) > max_length
    if truncated:
        ids = ids[: max_length - 1] + [tok.sep_token_id]
    return Encoded(input_ids=ids), truncated


def labels_of(config: Any) -> list[str]:
    n = int(config.num_labels)
    id2label = {int(k): str(v) for k, v in (config.id2label or {}).items()}
    return [id2label.get(i, f"LABEL_{i}") for i in range(n)]


def postprocess(labels: list[str], probs: list[float], truncated: bool) -> dict[str, Any]:
    best = max(range(len(probs)), key=lambda i: probs[i])
    return {
        "label": labels[best],
        "score": float(probs[best]),
        "scores": {label: float(p) for label, p in zip(labels, probs, strict=True)},
        "truncated": truncated,
    }
