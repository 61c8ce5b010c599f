"""Load generation and the two sides: closed-loop client threads, the plain baseline, the service."""

from __future__ import annotations

import gc
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from benchmarks.workload import FILL, NSP, SENTIMENT, Shape
from bertdemo.tasks.forward import plan_batch


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
