"""Batched forward passes over :class:`Encoded` items: the one place tensors are built.

Heads are applied only where they are needed: the masked-LM head (a vocab-sized projection,
the costliest layer of a small BERT) runs on the requested positions only, not on every token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bertdemo.batching import Encoded


def _pad(lm_or_clf: Any, items: Sequence[Encoded]) -> dict[str, Any]:
    import torch

    pad_id = lm_or_clf.tokenizer.pad_token_id or 0
    width = max(len(it) for it in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    types = torch.zeros((len(items), width), dtype=torch.long)
    attn = torch.zeros((len(items), width), dtype=torch.long)
    for row, it in enumerate(items):
        n = len(it.input_ids)
        ids[row, :n] = torch.tensor(it.input_ids, dtype=torch.long)
        if it.token_type_ids is not None:
            types[row, :n] = torch.tensor(it.token_type_ids, dtype=torch.long)
        attn[row, :n] = 1
    dev = lm_or_clf.device
    return {"input_ids": ids.to(dev), "token_type_ids": types.to(dev), "attention_mask": attn.to(dev)}


def mlm_log_probs(lm: Any, items: Sequence[Encoded]) -> list[Any]:
    """Per item: log-softmax over the vocabulary at each of its ``positions``.

    Returns a ``(len(positions), vocab)`` float tensor per item, or, when the item has
    ``target_ids``, a ``(len(positions),)`` tensor with the log-probabilities of those tokens.
    """
    import torch

    batch = _pad(lm, items)
    with torch.inference_mode():
        hidden = lm.model.bert(**batch).last_hidden_state
        rows = torch.tensor([r for r, it in enumerate(items) for _ in it.positions], dtype=torch.long)
        cols = torch.tensor([p for it in items for p in it.positions], dtype=torch.long)
        picked = hidden[rows.to(hidden.device), cols.to(hidden.device)]
        logits = lm.model.cls.predictions(picked).float()
        logp = torch.log_softmax(logits, dim=-1).cpu()
    out: list[Any] = []
    start = 0
    for it in items:
        block = logp[start : start + len(it.positions)]
        start += len(it.positions)
        if it.target_ids is not None:
            block = block.gather(1, torch.tensor(it.target_ids, dtype=torch.long).unsqueeze(1)).squeeze(1)
        out.append(block)
    return out


def nsp_probs(lm: Any, items: Sequence[Encoded]) -> list[float]:
    """Per item (a sentence pair): probability that sentence B follows sentence A."""
    import torch

    batch = _pad(lm, items)
    with torch.inference_mode():
        pooled = lm.model.bert(**batch).pooler_output
        logits = lm.model.cls.seq_relationship(pooled).float()
        probs = torch.softmax(logits, dim=-1)[:, 0].cpu()  # index 0 = "B is the next sentence"
    return [float(p) for p in probs]


def class_probs(clf: Any, items: Sequence[Encoded]) -> list[list[float]]:
    """Per item: class probabilities of a sequence classifier, in label-id order."""
    import torch

    batch = _pad(clf, items)
    with torch.inference_mode():
        logits = clf.model(**batch).logits.float()
        probs = torch.softmax(logits, dim=-1).cpu()
    return [row.tolist() for row in probs]
