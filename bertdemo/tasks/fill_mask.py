"""Fill mask: BERT's masked-language-model objective, one or several [MASK] per sentence.

Each mask is predicted independently from one forward pass (as the transformers pipeline does);
probabilities are a softmax over the whole vocabulary, and with ``targets`` the candidates are
restricted to those words without renormalising.
"""

from __future__ import annotations

from typing import Any

from bertdemo.batching import Encoded
from bertdemo.errors import InputError


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


def postprocess(tok: Any, item: Encoded, log_probs: Any, top_k: int, targets: list[int] | None) -> list[list[dict[str, Any]]]:
    """Top-k candidates per mask, in mask order: token, token_id, score, sequence."""
    import torch

    probs = log_probs.exp()
    results: list[list[dict[str, Any]]] = []
    for m, pos in enumerate(item.positions):
        row = probs[m]
        if targets is not None:
            cand = torch.tensor(targets, dtype=torch.long)
            k = min(top_k, len(targets))
            values, idx = row[cand].topk(k)
            token_ids = cand[idx].tolist()
        else:
            values, token_ids_t = row.topk(min(top_k, row.shape[0]))
            token_ids = token_ids_t.tolist()
        preds = []
        for score, tid in zip(values.tolist(), token_ids, strict=True):
            filled = list(item.input_ids)
            filled[pos] = tid
            preds.append({
                "token": tok.convert_ids_to_tokens(tid),
                "token_id": int(tid),
                "score": float(score),
                "sequence": _decode(tok, filled),
            })
        results.append(preds)
    return results


def best_sentence(tok: Any, item: Encoded, predictions: list[list[dict[str, Any]]]) -> str:
    """The sentence with every mask replaced by its top-1 candidate."""
    filled = list(item.input_ids)
    for pos, preds in zip(item.positions, predictions, strict=True):
        filled[pos] = preds[0]["token_id"]
    return _decode(tok, filled)
