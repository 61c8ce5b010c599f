"""Token attributions for the classifier: why did it say positive or negative?

Integrated gradients (Sundararajan et al. 2017) from a [PAD]-embedding baseline, or the cheaper
gradient x input. Scores are per word piece, then summed into the words of the original text
(tokenizer offsets: casing and accents kept, ``don't`` one word, punctuation its own item);
positive scores push toward the predicted label. These explain the model, not the world: a high
score on a word means the model relies on it, which is itself worth auditing.

Cost is capped: integrated gradients runs ``steps`` forward/backward passes over the whole text,
so a long text gets fewer steps (``STEP_BUDGET`` token-steps per request, at least ``MIN_STEPS``)
and the result says so (``steps`` < ``steps_requested``).
"""

from __future__ import annotations

import re
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
# What a visitor reads for each method: a name and one line on what it does.
METHOD_NAMES = {"integrated_gradients": "Integrated gradients", "gradient_x_input": "Gradient × input"}
METHOD_HELP = {
    "integrated_gradients": "adds up the gradients along a path from a blank text to yours: slower, "
                            "and the scores add up to the change in the prediction.",
    "gradient_x_input": "one gradient at your text times each word: instant, but only a local slope, "
                        "so a word's sign can differ from integrated gradients.",
}
STEP_BUDGET = 1024  # integrated-gradient token-steps per request: 16 steps up to 64 tokens, fewer beyond
MIN_STEPS = 2
_WORD_RE = re.compile(r"\w+(?:['’.\-]\w+)*|[^\w\s]")


def steps_for(method: str, n_tokens: int, steps: int) -> int:
    """Integrated-gradient steps for a text of ``n_tokens`` (capped by ``STEP_BUDGET``); 1 for gradient x input."""
    if method == "gradient_x_input":
        return 1
    return max(MIN_STEPS, min(steps, STEP_BUDGET // max(1, n_tokens)))


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


def to_text_words(tok: Any, text: str, input_ids: list[int], scores: list[float]) -> tuple[list[tuple[str, float]],
                                                                                          list[tuple[int, int]]]:
    """Word-piece scores summed into the words of ``text`` as written, with each word's character span.

    Words are runs of letters/digits (with inner ``'``, ``-`` or ``.``); each punctuation mark is an item
    of its own. Words past a truncation get no item. Needs a fast tokenizer (offsets).
    """
    enc = tok(text, add_special_tokens=True, truncation=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    spans = [(m.start(), m.end()) for m in _WORD_RE.finditer(text)]
    owner = [-1] * (len(text) + 1)
    for k, (a, b) in enumerate(spans):
        for c in range(a, b):
            owner[c] = k
    special = set(tok.all_special_ids)
    totals: dict[int, float] = {}
    for i, (tid, score) in enumerate(zip(input_ids, scores, strict=True)):
        if tid in special or i >= len(offsets):
            continue
        start, end = offsets[i]
        k = owner[start] if end > start else -1
        if k >= 0:
            totals[k] = totals.get(k, 0.0) + float(score)
    kept = sorted(totals)
    return [(text[spans[k][0]:spans[k][1]], totals[k]) for k in kept], [spans[k] for k in kept]


def is_word(w: str) -> bool:
    """A word, not a punctuation mark (punctuation is never listed as an influential word)."""
    return any(ch.isalnum() for ch in w)


@dataclass
class Explanation(SentimentResult):
    """A sentiment result with per-word attributions toward its label (+ pushes toward it)."""

    method: str = METHODS[0]
    attributions: list[tuple[str, float]] | None = None
    text: str = ""  # the text as scored (attributions[i] is text[spans[i][0]:spans[i][1]])
    spans: list[tuple[int, int]] | None = None
    steps: int = 0  # integrated-gradient steps run (1 for gradient x input)
    steps_requested: int = 0

    @property
    def steps_capped(self) -> bool:
        """Fewer integrated-gradient steps than asked, because the text is long."""
        return self.steps < self.steps_requested

    def word_scores(self) -> dict[str, tuple[str, float]]:
        """Each word once (case-insensitive), its scores summed over its occurrences; punctuation left out."""
        agg: dict[str, tuple[str, float]] = {}
        for w, s in self.attributions or []:
            if not is_word(w):
                continue
            key = w.lower()
            first, total = agg.get(key, (w, 0.0))
            agg[key] = (first, total + s)
        return agg

    def top_words(self, n: int = 5) -> list[tuple[str, float]]:
        """The ``n`` words with the largest attributions in size, either sign (each word once, no punctuation)."""
        return sorted(self.word_scores().values(), key=lambda ws: -abs(ws[1]))[:n]


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
            steps = steps_for(params["method"], len(item.input_ids), params["steps"])
            scores = attribute(model.grad_model, model.tokenizer, item.input_ids, target, params["method"], steps)
            out.append((probs, scores, steps))
        return out

    def postprocess(self, model: Any, inputs: str, items: list[Encoded], outputs: list[Any],
                    params: dict[str, Any]) -> Explanation:
        (probs, scores, steps), item = outputs[0], items[0]
        base = sentiment_result(labels_of(model.model.config), probs, item.truncated)
        requested = 1 if params["method"] == "gradient_x_input" else params["steps"]
        tok = model.tokenizer
        if getattr(tok, "is_fast", False):
            words, spans = to_text_words(tok, inputs, item.input_ids, scores)
            return Explanation(**vars(base), method=params["method"], attributions=words, text=inputs, spans=spans,
                               steps=steps, steps_requested=requested)
        return Explanation(**vars(base), method=params["method"], attributions=to_words(tok, item.input_ids, scores),
                           text=inputs, steps=steps, steps_requested=requested)
