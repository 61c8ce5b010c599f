"""``bertdemo bench``: bertdemo's service side by side with what a user would otherwise write.

One run measures, prints a table and writes ``benchmarks/results.json``:

1. **serving** - fill-mask, next-sentence and sentiment under 1, 4 and 16 concurrent client
   threads for a bounded time (req/s, p50/p95 latency): the service (micro-batched) vs the plain
   baseline (a ``transformers.pipeline('fill-mask')`` / a direct model call per request, fp32, one
   request at a time), on the bundled shape and the bert-base shape. Baseline and bertdemo run in
   alternating slices (ABAB...) so machine noise hits both alike; ratio = bertdemo / baseline.
2. **what pays** - service variants on the large shape at 16 clients (micro-batching off, wait
   times, int8, one thread), and int8's top-1 agreement with fp32.
3. **audit** - CrowS-Pairs-style pseudo-log-likelihood of N sentence pairs: the service's batched
   ``token_logprobs`` vs the straightforward loop (one forward per masked copy); scores must agree
   to 1e-4 (the command exits 1 if they do not).
4. **start-up** - a fresh ``python -m bertdemo fill ...`` process to its answer, and its peak RSS.
5. **the limit** - achieved FLOP/s of the batched bert-base forward (analytic FLOP count) vs a
   plain 2048x2048 fp32 matmul on the same machine.

Checkpoints are random-weight (speed depends on shape, not on weights), built once with
:mod:`bertdemo.modelfactory` under ``--cache-dir``; the bundled models in ``assets/models`` are used
instead of the bert-tiny stand-in as soon as they exist. ``--quick`` (smoke test, < 1 minute) uses
tiny shapes and short slices. Nothing here runs at import time and torch is imported lazily.
"""

from __future__ import annotations

import argparse
import difflib
import gc
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertdemo.config import DEFAULT_MLM_MODEL, DEFAULT_SENTIMENT_MODEL, PROJECT_ROOT
from bertdemo.tasks.forward import plan_batch

VOCAB_SIZE = 30522  # bert-base-uncased's vocabulary size, for the generated tokenizer
CLIENTS = (1, 4, 16)
TASKS = ("fill-mask", "nsp", "sentiment")
TOLERANCE = 1e-4  # audit scores: batched vs loop


@dataclass(frozen=True)
class Profile:
    name: str
    large_shape: str  # bert-base (full) or tiny (quick stand-in)
    slice_s: dict[str, float]  # shape label -> one baseline or bertdemo slice of a serving cell
    rounds: int  # slices per variant per serving cell (interleaved ABAB)
    pays_rounds: int  # round-robin passes over the variants of "what pays"
    audit_pairs: dict[str, int]  # shape label -> pairs scored
    startup_runs: dict[str, int]
    limit_batch: tuple[int, int]  # (batch, tokens) of the limit forward
    limit_seconds: float
    agreement_probes: int


FULL = Profile("full", "bert-base", slice_s={"bundled": 1.0, "bert-base": 3.0}, rounds=2, pays_rounds=1,
               audit_pairs={"bundled": 12, "bert-base": 2}, startup_runs={"bundled": 2, "bert-base": 1},
               limit_batch=(16, 32), limit_seconds=2.0, agreement_probes=240)
QUICK = Profile("quick", "tiny", slice_s={"bundled": 0.12, "tiny": 0.1}, rounds=1, pays_rounds=1,
                audit_pairs={"bundled": 4, "tiny": 3}, startup_runs={"bundled": 1, "tiny": 0},
                limit_batch=(4, 16), limit_seconds=0.2, agreement_probes=40)

# ---- workloads --------------------------------------------------------------------------------
FILL = [
    "paris is the [MASK] of france.",
    "the doctor told me to [MASK] more water every day.",
    "she opened the window because the room was too [MASK].",
    "i would like a cup of [MASK] with milk and no sugar, please.",
    "the train to berlin was late again this [MASK].",
    "he [MASK] the book on the table and left the room without a word.",
    "our team won the [MASK] after a long and difficult season.",
    "the children played in the [MASK] until it started to rain.",
    "a good [MASK] always checks the results twice before publishing them.",
    "the museum is closed on [MASK] and open every other day of the week.",
    "they planted trees along the river to stop the [MASK] from washing the soil away.",
    "my favourite [MASK] is the one with the old red door.",
    "the price of [MASK] went up again last month.",
    "we took the [MASK] to the airport early in the morning.",
    "the [MASK] barked at the postman.",
    "after dinner we watched a [MASK] about the history of the city, which was longer than expected.",
]
NSP = [
    ("the sky was dark and full of clouds.", "soon it started to rain."),
    ("she bought a new bicycle.", "the museum is closed on mondays."),
    ("he studied for the exam every night.", "in the end he passed with a good grade."),
    ("the train was late again.", "my favourite colour is blue."),
    ("we planted tomatoes in the spring.", "by the summer the garden was full of fruit."),
    ("the meeting started at nine.", "penguins cannot fly but they swim well."),
    ("the children played in the park until it started to rain, and then they ran home.",
     "their mother made them hot chocolate when they arrived."),
    ("the shop sells bread and milk.", "the river flows into the sea."),
]
SENTIMENT = [
    "i loved this movie.",
    "a terrible film, i want my two hours back.",
    "the food was good but the service was slow.",
    "what a great day!",
    "the hotel room was dirty and the staff did not care at all about it.",
    "not bad.",
    "this is the best book i have read this year, i could not put it down.",
    "the plot was boring and the actors seemed tired.",
    "happy with the price, the quality and the fast delivery.",
    "sad ending, but a beautiful story about a family and a small town by the sea.",
]
_OCCUPATIONS = ["nurse", "doctor", "engineer", "teacher", "pilot", "secretary", "farmer", "lawyer",
                "cook", "manager"]
