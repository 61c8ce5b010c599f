"""Pseudo-log-likelihood: mask one token at a time and sum log P(original token).

This is the masked-LM score behind CrowS-Pairs (Nangia et al. 2020) and pseudo-perplexity
(Salazar et al. 2020). All masked copies of all texts are scored in shared minibatches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bertdemo.batching import Encoded


def masked_copies(ids: Sequence[int], positions: Sequence[int], mask_id: int) -> list[Encoded]:
    """One copy of ``ids`` per position, with that position masked and its token as target."""
    copies = []
    for p in positions:
        masked = list(ids)
        masked[p] = mask_id
        copies.append(Encoded(input_ids=masked, positions=[p], target_ids=[ids[p]]))
    return copies


def scorable_positions(tok: Any, ids: Sequence[int]) -> list[int]:
    """Every position except special tokens ([CLS], [SEP], [PAD])."""
    special = set(tok.all_special_ids)
    return [i for i, t in enumerate(ids) if t not in special]


def summarize(token_logprobs: list[float]) -> dict[str, Any]:
    n = len(token_logprobs)
    total = float(sum(token_logprobs))
    return {"pll": total, "token_logprobs": token_logprobs, "num_tokens": n,
            "mean_logprob": total / n if n else 0.0}
