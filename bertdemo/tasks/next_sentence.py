"""Next-sentence prediction: BERT's second pre-training objective, P(B follows A)."""

from __future__ import annotations

from typing import Any

from bertdemo.batching import Encoded
from bertdemo.tasks.fill_mask import encode_checked


def preprocess(tok: Any, first: str, second: str, max_length: int) -> Encoded:
    """Encode the pair as ``[CLS] A [SEP] B [SEP]`` with segment ids; refuse pairs too long."""
    return encode_checked(tok, first, max_length, field="sentence pair", pair=second)


def rank(candidates: list[str], probs: list[float]) -> list[dict[str, Any]]:
    """Candidates ordered by probability (ties keep the given order), with their rank."""
    order = sorted(range(len(candidates)), key=lambda i: -probs[i])
    return [
        {"rank": r + 1, "candidate": candidates[i], "is_next": probs[i], "index": i}
        for r, i in enumerate(order)
    ]
