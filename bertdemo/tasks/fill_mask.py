"""Fill mask: BERT's masked-language-model objective, one or several [MASK] per sentence.

Each mask is predicted independently from one forward pass (as the transformers pipeline does);
probabilities are a softmax over the whole vocabulary, and with ``targets`` the candidates are
restricted to those words without renormalising. Filled sentences are the visitor's text with the
predicted word put where its ``[MASK]`` was (tokenizer offsets), so casing and spacing stay as
typed; a word that starts a sentence is capitalised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bertdemo.batching import Encoded
from bertdemo.errors import InputError
from bertdemo.models import KIND_PRETRAINING
from bertdemo.tasks import forward
from bertdemo.tasks.base import Result, Task, spec
from bertdemo.textcheck import check_int, clean_text, normalize_masks


@dataclass
class Candidate(Result):
    """One word proposed for one [MASK]: its probability and the sentence it makes."""

    token: str
    token_id: int
    score: float
    sequence: str


@dataclass
class FillMaskResult(Result):
    """Top-k candidates per [MASK] (in mask order) and the sentence filled with each top-1."""

    text: str
    predictions: list[list[Candidate]]
    filled: str

    @property
    def top_tokens(self) -> list[str]:
        return [preds[0].token for preds in self.predictions]


def encode_checked(tok: Any, text: str, max_length: int, field: str = "text", pair: str | None = None) -> Encoded:
    """Tokenize, refusing (not truncating) input longer than the model reads."""
    enc = tok(text, pair, add_special_tokens=True, truncation=False, return_token_type_ids=True)
    n = len(enc["input_ids"])
    if n > max_length:
        raise InputError(
            f"is {n} tokens long; this model reads at most {max_length} tokens. Shorten the text",
            field=field,
        )
    return Encoded(input_ids=list(enc["input_ids"]), token_type_ids=list(enc["token_type_ids"]))


def preprocess(tok: Any, text: str, max_masks: int, max_length: int) -> Encoded:
    item = encode_checked(tok, text, max_length)
    positions = [i for i, t in enumerate(item.input_ids) if t == tok.mask_token_id]
    if not positions:
        raise InputError(f"has no {tok.mask_token}; put {tok.mask_token} where a word should be predicted", field="text")
    if len(positions) > max_masks:
        raise InputError(f"has {len(positions)} {tok.mask_token} tokens; at most {max_masks} are allowed", field="text")
    item.positions = positions
    return item


def target_ids(tok: Any, targets: list[str] | None) -> list[int] | None:
    """Vocabulary ids of target words; each must be one token of the vocabulary."""
    if targets is None:
        return None
    words = [t.strip() for t in targets if isinstance(t, str) and t.strip()]
    if not words:
        raise InputError("is empty; give at least one word, or leave targets out", field="targets")
    ids: list[int] = []
    unknown: list[str] = []
    for word in dict.fromkeys(words):
        pieces = tok.tokenize(word)
        if len(pieces) != 1 or pieces[0] == tok.unk_token:
            unknown.append(word)
        else:
            ids.append(tok.convert_tokens_to_ids(pieces[0]))
    if unknown:
        raise InputError(
            "not single words in the model's vocabulary: " + ", ".join(repr(w[:30]) for w in unknown[:10]),
            field="targets",
        )
    return list(dict.fromkeys(ids))


def _decode(tok: Any, ids: list[int]) -> str:
    """Sentence text without [CLS]/[SEP]/[PAD] but with any remaining [MASK] kept visible."""
    keep = [i for i in ids if i not in {tok.cls_token_id, tok.sep_token_id, tok.pad_token_id}]
    return tok.decode(keep, skip_special_tokens=False, clean_up_tokenization_spaces=True)


_SENTENCE_START = re.compile(r"(^|[.!?]\s+|\n)\s*$")


def mask_spans(tok: Any, text: str, item: Encoded) -> list[tuple[int, int]] | None:
    """Character span of each [MASK] of ``item`` in ``text`` (fast tokenizers), else ``None``."""
    if not getattr(tok, "is_fast", False):
        return None
    enc = tok(text, add_special_tokens=True, truncation=False, return_offsets_mapping=True)
    if list(enc["input_ids"]) != list(item.input_ids):
        return None
    spans = [tuple(enc["offset_mapping"][p]) for p in item.positions]
    return spans if all(b > a for a, b in spans) else None


def splice(text: str, spans: list[tuple[int, int]], words: list[str | None]) -> str:
    """``text`` with the mask at ``spans[i]`` replaced by ``words[i]`` (``None`` keeps that mask)."""
    out, pos = [], 0
    for (a, b), word in zip(spans, words, strict=True):
        before = text[pos:a]
        if word is None:
            out.append(before + text[a:b])
        elif word.startswith("##"):  # a word piece continues the word before it
            out.append(before.rstrip() + word[2:])
        else:
            start = _SENTENCE_START.search("".join(out) + before) is not None
            out.append(before + (word[:1].upper() + word[1:] if start and word.isalpha() else word))
        pos = b
    return "".join(out) + text[pos:]


def postprocess(tok: Any, item: Encoded, log_probs: Any, top_k: int, targets: list[int] | None,
                text: str | None = None, spans: list[tuple[int, int]] | None = None) -> list[list[Candidate]]:
    """Top-k candidates per mask, in mask order: token, token_id, score, sequence.

    ``log_probs``: the forward's output for ``item``, a :class:`~bertdemo.tasks.forward.TopK` (the batch
    already chose the candidates) or full vocabulary rows (needed with ``targets``). With ``text`` (the
    cleaned input) each sequence is ``text`` with the word spliced in at ``spans`` (found here when not
    given); without it, the decoded tokens (lowercased by an uncased tokenizer).
    """
    import torch

    from bertdemo.tasks.forward import TopK

    if text is not None and spans is None:
        spans = mask_spans(tok, text, item)
    if isinstance(log_probs, TopK):
        values, ids = log_probs.log_probs[:, :top_k].exp(), log_probs.ids[:, :top_k]
    elif targets is not None:
        cand = torch.tensor(targets, dtype=torch.long)
        values, idx = log_probs[:, cand].topk(min(top_k, len(targets)), dim=-1)
        values, ids = values.exp(), cand[idx]
    else:
        values, ids = log_probs.topk(min(top_k, log_probs.shape[-1]), dim=-1)
        values = values.exp()
    results: list[list[Candidate]] = []
    for m, (scores, token_ids) in enumerate(zip(values.tolist(), ids.tolist(), strict=True)):
        preds = []
        for score, tid, token in zip(scores, token_ids, tok.convert_ids_to_tokens(token_ids), strict=True):
            if spans is not None:
                sequence = splice(text, spans, [token if i == m else None for i in range(len(spans))])
            else:
                filled = list(item.input_ids)
                filled[item.positions[m]] = tid
                sequence = _decode(tok, filled)
            preds.append(Candidate(token, int(tid), float(score), sequence))
        results.append(preds)
    return results


def best_sentence(tok: Any, item: Encoded, predictions: list[list[Candidate]], text: str | None = None,
                  spans: list[tuple[int, int]] | None = None) -> str:
    """The sentence with every mask replaced by its top-1 candidate (spliced into ``text`` when given)."""
    if text is not None and spans is None:
        spans = mask_spans(tok, text, item)
    if spans is not None:
        return splice(text, spans, [preds[0].token for preds in predictions])
    filled = list(item.input_ids)
    for pos, preds in zip(item.positions, predictions, strict=True):
        filled[pos] = preds[0].token_id
    return _decode(tok, filled)


def clean_masked(model: Any, settings: Any, text: Any, field: str = "text") -> str:
    """Cleaned text with every spelling of the mask ([mask], <mask>) as the model's mask token."""
    return normalize_masks(clean_text(text, field=field, max_chars=settings.max_chars), model.tokenizer.mask_token)