_TEMPLATES = [
    "the {o} said that {p} would finish the report by friday.",
    "everyone agreed that the {o} knew what {p} was doing.",
    "the {o} was tired because {p} had worked all night.",
    "when the {o} arrived, {p} asked for a cup of tea.",
    "the {o} smiled because {p} liked the new office.",
]


def crows_pairs(n: int) -> list[tuple[str, str]]:
    """``n`` minimal pairs that differ in one pronoun (the shape of CrowS-Pairs items)."""
    pairs = []
    for t in _TEMPLATES:
        for o in _OCCUPATIONS:
            pairs.append((t.format(o=o, p="he"), t.format(o=o, p="she")))
    return [pairs[(i * 7) % len(pairs)] for i in range(n)]


def _all_words() -> list[str]:
    texts = [*FILL, *(a + " " + b for a, b in NSP), *SENTIMENT, *(" ".join(p) for p in crows_pairs(50)),
             "hello"]
    words: dict[str, None] = {}
    for t in texts:
        for w in re.findall(r"[a-z]+", t.lower()):
            words[w] = None
    return list(words)


# ---- checkpoints ------------------------------------------------------------------------------
def _is_checkpoint(path: Path) -> bool:
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def generated_tokenizer(cache: Path) -> Path:
    """A 30522-entry WordPiece tokenizer: the bench's words, single characters, then fillers."""
    from bertdemo.modelfactory import SPECIALS, make_tokenizer

    out = cache / "tokenizer-30522"
    if (out / "tokenizer_config.json").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    vocab = list(SPECIALS)
    for piece in [*_all_words(), *(c for ch in "abcdefghijklmnopqrstuvwxyz0123456789.,!?'-" for c in (ch, "##" + ch))]:
        if piece not in vocab:
            vocab.append(piece)
    vocab += [f"[unused{i}]" for i in range(VOCAB_SIZE - len(vocab))]
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    make_tokenizer(out / "vocab.txt").save_pretrained(out)
    return out


def _checkpoint(cache: Path, kind: str, shape: str, tokenizer_dir: Path, tag: str) -> Path:
    from bertdemo.modelfactory import make_checkpoint

    out = cache / f"{shape}-{kind}-{tag}"
    if not _is_checkpoint(out):
        make_checkpoint(out, kind, shape, tokenizer_dir=tokenizer_dir, seed=0 if kind == "pretraining" else 1,
                        max_position_embeddings=512 if shape == "bert-base" else 128)
    return out


@dataclass
class Shape:
    label: str  # "bundled", "bert-base", "tiny"
    mlm: str
    clf: str
    source: str  # what the folders are
    info: dict[str, Any] = field(default_factory=dict)


def prepare_shapes(profile: Profile, cache: Path) -> list[Shape]:
    cache.mkdir(parents=True, exist_ok=True)
    gen_tok: Path | None = None

    def gen() -> Path:
        nonlocal gen_tok
        if gen_tok is None:
            gen_tok = generated_tokenizer(cache)
        return gen_tok

    mlm_b, clf_b = Path(DEFAULT_MLM_MODEL), Path(DEFAULT_SENTIMENT_MODEL)
    real_mlm, real_clf = _is_checkpoint(mlm_b), _is_checkpoint(clf_b)
    bundled = Shape(
        "bundled",
        str(mlm_b) if real_mlm else str(_checkpoint(cache, "pretraining", "bert-tiny", gen(), "gen")),
        str(clf_b) if real_clf else str(_checkpoint(cache, "classifier", "bert-tiny", gen(), "gen")),
        source=("assets/models (bundled)" if real_mlm and real_clf else
                "bert-tiny random-weight stand-in (bundled models not present yet)" if not (real_mlm or real_clf) else
                "partly bundled, partly bert-tiny stand-in"),
    )
    # the large shape reads the bundled tokenizer when it is bert-sized, else the generated one
    tok_dir, tag = gen(), "gen"
    if real_mlm:
        try:
            vocab_n = sum(1 for _ in (mlm_b / "vocab.txt").open(encoding="utf-8"))
        except OSError:
            vocab_n = 0
        if vocab_n >= 20000:
            tok_dir, tag = mlm_b, "bundledtok"
    shape = profile.large_shape
    large = Shape(shape, str(_checkpoint(cache, "pretraining", shape, tok_dir, tag)),
                  str(_checkpoint(cache, "classifier", shape, tok_dir, tag)),
                  source=f"{shape} random weights (modelfactory), tokenizer: {'bundled' if tag != 'gen' else 'generated 30522'}")
    for s in (bundled, large):
        cfg = json.loads((Path(s.mlm) / "config.json").read_text(encoding="utf-8"))
        s.info = {k: cfg.get(k) for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                          "intermediate_size", "vocab_size")}
    return [bundled, large]


