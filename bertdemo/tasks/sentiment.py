"""Sentiment classification: label and class probabilities for each text, batched.

Policy for long text: truncated to the model's limit with ``truncated: true`` in the result, so a
batch of reviews is never refused because one of them is long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bertdemo.batching import Encoded
from bertdemo.models import KIND_CLASSIFIER
from bertdemo.tasks import forward
from bertdemo.tasks.base import Result, Task, spec
from bertdemo.textcheck import check_text_list


@dataclass
class SentimentResult(Result):
    """The predicted label, its probability, every class's probability, and whether text was cut."""

    label: str
    score: float
    scores: dict[str, float]
    truncated: bool


def preprocess(tok: Any, text: str, max_length: int) -> tuple[Encoded, bool]:
    enc = tok(text, add_special_tokens=True, truncation=False)
    ids = list(enc["input_ids"])
    truncated = len(ids) > max_length
    if truncated:
        ids = ids[: max_length - 1] + [tok.sep_token_id]
    return Encoded(input_ids=ids, truncated=truncated), truncated


def labels_of(config: Any) -> list[str]:
    n = int(config.num_labels)
    id2label = {int(k): str(v) for k, v in (config.id2label or {}).items()}
    return [id2label.get(i, f"LABEL_{i}") for i in range(n)]


def postprocess(labels: list[str], probs: list[float], truncated: bool) -> SentimentResult:
    best = max(range(len(probs)), key=lambda i: probs[i])
    return SentimentResult(labels[best], float(probs[best]),
                           {label: float(p) for label, p in zip(labels, probs, strict=True)}, truncated)


class Sentiment(Task[list[SentimentResult]]):
    """One :class:`SentimentResult` per text, in the given order."""

    input_spec = spec(texts="list[str], 1..max_batch_texts (long texts are truncated)")
    output_spec = spec(results="list[SentimentResult]")
    name = "sentiment"
    model_kind = KIND_CLASSIFIER
    forward_fn = forward.class_probs
    micro_batch = True

    def sanitize(self, model: Any, settings: Any, inputs: Any, **params: Any) -> tuple[list[str], dict[str, Any]]:
        return check_text_list(inputs, "texts", settings.max_batch_texts, settings.max_chars), {}

    def preprocess(self, model: Any, inputs: list[str], params: dict[str, Any]) -> list[Encoded]:
        return [preprocess(model.tokenizer, t, model.max_length)[0] for t in inputs]

    def postprocess(self, model: Any, inputs: list[str], items: list[Encoded], outputs: list[Any],
                    params: dict[str, Any]) -> list[SentimentResult]:
        labels = labels_of(model.model.config)
        return [postprocess(labels, p, it.truncated) for p, it in zip(outputs, items, strict=True)]
