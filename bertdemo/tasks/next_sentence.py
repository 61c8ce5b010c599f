"""Next-sentence prediction: BERT's second pre-training objective, P(B follows A), and ranking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bertdemo.batching import Encoded
from bertdemo.models import KIND_PRETRAINING
from bertdemo.tasks import forward
from bertdemo.tasks.base import Result, Task, spec
from bertdemo.tasks.fill_mask import encode_checked
from bertdemo.textcheck import check_text_list, clean_text


@dataclass
class NextSentenceResult(Result):
    """P(second follows first) from the NSP head."""

    is_next: float

    @property
    def follows(self) -> bool:
        return self.is_next >= 0.5


@dataclass
class RankedCandidate(Result):
    """One candidate B with its rank (1 = most likely next) and its index in the given order."""

    rank: int
    candidate: str
    is_next: float
    index: int


def preprocess(tok: Any, first: str, second: str, max_length: int) -> Encoded:
    """Encode the pair as ``[CLS] A [SEP] B [SEP]`` with segment ids; refuse pairs too long."""
    return encode_checked(tok, first, max_length, field="sentence pair", pair=second)


def rank(candidates: list[str], probs: list[float]) -> list[RankedCandidate]:
    """Candidates ordered by probability (ties keep the given order), with their rank."""
    order = sorted(range(len(candidates)), key=lambda i: -probs[i])
    return [RankedCandidate(r + 1, candidates[i], probs[i], i) for r, i in enumerate(order)]


class NextSentence(Task[NextSentenceResult]):
    """P(B follows A) for one pair; inputs are ``(first, second)``."""

    name = "next_sentence"
    model_kind = KIND_PRETRAINING
    input_spec = spec(first="str", second="str")
    output_spec = spec(is_next="float 0..1")
    forward_fn = forward.nsp_probs
    micro_batch = True
    needs_nsp = True

    def sanitize(self, model: Any, settings: Any, inputs: Any, **params: Any) -> tuple[tuple[str, str], dict[str, Any]]:
        first, second = inputs
        return (clean_text(first, "first", settings.max_chars), clean_text(second, "second", settings.max_chars)), {}

    def preprocess(self, model: Any, inputs: tuple[str, str], params: dict[str, Any]) -> list[Encoded]:
        return [preprocess(model.tokenizer, inputs[0], inputs[1], model.max_length)]

    def postprocess(self, model: Any, inputs: Any, items: list[Encoded], outputs: list[Any],
                    params: dict[str, Any]) -> NextSentenceResult:
        return NextSentenceResult(float(outputs[0]))

    def log_text(self, inputs: tuple[str, str]) -> str:
        return inputs[0] + " || " + inputs[1]


class RankNext(Task[list[RankedCandidate]]):
    """Candidate next sentences ordered by P(candidate follows first); inputs are ``(first, candidates)``."""

    name = "rank_next"
    needs_nsp = True
    forward_fn = forward.nsp_probs
    model_kind = KIND_PRETRAINING
    output_spec = spec(ranking="list[RankedCandidate], most likely first")
    input_spec = spec(first="str", candidates="list[str], 1..max_candidates")

    def sanitize(self, model: Any, settings: Any, inputs: Any, **params: Any) -> tuple[Any, dict[str, Any]]:
        first, candidates = inputs
        a = clean_text(first, "first", settings.max_chars)
        return (a, check_text_list(candidates, "candidates", settings.max_candidates, settings.max_chars)), {}

    def preprocess(self, model: Any, inputs: tuple[str, list[str]], params: dict[str, Any]) -> list[Encoded]:
        return [preprocess(model.tokenizer, inputs[0], c, model.max_length) for c in inputs[1]]

    def postprocess(self, model: Any, inputs: Any, items: list[Encoded], outputs: list[Any],
                    params: dict[str, Any]) -> list[RankedCandidate]:
        return rank(inputs[1], outputs)

    def log_text(self, inputs: tuple[str, list[str]]) -> str:
        return inputs[0]
