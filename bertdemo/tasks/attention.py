"""Self-attention weights: for a sentence (or a pair), A = softmax(Q K^T / sqrt(d_k)) of every layer and head.

The weights come from the already-loaded masked LM (``output_attentions=True``; see
:func:`bertdemo.tasks.forward.enable_attention_weights` for how that works without a second load).
Input is capped at ``settings.attention_max_tokens`` tokens (default 64): the matrices grow with the
square of the length (bert-base: 12 layers x 12 heads x n x n numbers), and the views must stay
readable and quick. Longer text is refused with its token count, as fill-mask refuses text too long
for the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bertdemo.batching import Encoded
from bertdemo.errors import InputError
from bertdemo.models import KIND_PRETRAINING
from bertdemo.tasks import forward
from bertdemo.tasks.base import Result, Task, spec
from bertdemo.tasks.fill_mask import encode_checked
from bertdemo.textcheck import clean_text, normalize_masks


@dataclass
class AttentionResult(Result):
    """Attention of every layer and head: ``attentions[layer, head, i, j]`` is how much token i attends to token j.

    ``attentions`` is a float32 numpy array of shape (layers, heads, n, n) (bert-base at 64 tokens:
    2.4 MB, where nested Python lists would take ten times that); :meth:`to_dict` gives it as nested
    lists for JSON. Each row ``attentions[l, h, i]`` sums to 1 (a softmax over the tokens).
    ``segments[i]`` is 0 for ``[CLS]``, the first sentence and its ``[SEP]``, 1 for the second sentence.
    """

    text: str
    pair: str | None
    tokens: list[str]
    segments: list[int]
    layers: int
    heads: int
    attentions: Any = field(repr=False)

    def array(self) -> Any:
        """The weights as a float32 numpy array of shape (layers, heads, n, n)."""
        return self.attentions

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "pair": self.pair, "tokens": list(self.tokens), "segments": list(self.segments),
                "layers": self.layers, "heads": self.heads, "attentions": self.attentions.tolist()}


class Attention(Task[AttentionResult]):
    """Attention weights for one text, or one sentence pair; inputs are ``text`` or ``(text, pair)``."""

    name = "attention"
    model_kind = KIND_PRETRAINING
    input_spec = spec(text="str", pair="str or None (a second sentence: [CLS] A [SEP] B [SEP])")
    output_spec = spec(tokens="list[str], n <= attention_max_tokens", segments="list[int] 0/1",
                       attentions="layers x heads x n x n floats (numpy; lists in to_dict), each row sums to 1")
    forward_fn = forward.attention_weights

    def sanitize(self, model: Any, settings: Any, inputs: Any, **params: Any) -> tuple[tuple[str, str | None], dict[str, Any]]:
        text, pair = inputs if isinstance(inputs, tuple) else (inputs, None)
        mask = model.tokenizer.mask_token
        text = normalize_masks(clean_text(text, "text", settings.max_chars), mask)
        if pair is not None and not (isinstance(pair, str) and not pair.strip()):
            pair = normalize_masks(clean_text(pair, "pair", settings.max_chars), mask)
        else:
            pair = None
        return (text, pair), {"max_tokens": min(int(settings.attention_max_tokens), model.max_length)}

    def preprocess(self, model: Any, inputs: tuple[str, str | None], params: dict[str, Any]) -> list[Encoded]:
        text, pair = inputs
        field_name = "text" if pair is None else "sentence pair"
        item = encode_checked(model.tokenizer, text, model.max_length, field=field_name, pair=pair)
        limit = params["max_tokens"]
        if len(item) > limit:
            raise InputError(f"is {len(item)} tokens long (with [CLS] and [SEP]); the attention view reads at most "
                             f"{limit} tokens, so that every layer and head stays readable. Shorten the text",
                             field=field_name)
        return [item]

    def forward(self, model: Any, items: Any, params: dict[str, Any], pack: bool) -> list[Any]:
        return forward.attention_weights(model, items, pack=False)

    def postprocess(self, model: Any, inputs: tuple[str, str | None], items: list[Encoded], outputs: list[Any],
                    params: dict[str, Any]) -> AttentionResult:
        weights = outputs[0]
        item = items[0]
        tokens = model.tokenizer.convert_ids_to_tokens(item.input_ids)
        segments = list(item.token_type_ids or [0] * len(item))
        layers, heads = int(weights.shape[0]), int(weights.shape[1])
        return AttentionResult(inputs[0], inputs[1], list(tokens), segments, layers, heads, weights)

    def log_text(self, inputs: tuple[str, str | None]) -> str:
        return inputs[0] if inputs[1] is None else inputs[0] + " || " + inputs[1]
