"""Continued masked-LM + next-sentence pre-training of a ``BertForPreTraining``.

Examples are built on the fly from tokenised documents. Each step draws one batch kind:

- **short** (what visitors type): one sentence + the next sentence, or one sentence alone (MLM
  only; also short standalone snippets such as reviews and tweets), up to ``short_len`` tokens;
- **long**: several consecutive sentences + what follows, up to ``max_len`` tokens.

Next-sentence negatives come mostly from **another document of the same source** (same style,
other topic), some from far away in the same document and some from anywhere, so the head must
judge coherence rather than style. Sources are sampled with temperature (share proportional to
size ** ``source_temperature``) so that no corpus dominates. Masking is whole-word: 15 % of the
words, of whose tokens 80 % become [MASK], 10 % a random token, 10 % stay. The MLM loss is computed
on the masked positions only (the 30k-way output layer is the most expensive part on a CPU).
Newly initialised parameters (a missing NSP or MLM head) learn ``head_lr_mult`` times faster.
The schedule is fixed by the step count, so a run with the same seed and steps is reproducible.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import random
import time
from dataclasses import dataclass

import torch

# where a next-sentence negative comes from: (kind, probability)
NEGATIVE_MIX = (("same_source", 0.70), ("same_doc_far", 0.15), ("any", 0.15))
FAR = 10  # sentences apart, for a "far in the same document" negative


class Corpus:
    """Documents as lists of token-id lists (one per sentence), grouped by source."""

    def __init__(self, docs: list[dict], tokenizer, max_sentence_tokens: int = 60,
                 source_temperature: float = 0.5, snippets: list[str] | None = None) -> None:
        sents = [s for d in docs for s in d["sentences"]]
        ids = tokenizer(sents, add_special_tokens=False)["input_ids"] if sents else []
        self.docs: list[list[list[int]]] = []
        self.sources: list[str] = []
        k = 0
        for d in docs:
            n = len(d["sentences"])
            doc = [x[:max_sentence_tokens] for x in ids[k:k + n] if x]
            k += n
            if len(doc) >= 2:
                self.docs.append(doc)
                self.sources.append(d["source"])
        self.by_source: dict[str, list[int]] = {}
        for i, s in enumerate(self.sources):
            self.by_source.setdefault(s, []).append(i)
        self.source_names = sorted(self.by_source)
        size = {s: sum(len(self.docs[i]) for i in self.by_source[s]) for s in self.source_names}
        w = [size[s] ** source_temperature for s in self.source_names]
        self.source_share = {s: x / sum(w) for s, x in zip(self.source_names, w)}
        self._src_cum = list(_cumsum(w))
        self._doc_cum = {s: list(_cumsum(len(self.docs[i]) for i in self.by_source[s])) for s in self.source_names}
        self._all_cum = list(_cumsum(len(d) for d in self.docs))
        snip = tokenizer(snippets, add_special_tokens=False)["input_ids"] if snippets else []
        self.snippets: list[list[int]] = [x[:max_sentence_tokens] for x in snip if len(x) >= 4]

    def pick_source(self, rng: random.Random) -> str:
        return self.source_names[bisect.bisect_right(self._src_cum, rng.random() * self._src_cum[-1])]

    def pick_doc(self, rng: random.Random, source: str | None = None) -> int:
        """A document index, by sentence count within ``source`` (or anywhere)."""
        if source is None:
            return bisect.bisect_right(self._all_cum, rng.randrange(self._all_cum[-1]))
        cum = self._doc_cum[source]
        return self.by_source[source][bisect.bisect_right(cum, rng.randrange(cum[-1]))]


def _cumsum(xs):
    c = 0
    for x in xs:
        c += x
        yield c


def _negative_start(corpus: Corpus, rng: random.Random, di: int, j: int, kind: str) -> tuple[list, int]:
    """Where a not-next segment B starts, for a segment A of document ``di`` ending before ``j``."""
    doc = corpus.docs[di]
    if kind == "same_doc_far":
        far = [k for k in (j + FAR + rng.randrange(len(doc)), j - FAR - 1 - rng.randrange(len(doc)))
               if 0 <= k < len(doc) and abs(k - j) >= FAR]
        if far:
            return doc, far[0]
        kind = "same_source"
    src = corpus.sources[di]
    pool = corpus.by_source[src] if kind == "same_source" and len(corpus.by_source[src]) > 1 else None
    dj = di
    while dj == di:
        dj = corpus.pick_doc(rng, src) if pool else corpus.pick_doc(rng)
    other = corpus.docs[dj]
    return other, rng.randrange(len(other))


def make_pair(corpus: Corpus, rng: random.Random, max_len: int, short: bool = False,
              negatives: tuple = NEGATIVE_MIX, source: str | None = None) -> tuple[list[int], list[int], int]:
    """Return (A, B, is_random) with len(A)+len(B) <= max_len - 3.

    ``short``: A and B are one sentence each. ``negatives`` is the mix of negative kinds.
    """
    budget = max_len - 3
    di = corpus.pick_doc(rng, source if source is not None else corpus.pick_source(rng))
    doc = corpus.docs[di]
    i = rng.randrange(len(doc) - 1)
    a = list(doc[i])
    j = i + 1
    if not short:
        target_a = rng.randint(max(8, budget // 4), max(9, budget // 2))
        while j < len(doc) - 1 and len(a) + len(doc[j]) <= target_a:
            a += doc[j]
            j += 1
    is_random = rng.random() < 0.5 and len(corpus.docs) > 1
    if is_random:
        u, kind = rng.random(), negatives[-1][0]
        for name, p in negatives:
            if u < p:
                kind = name
                break
            u -= p
        src, start = _negative_start(corpus, rng, di, j, kind)
    else:
        src, start = doc, j
    b: list[int] = []
    k = start
    while k < len(src) and len(a) + len(b) < budget and (not short or not b):
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


@dataclass(frozen=True)
class BatchPlan:
    """Sizes and mixture of the two batch kinds (see the module docstring)."""

    long_batch: int = 32
    max_len: int = 128
    short_batch: int = 64
    short_len: int = 64
    short_fraction: float = 0.5    # of steps
    single_fraction: float = 0.3   # of rows in a short batch: one segment, MLM only
    snippet_fraction: float = 0.5  # of those single rows: a standalone snippet when there are any


def _single(corpus: Corpus, rng: random.Random, plan: BatchPlan) -> list[int]:
    if corpus.snippets and rng.random() < plan.snippet_fraction:
        return list(corpus.snippets[rng.randrange(len(corpus.snippets))])
    doc = corpus.docs[corpus.pick_doc(rng, corpus.pick_source(rng))]
    i = rng.randrange(len(doc))
    a = list(doc[i])
    while i + 1 < len(doc) and len(a) + len(doc[i + 1]) <= plan.short_len - 2 and rng.random() < 0.3:
        i += 1
        a += doc[i]
    return a[: plan.short_len - 2]


def make_batch(corpus: Corpus, tok, rng: random.Random, plan: BatchPlan, is_cont, special):
    """One batch: (input ids, token types, attention mask, MLM labels, NSP labels; -100 = no NSP)."""
    short = rng.random() < plan.short_fraction
    n, max_len = (plan.short_batch, plan.short_len) if short else (plan.long_batch, plan.max_len)
    rows, types, nsp, labels = [], [], [], []
    vocab_size = len(is_cont)
    for _ in range(n):
        if short and rng.random() < plan.single_fraction:
            a = _single(corpus, rng, plan)
            ids, tt, r = [tok.cls_token_id, *a, tok.sep_token_id], [0] * (len(a) + 2), -100
        else:
            a, b, r = make_pair(corpus, rng, max_len, short=short)
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
    x = torch.zeros((n, width), dtype=torch.long)
    tt = torch.zeros_like(x)
    m = torch.zeros_like(x)
    y = torch.full_like(x, -100)
    for i in range(n):
        k = len(rows[i])
        x[i, :k] = torch.tensor(rows[i])
        tt[i, :k] = torch.tensor(types[i])
        m[i, :k] = 1
        y[i, :k] = torch.tensor(labels[i])
    return x, tt, m, y, torch.tensor(nsp)


def pretraining_loss(model, x, tt, m, y, nsp):
    """MLM loss on masked positions only + NSP loss on the rows that have a pair."""
    out = model.bert(input_ids=x, token_type_ids=tt, attention_mask=m)
    seq, pooled = out[0], out[1]
    sel = y != -100
    logits = model.cls.predictions(seq[sel])
    mlm = torch.nn.functional.cross_entropy(logits.float(), y[sel])
    has = nsp != -100
    if bool(has.any()):
        nsp_loss = torch.nn.functional.cross_entropy(model.cls.seq_relationship(pooled[has]).float(), nsp[has])
    else:
        nsp_loss = mlm.new_zeros(())
    return mlm, nsp_loss


def precision_context(precision: str):
    """bf16 autocast on CPU (fp32 master weights and fp32 losses), or plain fp32."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def pretrain(model, tokenizer, corpus: Corpus, *, steps: int | None = None, budget_s: float = 600.0,
             lr: float = 5e-4, plan: BatchPlan = BatchPlan(), seed: int = 42, log=print, log_every: int = 50,
             new_params: set[str] = frozenset(), head_lr_mult: float = 10.0, precision: str = "fp32",
             stop_after: int | None = None) -> dict:
    """Train in place. ``steps`` fixes the schedule (reproducible); without it, the step count is
    estimated from the speed of the first 20 steps so the run fits ``budget_s``. ``stop_after``
    ends a fixed-schedule run early (to check that a rerun repeats the first logged losses)."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    is_cont = continuation_table(tokenizer)
    special = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id}
    groups: dict[tuple[bool, bool], list] = {}
    for n, p in model.named_parameters():
        key = (n.endswith("bias") or "LayerNorm" in n, n in new_params)
        groups.setdefault(key, []).append(p)
    opt = torch.optim.AdamW([{"params": ps, "weight_decay": 0.0 if nd else 0.01,
                              "lr_mult": head_lr_mult if new else 1.0}
                             for (nd, new), ps in sorted(groups.items())], lr=lr)
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
        if (total is not None and step >= total) or (stop_after is not None and step >= stop_after):
            break
        # Before the step count is known (timed runs calibrate at step ``calib``) the schedule is a
        # 20-step warm-up with no decay; a run with fixed ``steps`` follows the same rule, so it
        # reproduces a timed run that recorded the same step count.
        real = total is not None and (steps is None or step >= calib)
        horizon = total if real else 10 ** 9
        warm = max(1, int(0.05 * total)) if real else calib
        cur = lr * min((step + 1) / warm, max(0.0, (horizon - step) / max(1, horizon - warm)))
        for g in opt.param_groups:
            g["lr"] = cur * g["lr_mult"]
        x, tt, m, y, nsp = make_batch(corpus, tokenizer, rng, plan, is_cont, special)
        with precision_context(precision):
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
    return {"steps": step, "seconds": round(time.time() - t0, 1), "lr": lr, "head_lr_mult": head_lr_mult,
            "plan": plan.__dict__, "precision": precision, "seed": seed, "final_mlm_loss": round(mlm_acc, 4),
            "final_nsp_loss": round(nsp_acc, 4), "history": hist}