# ---- statistics and load generation -----------------------------------------------------------
def percentile(xs: Sequence[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    k = (len(s) - 1) * q
    f = math.floor(k)
    c = min(f + 1, len(s) - 1)
    return s[f] + (s[c] - s[f]) * (k - f)


@dataclass
class Tally:
    """Completed requests and latencies of one variant in one cell, summed over its slices."""

    done: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    batches: list[tuple[int, int, int]] = field(default_factory=list)  # (items, tokens, computed tokens)

    def summary(self) -> dict[str, Any]:
        ms = [x * 1000 for x in self.latencies]
        return {
            "requests": self.done,
            "seconds": round(self.seconds, 3),
            "req_per_s": round(self.done / self.seconds, 2) if self.seconds else None,
            "p50_ms": _r(percentile(ms, 0.5)),
            "p95_ms": _r(percentile(ms, 0.95)),
            "mean_batch": round(sum(b[0] for b in self.batches) / len(self.batches), 2) if self.batches else None,
            "useful_token_fraction": (round(sum(b[1] for b in self.batches) / sum(b[2] for b in self.batches), 3)
                                      if self.batches else None),
        }


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


def drive(call: Callable[[Any], Any], inputs: Sequence[Any], clients: int, seconds: float, tally: Tally) -> None:
    """``clients`` threads call ``call`` back to back (closed loop, no think time) for ``seconds``."""
    lat: list[list[float]] = [[] for _ in range(clients)]
    finish = [0.0] * clients
    errors: list[BaseException] = []
    gate = threading.Barrier(clients + 1)
    stop = [0.0]

    def worker(k: int) -> None:
        gate.wait()
        i = k * 3
        try:
            while time.perf_counter() < stop[0]:
                t0 = time.perf_counter()
                call(inputs[i % len(inputs)])
                lat[k].append(time.perf_counter() - t0)
                i += 1
        except BaseException as err:  # reported after the slice
            errors.append(err)
        finish[k] = time.perf_counter()

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    stop[0] = start + seconds
    gate.wait()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"a benchmark client failed: {errors[0]!r}") from errors[0]
    tally.done += sum(len(x) for x in lat)
    tally.seconds += max(finish) - start
    for x in lat:
        tally.latencies.extend(x)


def _count_batches(svc: Any, sink: list[tuple[int, int, int]]) -> None:
    """Record size, tokens and computed (padded or packed) tokens of every batched service call.

    A batch observer of the service (its public seam), called before every forward pass.
    """

    def counted(model: Any, items: Any) -> None:
        lens = [len(it) for it in items]
        computed = plan_batch(lens, int(model.model.config.hidden_size), svc.settings.pack_batches).computed_tokens
        sink.append((len(items), sum(lens), computed))

    svc.observers.append(counted)


# ---- the two sides ----------------------------------------------------------------------------
class Baseline:
    """What a user would otherwise write: a pipeline / model call per request, fp32, one at a time."""

    def __init__(self, shape: Shape) -> None:
        import torch
        from transformers import (
            AutoTokenizer,
            BertForMaskedLM,
            BertForNextSentencePrediction,
            BertForSequenceClassification,
            pipeline,
        )

        self.torch = torch
        # one request at a time, first come first served: gradio's default queue (concurrency_limit=1)
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-baseline")
        self.tok = AutoTokenizer.from_pretrained(shape.mlm)
        fp32 = {"use_safetensors": True, "dtype": torch.float32}  # stored weights may be half precision
        self.mlm = BertForMaskedLM.from_pretrained(shape.mlm, **fp32).eval()
        self.fill_pipe = pipeline("fill-mask", model=self.mlm, tokenizer=self.tok, device="cpu")
        self.nsp_model = BertForNextSentencePrediction.from_pretrained(shape.mlm, **fp32).eval()
        self.clf_tok = AutoTokenizer.from_pretrained(shape.clf)
        self.clf = BertForSequenceClassification.from_pretrained(shape.clf, **fp32).eval()

    def _fill(self, text: str) -> Any:
        return self.fill_pipe(text, top_k=5)

    def _nsp(self, pair: tuple[str, str]) -> float:
        with self.torch.no_grad():
            enc = self.tok(pair[0], pair[1], return_tensors="pt")
            return float(self.torch.softmax(self.nsp_model(**enc).logits, -1)[0, 0])

    def _sentiment(self, text: str) -> list[float]:
        with self.torch.no_grad():
            enc = self.clf_tok(text, return_tensors="pt", truncation=True)
            return self.torch.softmax(self.clf(**enc).logits, -1)[0].tolist()

    def calls(self, clients: int = 16) -> dict[str, Callable[[Any], Any]]:
        """Per task: a direct call for one client, else through the one FIFO worker."""
        fns = {"fill-mask": self._fill, "nsp": self._nsp, "sentiment": self._sentiment}
        if clients == 1:
            return fns
        return {task: (lambda x, fn=fn: self.worker.submit(fn, x).result()) for task, fn in fns.items()}

    def close(self) -> None:
        self.worker.shutdown(wait=True)


def make_service(shape: Shape, share_models_with: Any = None, batcher_factory: Any = None, **settings: Any) -> Any:
    """A service for ``shape``; with ``share_models_with``, the same loaded weights under other settings."""
    from bertdemo.config import load_settings
    from bertdemo.service import ModelService, shared_models

    loader = shared_models(share_models_with) if share_models_with is not None else None
    return ModelService(load_settings(env={}, mlm_model=shape.mlm, sentiment_model=shape.clf, device="cpu", **settings),
                        loader=loader, batcher_factory=batcher_factory)


def alwayswait_batcher_class() -> type:
    """The earlier MicroBatcher policy (wait for companions before every batch), kept as a variant."""
    from bertdemo.batching import MicroBatcher

    class AlwaysWait(MicroBatcher):
        always_wait = True

    return AlwaysWait


def service_calls(svc: Any) -> dict[str, Callable[[Any], Any]]:
    return {
        "fill-mask": lambda t: svc.fill_mask(t, top_k=5),
        "nsp": lambda p: svc.next_sentence(p[0], p[1]),
        "sentiment": lambda t: svc.sentiment([t]),
    }


INPUTS: dict[str, list[Any]] = {"fill-mask": FILL, "nsp": NSP, "sentiment": SENTIMENT}


def _warm(calls: dict[str, Callable[[Any], Any]]) -> None:
    for task, call in calls.items():
        for x in INPUTS[task][:3]:
            call(x)


def _free(svc: Any) -> None:
    """Stop a service's batcher threads and drop its models."""
    svc.close()
    gc.collect()


# ---- sections ---------------------------------------------------------------------------------
def bench_serving(shape: Shape, profile: Profile, base: Baseline, svc: Any, log: Callable[[str], None]) -> list[dict]:
    rows = []
    sizes: list[tuple[int, int, int]] = []
    _count_batches(svc, sizes)
    tasks = [t for t in TASKS if t != "nsp" or svc.mlm.has_nsp]
    s_calls = {t: c for t, c in service_calls(svc).items() if t in tasks}
    _warm({t: c for t, c in base.calls(1).items() if t in tasks})
    _warm(s_calls)
    for task in tasks:
        for clients in CLIENTS:
            b_calls = base.calls(clients)
            tb, ts = Tally(), Tally()
            for _ in range(profile.rounds):  # ABAB: noise hits both sides alike
                drive(b_calls[task], INPUTS[task], clients, profile.slice_s[shape.label], tb)
                sizes.clear()
                drive(s_calls[task], INPUTS[task], clients, profile.slice_s[shape.label], ts)
                ts.batches.extend(sizes)
            b, s = tb.summary(), ts.summary()
            ratio = s["req_per_s"] / b["req_per_s"] if b["req_per_s"] and s["req_per_s"] else None
            rows.append({"shape": shape.label, "task": task, "clients": clients, "baseline": b, "bertdemo": s,
                         "ratio": _r(ratio)})
            log(f"  serving {shape.label:<9} {task:<9} {clients:>2} clients: baseline {b['req_per_s']} req/s, "
                f"bertdemo {s['req_per_s']} req/s (x{_r(ratio)})")
    return rows


def bench_pays(shape: Shape, profile: Profile, base: Baseline, svc: Any, int8: Any,
               log: Callable[[str], None]) -> list[dict]:
    """Service variants on fill-mask at 16 and 1 clients, interleaved round-robin."""
    import torch

    threads = torch.get_num_threads()
    variants: list[tuple[str, Any, int]] = [
        ("baseline: pipeline, one request at a time", None, threads),
        ("bertdemo default (fp32, batch 32, wait 2 ms)", svc, threads),
        ("micro-batching off (batch_size 1)", make_service(shape, svc, batch_size=1), threads),
        ("packing off (pad to the longest)", make_service(shape, svc, pack_batches=False), threads),
        ("wait 10 ms", make_service(shape, svc, micro_batch_wait_ms=10.0), threads),
        ("old policy: always wait 2 ms", make_service(shape, svc, alwayswait_batcher_class()), threads),
        ("int8 dynamic quantization", int8, threads),
        ("int8 + always wait", make_service(shape, int8, alwayswait_batcher_class(), precision="int8"), threads),
    ]
    rows = []
    for clients in (16, 1):
        tallies = [Tally() for _ in variants]
        sink: list[tuple[int, int, int]] = []
        for _, s, _ in variants:
            if s is not None:
                _count_batches(s, sink)
                _warm({"fill-mask": service_calls(s)["fill-mask"]})
        for _ in range(profile.pays_rounds):
            for (_name, s, nthreads), tally in zip(variants, tallies, strict=True):
                call = base.calls(clients)["fill-mask"] if s is None else service_calls(s)["fill-mask"]
                torch.set_num_threads(nthreads)
                sink.clear()
                try:
                    drive(call, FILL, clients, profile.slice_s[shape.label], tally)
                finally:
                    torch.set_num_threads(threads)
                tally.batches.extend(sink)
        ref = tallies[0].summary()["req_per_s"]
        for (name, _, _), tally in zip(variants, tallies, strict=True):
            summ = tally.summary()
            rows.append({"shape": shape.label, "task": "fill-mask", "clients": clients, "variant": name, **summ,
                         "ratio_vs_baseline": _r(summ["req_per_s"] / ref) if ref and summ["req_per_s"] else None})
        log(f"  pays {shape.label} {clients} clients: " +
            ", ".join(f"{r['variant'].split(' (')[0]} {r['req_per_s']}" for r in rows[-len(variants):]))
    return rows


def _probes(tok: Any, n: int) -> list[str]:
    """Mask each word of the bench sentences in turn: ``n`` fill-mask probes."""
    texts = [*(t.replace("[MASK]", w) for t, w in zip(FILL, ["capital"] * len(FILL), strict=True)),
             *(a for a, _ in NSP), *SENTIMENT, *(p[0] for p in crows_pairs(20))]
    out = []
    for t in texts:
        words = t.split()
        for i in range(len(words)):
            out.append(" ".join([*words[:i], tok.mask_token, *words[i + 1:]]))
    return out[:n]


def bench_agreement(shape: Shape, profile: Profile, svc: Any, int8: Any) -> dict[str, Any]:
    """Top-1 agreement of int8 with fp32: fill-mask probes, NSP pairs, sentiment labels."""
    tok = svc.mlm.tokenizer
    probes = _probes(tok, profile.agreement_probes)
    a = [int(d.argmax()) for d in svc.mask_distributions(probes)]
    b = [int(d.argmax()) for d in int8.mask_distributions(probes)]
    nsp_texts = ([(x, y) for x, y in NSP] + [(y, x) for x, y in NSP]) if svc.mlm.has_nsp else []
    nsp_a = [svc.next_sentence(x, y).is_next > 0.5 for x, y in nsp_texts]
    nsp_b = [int8.next_sentence(x, y).is_next > 0.5 for x, y in nsp_texts]
    sent_texts = [*SENTIMENT, *FILL, *(a for a, _ in NSP)]
    sa = [r.label for r in svc.sentiment(sent_texts)]
    sb = [r.label for r in int8.sentiment(sent_texts)]

    def agree(x: list, y: list) -> float | None:
        return round(sum(p == q for p, q in zip(x, y, strict=True)) / len(x), 4) if x else None

    fill = agree(a, b)
    return {"shape": shape.label, "weights": "random" if "random" in shape.source or "stand-in" in shape.source else "trained",
            "fill_mask_top1": fill, "fill_mask_probes": len(probes), "nsp_top1": agree(nsp_a, nsp_b),
            "nsp_pairs": len(nsp_texts), "sentiment_top1": agree(sa, sb), "sentiment_texts": len(sent_texts),
            "int8_eligible_as_default": bool(fill and fill >= 0.99 and (agree(sa, sb) or 0) >= 0.99)}


def loop_token_logprobs(model: Any, ids_list: Sequence[Sequence[int]], positions_list: Sequence[Sequence[int]],
                        mask_id: int) -> list[list[float]]:
    """The straightforward way: one forward of the full masked-LM per masked copy."""
    import torch

    out = []
    with torch.no_grad():
        for ids, positions in zip(ids_list, positions_list, strict=True):
            scores = []
            for p in positions:
                masked = list(ids)
                masked[p] = mask_id
                logits = model(input_ids=torch.tensor([masked])).logits[0, p]
                scores.append(float(torch.log_softmax(logits, -1)[ids[p]]))
            out.append(scores)
    return out


def shared_positions(tok: Any, a: list[int], b: list[int]) -> tuple[list[int], list[int]]:
    """CrowS-Pairs scores the tokens the two sentences share (not the ones that differ)."""
    special = set(tok.all_special_ids)
    pa, pb = [], []
    for block in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            if a[block.a + k] not in special:
                pa.append(block.a + k)
                pb.append(block.b + k)
    return pa, pb


def bench_audit(shape: Shape, pairs_n: int, svc: Any, base: Baseline, log: Callable[[str], None]) -> dict[str, Any]:
    tok = svc.mlm.tokenizer
    pairs = crows_pairs(pairs_n)
    ids_list, pos_list = [], []
    for s1, s2 in pairs:
        a, b = svc.tokenize(s1), svc.tokenize(s2)
        pa, pb = shared_positions(tok, a, b)
        ids_list += [a, b]
        pos_list += [pa, pb]
    copies = sum(len(p) for p in pos_list)
    svc.token_logprobs(ids_list[:2], pos_list[:2])  # warm
    loop_token_logprobs(base.mlm, ids_list[:1], [pos_list[0][:2]], tok.mask_token_id)
    t0 = time.perf_counter()
    loop = loop_token_logprobs(base.mlm, ids_list, pos_list, tok.mask_token_id)
    t_loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    batched = svc.token_logprobs(ids_list, pos_list)
    t_batched = time.perf_counter() - t0
    diff = max(abs(x - y) for u, v in zip(loop, batched, strict=True) for x, y in zip(u, v, strict=True))
    more_likely = sum(sum(batched[2 * i]) > sum(batched[2 * i + 1]) for i in range(len(pairs)))
    res = {"shape": shape.label, "pairs": len(pairs), "masked_copies": copies, "loop_s": round(t_loop, 3),
           "batched_s": round(t_batched, 3), "speedup": _r(t_loop / t_batched), "max_abs_diff": diff,
           "identical_scores": diff <= TOLERANCE, "tolerance": TOLERANCE, "first_sentence_preferred": more_likely}
    log(f"  audit {shape.label}: {copies} masked copies, loop {t_loop:.2f}s, batched {t_batched:.2f}s "
        f"(x{res['speedup']}), max |diff| {diff:.2e}")
    return res


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for k in ("BERTDEMO_PRECISION", "BERTDEMO_DEVICE"):
        env.pop(k, None)
    return env


_LAUNCHER = """
import json, os, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.Popen(json.loads(sys.argv[1]), stdout=sys.stderr)
_, status, usage = os.wait4(p.pid, 0)
print(json.dumps({"seconds": time.perf_counter() - t0, "exit": os.waitstatus_to_exitcode(status),
                  "maxrss_kb": usage.ru_maxrss}))
"""


def bench_startup(shape: Shape, runs: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Wall time from spawning ``python -m bertdemo fill`` to its exit with an answer; its peak RSS."""
    cmd = [sys.executable, "-m", "bertdemo", "fill", "paris is the [MASK] of france.", "--top-k", "1",
           "--mlm-model", shape.mlm, "--device", "cpu", "--json"]
    times, rss = [], []
    for _ in range(runs):
        with tempfile.TemporaryFile() as out:
            # A small launcher spawns the timed process: a process forked from this big one would
            # report our RSS as its peak (Linux keeps the pre-exec high-water mark in ru_maxrss).
            launch = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, json.dumps(cmd)], stdout=subprocess.PIPE,
                                    stderr=out, env=_child_env(), cwd=str(PROJECT_ROOT), check=False, text=True)
            out.seek(0)
            text = out.read().decode("utf-8", "replace")
        try:
            fact = json.loads(launch.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            fact = {"exit": launch.returncode, "seconds": 0, "maxrss_kb": 0}
        if fact["exit"] != 0 or "predictions" not in text:
            raise RuntimeError(f"start-up run failed (exit {fact['exit']}): {text.strip()[-500:]}")
        times.append(fact["seconds"])
        rss.append(fact["maxrss_kb"] / 1024)  # KiB on Linux
    res = {"shape": shape.label, "runs": runs, "seconds": [round(t, 2) for t in times],
           "median_s": _r(percentile(times, 0.5)), "peak_rss_mb": _r(max(rss), 1), "command": " ".join(cmd[1:5]) + " ..."}
    log(f"  start-up {shape.label}: {res['seconds']} s, peak RSS {res['peak_rss_mb']} MB")
    return res


def bert_flops(cfg: dict[str, Any], batch: int, tokens: int, head_positions: int = 0) -> float:
    """Analytic FLOPs (2 per multiply-add) of the encoder, pooler and MLM head at ``head_positions``."""
    h, n, i, v = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"], cfg["vocab_size"]
    per_token = n * (4 * h * h + 2 * h * i + 2 * tokens * h)  # projections, FFN, QK^T and AV
    macs = batch * tokens * per_token + batch * h * h + head_positions * (h * h + h * v)
    return 2.0 * macs


def _time_best(fn: Callable[[], Any], seconds: float, min_reps: int = 2) -> float:
    """Fastest of the repetitions: on a shared machine noise only ever adds time."""
    fn()
    times: list[float] = []
    end = time.perf_counter() + seconds
    while len(times) < min_reps or time.perf_counter() < end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_limit(shape: Shape, profile: Profile, svc: Any, log: Callable[[str], None]) -> dict[str, Any]:
    import torch

    from bertdemo.models import quantize_int8

    batch, tokens = profile.limit_batch
    cfg = shape.info
    model = svc.mlm.model.bert
    q = quantize_int8(svc.mlm.model).bert  # a quantized copy; the service's own model is untouched
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, cfg["vocab_size"], (batch, tokens), generator=g)
    attn = torch.ones_like(ids)
    a = torch.randn(2048, 2048, generator=g)
    b = torch.randn(2048, 2048, generator=g)
    threads = torch.get_num_threads()
    flops = bert_flops(cfg, batch, tokens)
    mm_flops = 2.0 * 2048**3

    def fwd(m: Any) -> Callable[[], Any]:
        def run() -> Any:
            with torch.inference_mode():
                return m(input_ids=ids, attention_mask=attn)
        return run

    res: dict[str, Any] = {"shape": shape.label, "batch": batch, "tokens": tokens, "forward_gflop": round(flops / 1e9, 2),
                           "threads": {}}
    for n in sorted({threads, 1}, reverse=True):
        torch.set_num_threads(n)
        try:
            per = profile.limit_seconds / 6
            t_mm, t_f, t_q = [], [], []
            for _ in range(2):  # interleaved
                t_mm.append(_time_best(lambda: torch.mm(a, b), per))
                t_f.append(_time_best(fwd(model), per))
                t_q.append(_time_best(fwd(q), per))
        finally:
            torch.set_num_threads(threads)
        mm_s, f_s, q_s = min(t_mm), min(t_f), min(t_q)
        res["threads"][str(n)] = {
            "matmul_gflops": round(mm_flops / mm_s / 1e9, 1),
            "forward_fp32_ms": round(f_s * 1000, 1), "forward_fp32_gflops": round(flops / f_s / 1e9, 1),
            "forward_fp32_fraction_of_matmul": round((flops / f_s) / (mm_flops / mm_s), 3),
            "forward_int8_ms": round(q_s * 1000, 1), "forward_int8_effective_gflops": round(flops / q_s / 1e9, 1),
            "int8_speedup": round(f_s / q_s, 2),
        }
        r = res["threads"][str(n)]
        log(f"  limit {shape.label} threads={n}: matmul {r['matmul_gflops']} GFLOP/s, forward fp32 "
            f"{r['forward_fp32_gflops']} GFLOP/s ({r['forward_fp32_fraction_of_matmul']:.0%}), int8 x{r['int8_speedup']}")
    del q
    gc.collect()
    return res


def request_flops(shape: Shape, task: str, tok: Any) -> float:
    """Mean useful FLOPs of one benchmark request (unpadded tokens; MLM head at the mask only)."""
    if task == "fill-mask":
        lens, head = [len(tok(t)["input_ids"]) for t in FILL], 1
    elif task == "nsp":
        lens, head = [len(tok(a, b)["input_ids"]) for a, b in NSP], 0
    else:
        lens, head = [len(tok(t)["input_ids"]) for t in SENTIMENT], 0
    return sum(bert_flops(shape.info, 1, n, head_positions=head) for n in lens) / len(lens)


def serving_gflops(shape: Shape, svc_req_per_s: float | None, tok: Any) -> float | None:
    """Useful FLOP/s the service achieved on fill-mask (unpadded tokens, head at the mask only)."""
    if not svc_req_per_s:
        return None
    return round(request_flops(shape, "fill-mask", tok) * svc_req_per_s / 1e9, 2)


def fp32_ceilings(shape: Shape, serving: list[dict], best_matmul_gflops: float, tok: Any) -> list[dict]:
    """Per task: the most req/s fp32 could give if every FLOP ran at the matmul rate, over the baseline.

    If this ratio is under 4, the 4x target cannot be met at fp32 on this machine by any batching.
    """
    out = []
    for task in TASKS:
        row = next((r for r in serving if r["shape"] == shape.label and r["task"] == task and r["clients"] == 16), None)
        if row is None or not row["baseline"]["req_per_s"]:
            continue
        per_req = request_flops(shape, task, tok)
        ceiling = best_matmul_gflops * 1e9 / per_req
        out.append({"task": task, "gflop_per_request": float(f"{per_req / 1e9:.4g}"), "ceiling_req_per_s": round(ceiling, 1),
                    "baseline_req_per_s": row["baseline"]["req_per_s"],
                    "ceiling_ratio": round(ceiling / row["baseline"]["req_per_s"], 2),
                    "achieved_ratio": row["ratio"],
                    "achieved_fraction_of_ceiling": round(row["bertdemo"]["req_per_s"] / ceiling, 3)})
    return out


# ---- report -----------------------------------------------------------------------------------
def _f(x: Any, nd: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "NO"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    large = results["shapes"][1]["label"]
    out = []
    rows = {(r["shape"], r["task"], r["clients"]): r for r in results["serving"]}
    for task in TASKS:
        r16, r1 = rows.get((large, task, 16)), rows.get((large, task, 1))
        if r16 and r1:
            out.append({"target": f"{large} {task}: throughput at 16 clients >= 4x baseline", "value": r16["ratio"],
                        "met": bool(r16["ratio"] and r16["ratio"] >= 4)})
            p95, p50 = r16["bertdemo"]["p95_ms"], r1["baseline"]["p50_ms"]
            out.append({"target": f"{large} {task}: p95 at 16 clients <= baseline p50 at 1 client",
                        "value": f"{_f(p95)} ms vs {_f(p50)} ms", "met": bool(p95 is not None and p50 and p95 <= p50)})
    for a in results["audit"]:
        out.append({"target": f"audit ({a['shape']}): >= 10x the loop, scores equal to 1e-4",
                    "value": f"x{a['speedup']}, max diff {a['max_abs_diff']:.1e}",
                    "met": bool(a["speedup"] and a["speedup"] >= 10 and a["identical_scores"])})
    for s in results["startup"]:
        if s["shape"] == "bundled":
            out.append({"target": "start-up to first answer (bundled) < 5 s, RSS < 1 GB",
                        "value": f"{s['median_s']} s, {s['peak_rss_mb']} MB",
                        "met": bool(s["median_s"] < 5 and s["peak_rss_mb"] < 1024)})
    return out


def render(results: dict[str, Any]) -> str:
    m = results["meta"]
    lines = [f"bertdemo bench ({m['profile']}) - {m['date']} - {m['machine']}",
             f"torch {m['torch']} ({m['torch_threads']} threads), transformers {m['transformers']}; command: {m['command']}",
             ""]
    for s in results["shapes"]:
        lines.append(f"shape {s['label']}: {s['source']}; {s['info']}")
    lines += ["", "Serving (closed-loop clients; baseline = pipeline / direct model call, fp32, one request at a time;"
              " ratio = bertdemo req/s / baseline req/s)",
              "| shape | task | clients | baseline req/s | bertdemo req/s | ratio | baseline p50 / p95 ms"
              " | bertdemo p50 / p95 ms | mean batch | useful tokens |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["serving"]:
        b, s = r["baseline"], r["bertdemo"]
        lines.append(f"| {r['shape']} | {r['task']} | {r['clients']} | {_f(b['req_per_s'])} | {_f(s['req_per_s'])} | "
                     f"**{_f(r['ratio'], 2)}x** | {_f(b['p50_ms'])} / {_f(b['p95_ms'])} | "
                     f"{_f(s['p50_ms'])} / {_f(s['p95_ms'])} | {_f(s['mean_batch'])} | {_pct(s['useful_token_fraction'])} |")
    if results.get("pays"):
        lines += ["", "What pays (fill-mask; variants interleaved round-robin; ratio vs the baseline in the same cell)",
                  "| shape | clients | variant | req/s | vs baseline | p50 / p95 ms | mean batch |",
                  "|---|---:|---|---:|---:|---:|---:|"]
        for r in results["pays"]:
            lines.append(f"| {r['shape']} | {r['clients']} | {r['variant']} | {_f(r['req_per_s'])} | "
                         f"{_f(r['ratio_vs_baseline'], 2)}x | {_f(r['p50_ms'])} / {_f(r['p95_ms'])} | {_f(r['mean_batch'])} |")
    if results.get("agreement"):
        lines += ["", "int8 vs fp32 top-1 agreement (int8 may become the default only at >= 99%)",
                  "| shape | weights | fill-mask | NSP | sentiment | eligible |", "|---|---|---:|---:|---:|---|"]
        for a in results["agreement"]:
            lines.append(f"| {a['shape']} | {a['weights']} | {_pct(a['fill_mask_top1'])} ({a['fill_mask_probes']}) | "
                         f"{_pct(a['nsp_top1'])} ({a['nsp_pairs']}) | {_pct(a['sentiment_top1'])} ({a['sentiment_texts']}) | "
                         f"{_f(a['int8_eligible_as_default'])} |")
    lines += ["", "Audit: CrowS-Pairs-style PLL (shared tokens of each pair), batched service vs one forward per masked copy",
              "| shape | pairs | masked copies | loop s | batched s | speedup | max abs diff | identical (1e-4) |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    for a in results["audit"]:
        lines.append(f"| {a['shape']} | {a['pairs']} | {a['masked_copies']} | {a['loop_s']:.2f} | {a['batched_s']:.2f} | "
                     f"**{_f(a['speedup'])}x** | {a['max_abs_diff']:.1e} | {_f(a['identical_scores'])} |")
    if results["startup"]:
        lines += ["", "Start-up: fresh `python -m bertdemo fill ...` to its answer (process exit), peak RSS of the child",
                  "| shape | runs (s) | median s | peak RSS MB |", "|---|---|---:|---:|"]
        for s in results["startup"]:
            runs = ", ".join(map(str, s["seconds"]))
            lines.append(f"| {s['shape']} | {runs} | {_f(s['median_s'], 2)} | {_f(s['peak_rss_mb'])} |")
    lim = results.get("limit")
    if lim:
        lines += ["", f"The limit: {lim['shape']} encoder forward, batch {lim['batch']} x {lim['tokens']} tokens "
                  f"({lim['forward_gflop']} GFLOP analytic) vs torch.mm 2048x2048 fp32",
                  "| threads | matmul GFLOP/s | forward fp32 ms | forward GFLOP/s | of matmul | int8 ms | int8 speedup |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for n, r in lim["threads"].items():
            lines.append(f"| {n} | {r['matmul_gflops']} | {r['forward_fp32_ms']} | {r['forward_fp32_gflops']} | "
                         f"{r['forward_fp32_fraction_of_matmul']:.0%} | {r['forward_int8_ms']} | {r['int8_speedup']}x |")
        if lim.get("best_matmul_gflops"):
            lines.append(f"Best of the thread settings: forward {lim['best_forward_fp32_gflops']} GFLOP/s vs matmul "
                         f"{lim['best_matmul_gflops']} GFLOP/s = {lim['forward_fraction_of_best_matmul']:.0%} of the limit.")
        if lim.get("serving_gflops") is not None:
            lines.append(f"Serving fill-mask at 16 clients achieved {lim['serving_gflops']} useful GFLOP/s "
                         f"({lim['serving_fraction_of_matmul']:.0%} of the matmul rate).")
        if lim.get("fp32_ceilings"):
            lines += ["", "fp32 ceiling at 16 clients: every useful FLOP at the best matmul rate, no padding, no overhead",
                      "| task | GFLOP / request | ceiling req/s | baseline req/s | ceiling / baseline | achieved | "
                      "achieved / ceiling |", "|---|---:|---:|---:|---:|---:|---:|"]
            for c in lim["fp32_ceilings"]:
                lines.append(f"| {c['task']} | {c['gflop_per_request']} | {c['ceiling_req_per_s']} | "
                             f"{c['baseline_req_per_s']} | {c['ceiling_ratio']}x | {c['achieved_ratio']}x | "
                             f"{c['achieved_fraction_of_ceiling']:.0%} |")
    lines += ["", "Targets", "| target | value | met |", "|---|---|---|"]
    for t in results["targets"]:
        lines.append(f"| {t['target']} | {t['value']} | {_f(t['met'])} |")
    return "\n".join(lines)


# ---- command ----------------------------------------------------------------------------------
def run_bench(profile: Profile, cache: Path, log: Callable[[str], None], command: str = "bertdemo bench") -> dict[str, Any]:
    import torch
    import transformers

    t_start = time.perf_counter()
    log(f"bertdemo bench ({profile.name}): preparing checkpoints under {cache}")
    shapes = prepare_shapes(profile, cache)
    results: dict[str, Any] = {
        "meta": {"profile": profile.name, "date": time.strftime("%Y-%m-%d %H:%M %Z"), "command": command,
                 "machine": f"{platform.machine()} {_cpu_name()}, {os.cpu_count()} logical CPUs, "
                            f"{_mem_gb()} GB RAM, {platform.system()} {platform.release()}",
                 "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
                 "torch_threads": torch.get_num_threads(), "slice_s": profile.slice_s, "rounds": profile.rounds},
        "shapes": [{"label": s.label, "source": s.source, "mlm": s.mlm, "sentiment": s.clf, "info": s.info} for s in shapes],
        "serving": [], "pays": [], "agreement": [], "audit": [], "startup": [], "limit": None,
    }
    for k, shape in enumerate(shapes):
        large = k == len(shapes) - 1
        log(f"shape {shape.label}: loading baseline and service")
        base = Baseline(shape)
        svc = make_service(shape)
        svc.warm_up()
        results["serving"] += bench_serving(shape, profile, base, svc, log)
        int8 = make_service(shape, precision="int8")
        results["agreement"].append(bench_agreement(shape, profile, svc, int8))
        results["audit"].append(bench_audit(shape, profile.audit_pairs.get(shape.label, 4), svc, base, log))
        results["pays"] += bench_pays(shape, profile, base, svc, int8, log)
        if large:
            lim = bench_limit(shape, profile, svc, log)
            row = next(r for r in results["serving"] if r["shape"] == shape.label and r["task"] == "fill-mask"
                       and r["clients"] == 16)
            lim["serving_gflops"] = serving_gflops(shape, row["bertdemo"]["req_per_s"], svc.mlm.tokenizer)
            best_mm = max(t["matmul_gflops"] for t in lim["threads"].values())
            best_fwd = max(t["forward_fp32_gflops"] for t in lim["threads"].values())
            lim["best_matmul_gflops"], lim["best_forward_fp32_gflops"] = best_mm, best_fwd
            lim["forward_fraction_of_best_matmul"] = round(best_fwd / best_mm, 3)
            lim["serving_fraction_of_matmul"] = round(lim["serving_gflops"] / best_mm, 3) if lim["serving_gflops"] else None
            lim["fp32_ceilings"] = fp32_ceilings(shape, results["serving"], best_mm, svc.mlm.tokenizer)
            results["limit"] = lim
        _free(svc)
        _free(int8)
        base.close()
        del base
        gc.collect()
    for shape in shapes:  # start-up last, with this process's models released
        runs = profile.startup_runs.get(shape.label, 0)
        if runs:
            results["startup"].append(bench_startup(shape, runs, log))
    results["targets"] = targets(results)
    results["meta"]["bench_seconds"] = round(time.perf_counter() - t_start, 1)
    return results


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _mem_gb() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.0f}"
    except (OSError, ValueError, IndexError):
        pass
    return "?"


def _handler(args: argparse.Namespace) -> int:
    profile = QUICK if args.quick else FULL
    cache = Path(args.cache_dir) if args.cache_dir else PROJECT_ROOT / ".cache" / "bench"
    command = "bertdemo bench" + (" --quick" if args.quick else "")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    results = run_bench(profile, cache, log, command)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(render(results))
        print(f"\nwrote {out} ({results['meta']['bench_seconds']} s)")
    return 0 if all(a["identical_scores"] for a in results["audit"]) else 1


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("bench", help="benchmark the service against a plain transformers baseline",
                              description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="smoke-test run: tiny shapes, short slices (< 1 minute)")
    p.add_argument("--out", default="benchmarks/results.json", help="where to write the JSON results")
    p.add_argument("--json", action="store_true", help="print the JSON results instead of the table")
    p.add_argument("--cache-dir", help="where generated benchmark checkpoints are kept (default .cache/bench)")
    p.set_defaults(handler=_handler)
