"""Token attributions for the classifier: why did it say positive or negative?

Integrated gradients (Sundararajan et al. 2017) from a [PAD]-embedding baseline, or the cheaper
gradient x input. Scores are per word piece, then summed into whole words for display; positive
scores push toward the predicted label. These explain the model, not the world: a high score
on a word means the model relies on it, which is itself worth auditing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bertdemo.batching import Encoded
from bertdemo.errors import InputError
from bertdemo.models import KIND_CLASSIFIER
from bertdemo.tasks import forward
from bertdemo.tasks.base import Task, spec
from bertdemo.tasks.sentiment import SentimentResult, labels_of
from bertdemo.tasks.sentiment import postprocess as sentiment_result
from bertdemo.tasks.sentiment import preprocess as sentiment_item
from bertdemo.textcheck import check_int, clean_text

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


@dataclass
class Explanation(SentimentResult):
    """A sentiment result with per-word attributions toward its label (+ pushes toward it)."""

    method: str = METHODS[0]
    attributions: list[tuple[str, float]] | None = None

    def top_words(self, n: int = 5) -> list[tuple[str, float]]:
        """The ``n`` words with the largest attributions in size, either sign."""
        return sorted(self.attributions or [], key=lambda ws: -abs(ws[1]))[:n]


class Explain(Task[Explanation]):
    """The sentiment of one text with word attributions (integrated gradients or gradient x input)."""

    name = "explain_sentiment"
    model_kind = KIND_CLASSIFIER
    input_spec = spec(text="str", method=f"one of {', '.join(METHODS)}", steps="int 1..64")
    output_spec = spec(label="str", score="float", scores="dict[str, float]", truncated="bool",
                   method="str", attributions="list[(word, score)]")
    forward_fn = forward.class_probs

    def sanitize(self, model: Any, settings: Any, inputs: Any, **params: Any) -> tuple[str, dict[str, Any]]:
        method = params.get("method", METHODS[0])
        if method not in METHODS:
            raise InputError(f"must be one of {', '.join(METHODS)}", field="method")
        steps = check_int(params.get("steps", 16), "steps", 1, 64)
        return clean_text(inputs, max_chars=settings.max_chars), {"method": method, "steps": steps}

    def preprocess(self, model: Any, inputs: str, params: dict[str, Any]) -> list[Encoded]:
        return [sentiment_item(model.tokenizer, inputs, model.max_length)[0]]

    def forward(self, model: Any, items: Sequence[Encoded], params: dict[str, Any], pack: bool) -> list[Any]:
        out = []
        for item, probs in zip(items, forward.class_probs(model, items, pack), strict=True):
            target = max(range(len(probs)), key=lambda i: probs[i])
            scores = attribute(model.grad_model, model.tokenizer, item.input_ids, target, params["method"], params["steps"])
            out.append((probs, scores))
        return out

    def postprocess(self, model: Any, inputs: str, items: list[Encoded], outputs: list[Any],
                    params: dict[str, Any]) -> Explanation:
        (probs, scores), item = outputs[0], items[0]
        base = sentiment_result(labels_of(model.model.config), probs, item.truncated)
        words = to_words(model.tokenizer, item.input_ids, scores)
        return Explanation(**vars(base), method=params["method"], attributions=words)
