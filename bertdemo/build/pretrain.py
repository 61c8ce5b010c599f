"""Continued masked-LM + next-sentence pre-training of a ``BertForPreTraining``.

Examples are built on the fly from tokenised documents: segment A is one or more consecutive
sentences, segment B is the sentence(s) that follow (50 %) or a span from another document (50 %).
Masking is whole-word: 15 % of the words, of whose tokens 80 % become [MASK], 10 % a random token,
10 % stay. The MLM loss is computed on the masked positions only (the 30k-way output layer is the
most expensive part on a CPU). The learning-rate schedule is fixed by a step count, so a run with
the same seed and steps is reproducible.
"""

from __future__ import annotations

import math
import random
import time

import torch


class Corpus:
    """Documents as lists of token-id lists (one per sentence)."""

    def __init__(self, docs: list[dict], tokenizer, max_sentence_tokens: int = 60) -> None:
        sents = [s for d in docs for s in d["sentences"]]
        ids = tokenizer(sents, add_special_tokens=False)["input_ids"] if sents else []
        self.docs: list[list[list[int]]] = []
        k = 0
        for d in docs:
            n = len(d["sentences"])
            doc = [x[:max_sentence_tokens] for x in ids[k:k + n] if x]
            k += n
            if len(doc) >= 2:
                self.docs.append(doc)
        self.weights = [len(d) for d in self.docs]
        self.cum = []
        c = 0
        for w in self.weights:
            c += w
            self.cum.append(c)

    def pick_doc(self, rng: random.Random) -> int:
        import bisect
        return bisect.bisect_right(self.cum, rng.randrange(self.cum[-1]))


