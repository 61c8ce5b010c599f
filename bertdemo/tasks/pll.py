"""Pseudo-log-likelihood: mask one token at a time and sum log P(original token).

This is the masked-LM score behind CrowS-Pairs (Nangia et al. 2020) and pseudo-perplexity
(Salazar et al. 2020). All masked copies of all texts are scored in shared minibatches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bertdemo.batching import Encoded
from bertdemo.errors import InputError
from bertdemo.models import KIND_PRETRAINING
from bertdemo.tasks import forward
from bertdemo.tasks.base import Result, Task, spec
from bertdemo.tasks.fill_mask import encode_checked
from bertdemo.textcheck import check_text_list


@dataclass
class PLLResult(Result):
    """Sum and mean of log P(token | rest) over a text's tokens, and each token's value."""

    pll: float
    token_logprobs: list[float]
    num_tokens: int
    mean_logprob: float


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


def summarize(token_logprobs: list[float]) -> PLLResult:
    n = len(token_logprobs)
    total = float(sum(token_logprobs))
    return PLLResult(total, token_logprobs, n, total / n if n else 0.0)


class TokenLogprobs(Task[list[list[float]]]):
    """log P(original token) at given positions of token-id sequences, one mask at a time.

    Inputs are ``(ids_list, positions_list)``; the result per sequence lists its positions in the
    given order. All masked copies of all sequences share minibatches.
    """

    name = "token_logprobs"
    model_kind = KIND_PRETRAINING
    input_spec = spec(ids_list="list[list[int]] with [CLS]/[SEP]", positions_list="list[list[int]]")
    output_spec = spec(logprobs="list[list[float]] per sequence and position")
    forward_fn = forward.mlm_log_probs

    def sanitize(self, model: Any, settings: Any, inputs: Any, **params: Any) -> tuple[Any, dict[str, Any]]:
        ids_list, positions_list = inputs
        for ids, positions in zip(ids_list, positions_list, strict=True):
            for p in positions:
                if not 0 <= p < len(ids):
                    raise InputError(f"position {p} is outside a sequence of {len(ids)} tokens", field="positions")
        return (ids_list, positions_list), {}

    def preprocess(self, model: Any, inputs: Any, params: dict[str, Any]) -> list[Encoded]:
        mask_id = model.tokenizer.mask_token_id
        return [c for ids, positions in zip(*inputs, strict=True) for c in masked_copies(ids, positions, mask_id)]

    def postprocess(self, model: Any, inputs: Any, items: list[Encoded], outputs: list[Any],
                    params: dict[str, Any]) -> list[list[float]]:
        scores = iter(outputs)
        return [[float(next(scores)[0]) for _ in positions] for positions in inputs[1]]


class PseudoLogLikelihood(TokenLogprobs):
    """PLL of each text: every non-special token masked in turn (inputs: a list of texts)."""

    name = "pseudo_log_likelihood"
    input_spec = spec(texts="list[str]")
    output_spec = spec(results="list[PLLResult]")

    def sanitize(self, model: Any, settings: Any, inputs: Any, **params: Any) -> tuple[Any, dict[str, Any]]:
        texts = check_text_list(inputs, "texts", settings.max_batch_texts * 10, settings.max_chars)
        tok = model.tokenizer
        ids_list = [encode_checked(tok, t, model.max_length).input_ids for t in texts]
        return (ids_list, [scorable_positions(tok, ids) for ids in ids_list]), {}

    def postprocess(self, model: Any, inputs: Any, items: list[Encoded], outputs: list[Any],
                    params: dict[str, Any]) -> list[PLLResult]:  # type: ignore[override]
        return [summarize(s) for s in super().postprocess(model, inputs, items, outputs, params)]

    def log_text(self, inputs: Any) -> None:
        return None
