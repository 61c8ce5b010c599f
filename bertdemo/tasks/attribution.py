"""Token attributions for the classifier: why did it say positive or negative?

Integrated gradients (Sundararajan et al. 2017) from a [PAD]-embedding baseline, or the cheaper
gradient x input. Scores are per word piece, then summed into whole words for display; positive
scores push toward the predicted label. These explain the model, not the world: a high score
on a word means the model relies on it, which is itself worth auditing.
"""

from __future__ import annotations

from typing import Any

METHODS = ("integrated_gradients", "gradient_x_input")


def attribute(clf_model: Any, tok: Any, input_ids: list[int], target: int, method: str = "integrated_gradients",
              steps: int = 16) -> list[float]:
    """Attribution of each input position to the ``target`` class logit (fp32 model needed)."""
    import torch

    device = next(clf_model.parameters()).device
    ids = torch.tensor([input_ids], dtype=torch.long, device=device)
    attn = torch.ones_like(ids)
    embed = clf_model.get_input_embeddings()
    with torch.no_grad():
        x = embed(ids).detach()
        baseline = embed(torch.full_like(ids, tok.pad_token_id or 0)).detach()
        special = torch.tensor([t in set(tok.all_special_ids) for t in input_ids], device=device)
        baseline[0, special] = x[0, special]  # keep [CLS]/[SEP] as they are
    if method == "gradient_x_input":
        alphas = torch.ones(1, device=device)
    else:
        alphas = (torch.arange(steps, device=device, dtype=x.dtype) + 0.5) / steps  # midpoint rule
    path = baseline + alphas.view(-1, 1, 1) * (x - baseline)
    path.requires_grad_(True)
    with torch.enable_grad():
        logits = clf_model(inputs_embeds=path, attention_mask=attn.expand(len(alphas), -1)).logits
        # autograd.grad leaves the parameters' .grad untouched: safe beside concurrent inference
        (grads,) = torch.autograd.grad(logits[:, target].sum(), path)
    grads = grads.mean(dim=0)
    delta = x[0] - baseline[0] if method != "gradient_x_input" else x[0]
    scores = (grads * delta).sum(dim=-1)
    return [float(s) for s in scores.detach().cpu()]


def to_words(tok: Any, input_ids: list[int], scores: list[float]) -> list[tuple[str, float]]:
    """Merge word pieces (``##ing``) into words and sum their scores; drop special tokens."""
    special = set(tok.all_special_ids)
    words: list[list[Any]] = []
    for tid, score in zip(input_ids, scores, strict=True):
        if tid in special:
            continue
        piece = tok.convert_ids_to_tokens(tid)
        if piece.startswith("##") and words:
            words[-1][0] += piece[2:]
            words[-1][1] += score
        else:
            words.append([piece, score])
    return [(w, float(s)) for w, s in words]


def normalize(pairs: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Scale scores to [-1, 1] for display (HighlightedText), keeping signs."""
    peak = max((abs(s) for _, s in pairs), default=0.0) or 1.0
    return [(w, s / peak) for w, s in pairs]