def make_pair(corpus: Corpus, rng: random.Random, max_len: int) -> tuple[list[int], list[int], int]:
    """Return (A, B, is_random) with len(A)+len(B) <= max_len - 3."""
    budget = max_len - 3
    target_a = rng.randint(max(8, budget // 4), max(9, budget // 2))
    di = corpus.pick_doc(rng)
    doc = corpus.docs[di]
    i = rng.randrange(len(doc) - 1)
    a = list(doc[i])
    j = i + 1
    while j < len(doc) - 1 and len(a) + len(doc[j]) <= target_a:
        a += doc[j]
        j += 1
    is_random = rng.random() < 0.5
    if is_random and len(corpus.docs) > 1:
        dj = di
        while dj == di:
            dj = corpus.pick_doc(rng)
        other = corpus.docs[dj]
        k = rng.randrange(len(other))
        src, start = other, k
    else:
        is_random = False
        src, start = doc, j
    b: list[int] = []
    k = start
    while k < len(src) and len(a) + len(b) < budget:
        b += src[k]
        k += 1
    while len(a) + len(b) > budget:  # trim the longer one from the end
        if len(a) > len(b):
            a.pop()
        else:
            b.pop()
    return a, b, int(is_random)


def encode_pair(a, b, tok) -> tuple[list[int], list[int]]:
    ids = [tok.cls_token_id, *a, tok.sep_token_id, *b, tok.sep_token_id]
    types = [0] * (len(a) + 2) + [1] * (len(b) + 1)
    return ids, types


def whole_word_mask(ids: list[int], is_cont: list[bool], rng: random.Random, special: set[int],
                    ratio: float = 0.15) -> list[list[int]]:
    """Group positions into words and pick ``ratio`` of them (at least one); returns the groups."""
    words: list[list[int]] = []
    for p, t in enumerate(ids):
        if t in special:
            continue
        if is_cont[t] and words and words[-1][-1] == p - 1:
            words[-1].append(p)
        else:
            words.append([p])
    if not words:
        return []
    n = max(1, round(len(words) * ratio))
    return rng.sample(words, min(n, len(words)))


def continuation_table(tokenizer) -> list[bool]:
    vocab = tokenizer.get_vocab()
    table = [False] * (max(vocab.values()) + 1)
    for tok, i in vocab.items():
        table[i] = tok.startswith("##")
    return table


def make_batch(corpus: Corpus, tok, rng: random.Random, batch_size: int, max_len: int, is_cont, special):
    rows, types, nsp, labels = [], [], [], []
    vocab_size = len(is_cont)
    for _ in range(batch_size):
        a, b, r = make_pair(corpus, rng, max_len)
        ids, tt = encode_pair(a, b, tok)
        lab = [-100] * len(ids)
        for group in whole_word_mask(ids, is_cont, rng, special):
            for p in group:
                lab[p] = ids[p]
                u = rng.random()
                if u < 0.8:
                    ids[p] = tok.mask_token_id
                elif u < 0.9:
                    ids[p] = rng.randrange(1000, vocab_size)  # skip [unused]/special ids
        rows.append(ids)
        types.append(tt)
        nsp.append(r)
        labels.append(lab)
    width = max(len(x) for x in rows)
    x = torch.zeros((batch_size, width), dtype=torch.long)
    tt = torch.zeros_like(x)
    m = torch.zeros_like(x)
    y = torch.full_like(x, -100)
    for i in range(batch_size):
        n = len(rows[i])
        x[i, :n] = torch.tensor(rows[i])
        tt[i, :n] = torch.tensor(types[i])
        m[i, :n] = 1
        y[i, :n] = torch.tensor(labels[i])
    return x, tt, m, y, torch.tensor(nsp)


def pretraining_loss(model, x, tt, m, y, nsp):
    """MLM loss on masked positions only + NSP loss."""
    out = model.bert(input_ids=x, token_type_ids=tt, attention_mask=m)
    seq, pooled = out[0], out[1]
    sel = y != -100
    logits = model.cls.predictions(seq[sel])
    mlm = torch.nn.functional.cross_entropy(logits, y[sel])
    nsp_loss = torch.nn.functional.cross_entropy(model.cls.seq_relationship(pooled), nsp)
    return mlm, nsp_loss


def pretrain(model, tokenizer, corpus: Corpus, *, steps: int | None = None, budget_s: float = 600.0,
             lr: float = 5e-4, batch_size: int = 64, max_len: int = 128, seed: int = 42,
             log=print, log_every: int = 50) -> dict:
    """Train in place. ``steps`` fixes the schedule (reproducible); without it, the step count is
    estimated from the speed of the first 20 steps so the run fits ``budget_s``."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    is_cont = continuation_table(tokenizer)
    special = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id}
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if n.endswith("bias") or "LayerNorm" in n else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    model.train()
    total = steps
    calib = 20
    t0 = time.time()
    hist = []
    mlm_acc = nsp_acc = 0.0
    step = 0
    while True:
        if total is None and step > 0 and (step == calib or time.time() - t0 > 0.3 * budget_s):
            per = (time.time() - t0) / step
            total = max(step + 1, int(budget_s / per))
            log(f"  {per:.3f} s/step -> {total} steps for a {budget_s / 60:.1f} min budget")
        if total is not None and step >= total:
            break
        # Before the step count is known (timed runs calibrate at step ``calib``) the schedule is a
        # 20-step warm-up with no decay; a run with fixed ``steps`` follows the same rule, so it
        # reproduces a timed run that recorded the same step count.
        real = total is not None and (steps is None or step >= calib)
        horizon = total if real else 10 ** 9
        warm = max(1, int(0.05 * total)) if real else calib
        cur = lr * min((step + 1) / warm, max(0.0, (horizon - step) / max(1, horizon - warm)))
        for g in opt.param_groups:
            g["lr"] = cur
        x, tt, m, y, nsp = make_batch(corpus, tokenizer, rng, batch_size, max_len, is_cont, special)
        mlm, nspl = pretraining_loss(model, x, tt, m, y, nsp)
        loss = mlm + nspl
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        mlm_acc = 0.98 * mlm_acc + 0.02 * mlm.item() if step > 1 else mlm.item()
        nsp_acc = 0.98 * nsp_acc + 0.02 * nspl.item() if step > 1 else nspl.item()
        if step % log_every == 0 or step == total:
            el = time.time() - t0
            log(f"  step {step}/{total} mlm {mlm_acc:.3f} (ppl {math.exp(min(mlm_acc, 20)):.1f}) "
                f"nsp {nsp_acc:.3f} lr {cur:.2e} {el / 60:.1f} min")
            hist.append({"step": step, "mlm_loss": round(mlm_acc, 4), "nsp_loss": round(nsp_acc, 4),
                         "minutes": round(el / 60, 2)})
    model.eval()
    return {"steps": step, "seconds": round(time.time() - t0, 1), "lr": lr, "batch_size": batch_size,
            "max_len": max_len, "seed": seed, "final_mlm_loss": round(mlm_acc, 4),
            "final_nsp_loss": round(nsp_acc, 4), "history": hist}
