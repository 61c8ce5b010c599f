"""Held-out measurements for the build: NSP, fill-mask, pseudo-perplexity, sentiment.

All sets are built deterministically (fixed seeds) from documents that training never saw.
"""

from __future__ import annotations

import math
import random

import torch

from modelbuild.pretrain import Corpus, continuation_table, encode_pair, make_pair, whole_word_mask

SAME_SOURCE = (("same_source", 1.0),)
ANY_DOCUMENT = (("any", 1.0),)


def nsp_pairs(corpus: Corpus, n: int = 1000, max_len: int = 128, seed: int = 1234, negatives=SAME_SOURCE,
              short: bool = False):
    """Balanced held-out NSP pairs; negatives from another document of the same source by default
    (same style, other topic), or from ``ANY_DOCUMENT`` (often another source: easier, it rewards
    style detection)."""
    rng = random.Random(seed)
    return [make_pair(corpus, rng, max_len, short=short, negatives=negatives) for _ in range(n)]


@torch.inference_mode()
def nsp_accuracy(model, tok, pairs, batch: int = 64) -> float:
    """Accuracy of the NSP head on (A, B, is_random) pairs (half consecutive, half random)."""
    if getattr(model.cls, "seq_relationship", None) is None:
        return float("nan")
    correct = 0
    for i in range(0, len(pairs), batch):
        chunk = pairs[i:i + batch]
        enc = [encode_pair(a, b, tok) for a, b, _ in chunk]
        width = max(len(e[0]) for e in enc)
        x = torch.zeros((len(enc), width), dtype=torch.long)
        tt = torch.zeros_like(x)
        m = torch.zeros_like(x)
        for r, (ids, types) in enumerate(enc):
            x[r, :len(ids)] = torch.tensor(ids)
            tt[r, :len(ids)] = torch.tensor(types)
            m[r, :len(ids)] = 1
        pooled = model.bert(input_ids=x, token_type_ids=tt, attention_mask=m)[1]
        pred = model.cls.seq_relationship(pooled).argmax(-1)  # 0 = IsNext, 1 = random
        correct += sum(int(p == lab) for p, lab in zip(pred.tolist(), [c[2] for c in chunk]))
    return correct / len(pairs)


def fill_mask_set(corpus: Corpus, tok, n: int = 800, seed: int = 4321, min_tokens: int = 6,
                  max_tokens: int = 60):
    """Held-out sentences with 15 % of whole words masked: list of (ids, [word positions])."""
    rng = random.Random(seed)
    is_cont = continuation_table(tok)
    special = {tok.cls_token_id, tok.sep_token_id}
    sents = [s for d in corpus.docs for s in d if min_tokens <= len(s) <= max_tokens]
    rng.shuffle(sents)
    out = []
    for s in sents[:n]:
        ids = [tok.cls_token_id, *s, tok.sep_token_id]
        out.append((ids, whole_word_mask(ids, is_cont, rng, special)))
    return out


@torch.inference_mode()
def fill_mask_accuracy(model, tok, items, batch: int = 64) -> dict:
    """Top-1/top-5 of the original word. A multi-token word counts as right at top-k only if
    every one of its tokens is in the top-k at its position."""
    top1 = top5 = total = 0
    for i in range(0, len(items), batch):
        chunk = items[i:i + batch]
        width = max(len(ids) for ids, _ in chunk)
        x = torch.zeros((len(chunk), width), dtype=torch.long)
        m = torch.zeros_like(x)
        for r, (ids, groups) in enumerate(chunk):
            masked = list(ids)
            for g in groups:
                for p in g:
                    masked[p] = tok.mask_token_id
            x[r, :len(ids)] = torch.tensor(masked)
            m[r, :len(ids)] = 1
        seq = model.bert(input_ids=x, attention_mask=m)[0]
        for r, (ids, groups) in enumerate(chunk):
            pos = [p for g in groups for p in g]
            if not pos:
                continue
            logits = model.cls.predictions(seq[r, pos])
            top = logits.topk(5, dim=-1).indices.tolist()
            hit = {p: (top[k][0] == ids[p], ids[p] in top[k]) for k, p in enumerate(pos)}
            for g in groups:
                total += 1
                top1 += all(hit[p][0] for p in g)
                top5 += all(hit[p][1] for p in g)
    return {"top1": top1 / total if total else 0.0, "top5": top5 / total if total else 0.0,
            "masked_words": total}


@torch.inference_mode()
def pseudo_perplexity(model, tok, corpus: Corpus, n: int = 150, seed: int = 99, max_tokens: int = 40) -> float:
    """exp(mean NLL) masking one token at a time (Salazar et al. 2020), on held-out sentences."""
    rng = random.Random(seed)
    sents = [s for d in corpus.docs for s in d if 5 <= len(s) <= max_tokens]
    rng.shuffle(sents)
    nll, count = 0.0, 0
    for s in sents[:n]:
        ids = torch.tensor([tok.cls_token_id, *s, tok.sep_token_id])
        L = len(s)
        x = ids.repeat(L, 1)
        pos = torch.arange(1, L + 1)
        x[torch.arange(L), pos] = tok.mask_token_id
        seq = model.bert(input_ids=x)[0]
        logits = model.cls.predictions(seq[torch.arange(L), pos])
        nll -= torch.log_softmax(logits, -1)[torch.arange(L), ids[pos]].sum().item()
        count += L
    return math.exp(nll / count) if count else float("nan")


def evaluate_pretraining(model, tok, held: Corpus, small: bool = False) -> dict:
    model.eval()
    n = 200 if small else 1000
    pairs = nsp_pairs(held, n=n)
    fm = fill_mask_set(held, tok, n=150 if small else 800)
    res = {"nsp_accuracy": nsp_accuracy(model, tok, pairs), "nsp_pairs": len(pairs),
           "nsp_accuracy_short_pairs": nsp_accuracy(model, tok, nsp_pairs(held, n=n, short=True)),
           "nsp_accuracy_any_document": nsp_accuracy(model, tok, nsp_pairs(held, n=n, negatives=ANY_DOCUMENT))}
    res.update({f"fill_mask_{k}" if k != "masked_words" else k: v
                for k, v in fill_mask_accuracy(model, tok, fm).items()})
    res["pseudo_perplexity"] = pseudo_perplexity(model, tok, held, n=30 if small else 100)
    return res


@torch.inference_mode()
def classify_accuracy(model_dir: str, rows: list[tuple[str, str]], batch: int = 64) -> dict:
    """Accuracy/macro-F1 of a saved classifier folder on (text, label-name) rows."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    from bertdemo.finetune import classification_metrics

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = BertForSequenceClassification.from_pretrained(model_dir, use_safetensors=True,
                                                          dtype=torch.float32).eval()
    label2id = {v: int(k) for k, v in model.config.id2label.items()}
    preds = []
    for i in range(0, len(rows), batch):
        enc = tok([t for t, _ in rows[i:i + batch]], truncation=True, max_length=128,
                  padding=True, return_tensors="pt")
        preds += model(**enc).logits.argmax(-1).tolist()
    golds = [label2id[lab] for _, lab in rows]
    res = classification_metrics(preds, golds, len(label2id))
    res["examples"] = len(rows)
    return res