class FillMask(Task[FillMaskResult]):
    """Top-k words for each [MASK] of one sentence (several masks, each predicted independently)."""

    name = "fill_mask"
    model_kind = KIND_PRETRAINING
    input_spec = spec(text="str with 1..max_masks [MASK]", top_k="int 1..max_top_k", targets="list[str] | None")
    output_spec = spec(text="str", predictions="list[list[Candidate]] per mask", filled="str")
    forward_fn = forward.mlm_log_probs
    micro_batch = True

    def sanitize(self, model: Any, settings: Any, inputs: Any, **params: Any) -> tuple[str, dict[str, Any]]:
        text = clean_masked(model, settings, inputs)
        top_k = check_int(params.get("top_k", 5), "top_k", 1, settings.max_top_k)
        return text, {"top_k": top_k, "targets": target_ids(model.tokenizer, params.get("targets")),
                      "max_masks": settings.max_masks}

    def preprocess(self, model: Any, inputs: str, params: dict[str, Any]) -> list[Encoded]:
        item = preprocess(model.tokenizer, inputs, params["max_masks"], model.max_length)
        if params["targets"] is None:
            item.top_k = params["top_k"]  # the batch selects the candidates (targets need the whole row)
        return [item]

    def postprocess(self, model: Any, inputs: str, items: list[Encoded], outputs: list[Any],
                    params: dict[str, Any]) -> FillMaskResult:
        tok, item = model.tokenizer, items[0]
        spans = mask_spans(tok, inputs, item)
        preds = postprocess(tok, item, outputs[0], params["top_k"], params["targets"], inputs, spans)
        return FillMaskResult(inputs, preds, best_sentence(tok, item, preds, inputs, spans))


class MaskDistributions(Task[list[Any]]):
    """The full probability row at the first [MASK] of each text (the audit's template probes)."""

    name = "mask_distributions"
    model_kind = KIND_PRETRAINING
    input_spec = spec(texts="list[str], each with a [MASK]")
    output_spec = spec(rows="list[Tensor(vocab)] of probabilities")
    forward_fn = forward.mlm_log_probs

    def sanitize(self, model: Any, settings: Any, inputs: Any, **params: Any) -> tuple[list[str], dict[str, Any]]:
        return [clean_masked(model, settings, t, field=f"texts[{i}]") for i, t in enumerate(inputs)], {}

    def preprocess(self, model: Any, inputs: list[str], params: dict[str, Any]) -> list[Encoded]:
        return [preprocess(model.tokenizer, t, 1, model.max_length) for t in inputs]

    def postprocess(self, model: Any, inputs: list[str], items: list[Encoded], outputs: list[Any],
                    params: dict[str, Any]) -> list[Any]:
        return [lp[0].exp() for lp in outputs]
