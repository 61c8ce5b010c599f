"""Batching: length-bucketed minibatches, and a micro-batcher that groups concurrent requests.

Why: on a CPU one forward of 16 sentences costs far less than 16 forwards of one, so requests
that arrive together (app users, audit items) are run together. Bulk items are sorted by length
first so little compute goes to padding; a micro-batch of mixed lengths is packed into shared rows
by :mod:`bertdemo.tasks.forward`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

_STOP: Any = object()  # sentinel that ends a worker thread
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Encoded:
    """One tokenized model input. ``positions`` are token indices whose outputs are wanted."""

    input_ids: list[int]
    token_type_ids: list[int] | None = None
    positions: list[int] = field(default_factory=list)
    target_ids: list[int] | None = None  # with positions: return only these tokens' log-probs
    top_k: int | None = None  # with positions (no target_ids): only the k likeliest tokens per position
    truncated: bool = False  # the text was longer than the model reads and was cut

    def __len__(self) -> int:
        return len(self.input_ids)


def run_batched(items: Sequence[T], batch_size: int, fn: Callable[[list[T]], list[R]],
                key: Callable[[T], int] = len, on_batch: Callable[[int], None] | None = None) -> list[R]:
    """Apply ``fn`` to length-sorted minibatches and return results in the original order."""
    order = sorted(range(len(items)), key=lambda i: key(items[i]), reverse=True)
    results: list[Any] = [None] * len(items)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        for i, r in zip(idx, fn([items[i] for i in idx]), strict=True):
            results[i] = r
        if on_batch is not None:
            on_batch(len(idx))
    return results


class MicroBatcher:
    """Groups calls from many threads into one batched call made by a single worker thread.

    A caller's request waits at most ``wait_ms`` for companions; a batch never exceeds
    ``max_batch``. Errors in the batched function reach every caller of that batch.
    """

    always_wait = False  # True restores the plain policy (wait for companions before every batch)

    def __init__(self, fn: Callable[[list[Any]], list[Any]], max_batch: int = 32, wait_ms: float = 2.0,
                 name: str = "bertdemo-batcher") -> None:
        self._fn = fn
        self._max_batch = max_batch
        self._wait = wait_ms / 1000.0
        self._queue: queue.Queue[tuple[Any, Future]] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> Future:
        future: Future = Future()
        self._queue.put((item, future))
        return future

    def __call__(self, item: Any) -> Any:
        return self.submit(item).result()

    def close(self) -> None:
        """Stop the worker thread (after the requests already queued); idempotent."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        last = 1
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            # Wait for companions only when requests have been arriving together: a lone user is
            # served at once, while under load batches form as before (measured in bertdemo bench).
            deadline = time.monotonic() + (self._wait if (last > 1 or self.always_wait) else 0.0)
            while len(batch) < self._max_batch:
                remaining = deadline - time.monotonic()
                try:
                    nxt = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(nxt)
            last = len(batch)
            items = [b[0] for b in batch]
            try:
                results = self._fn(items)
            except BaseException as err:  # delivered to each waiting caller
                for _, fut in batch:
                    fut.set_exception(err)
                continue
            for (_, fut), res in zip(batch, results, strict=True):
                fut.set_result(res)
