"""Bounded load test of the app over HTTP on loopback (issue: reliability under load).

Starts the real app in-process on a free 127.0.0.1 port, then runs two phases of gradio_client
threads calling ``/fill_mask`` for a fixed time each:
1. below capacity (clients <= queue concurrency + queue size): expect zero errors;
2. twice the capacity: expect clear "queue is full"/busy answers, no other errors, a server that
   still answers afterwards, and memory back within a small margin (no leak).
Traffic goes to 127.0.0.1 only, and every loop is bounded in count and time.

    python benchmarks/loadtest.py [--seconds 20] [--concurrency 2] [--queue-size 8] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

MAX_REQUESTS_PER_CLIENT = 10_000
TEXTS = ["The capital of France is [MASK].", "She worked as a [MASK].", "The [MASK] was very good."]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _phase(url: str, clients: int, seconds: float) -> dict[str, Any]:
    from gradio_client import Client

    ok: list[float] = []
    busy: list[str] = []
    other: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(n: int) -> None:
        c = Client(url, verbose=False)
        for i in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= stop_at:
                return
            t0 = time.perf_counter()
            try:
                c.predict(TEXTS[(n + i) % len(TEXTS)], 5, "", api_name="/fill_mask")
                with lock:
                    ok.append(time.perf_counter() - t0)
            except Exception as err:
                msg = str(err).lower()
                with lock:
                    (busy if ("queue is full" in msg or "busy" in msg) else other).append(str(err)[:200])
                time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    elapsed = time.monotonic() - t0
    lat = sorted(ok)
    return {
        "clients": clients, "seconds": round(elapsed, 1), "ok": len(ok), "busy": len(busy), "errors": len(other),
        "error_examples": other[:3], "req_per_s": round(len(ok) / elapsed, 2),
        "p50_ms": round(1000 * statistics.median(lat), 1) if lat else None,
        "p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
    }


def run(seconds: float, concurrency: int, queue_size: int, mlm: str | None, sentiment: str | None) -> dict[str, Any]:
    from bertdemo.config import load_settings  # noqa: I001  (first: it sets the quiet/offline environment)
    from bertdemo.ui import build_app, launch_kwargs
    from gradio_client import Client

    settings = load_settings(queue_concurrency=concurrency, queue_max_size=queue_size, port=_free_port(),
                             mlm_model=mlm, sentiment_model=sentiment)
    demo = build_app(settings)
    kwargs = {**launch_kwargs(settings), "prevent_thread_lock": True, "quiet": True}
    demo.launch(**kwargs)
    url = f"http://127.0.0.1:{settings.port}/"
    try:
        Client(url, verbose=False).predict(TEXTS[0], 5, "", api_name="/fill_mask")  # warm
        capacity = concurrency + queue_size
        rss_before = _rss_mb()
        below = _phase(url, max(1, capacity // 2), seconds)
        over = _phase(url, 2 * capacity, seconds)
        time.sleep(1.0)
        after_ok = Client(url, verbose=False).predict(TEXTS[0], 5, "", api_name="/fill_mask") is not None
        rss_after = _rss_mb()
    finally:
        demo.close()
    return {
        "capacity": capacity, "queue_concurrency": concurrency, "queue_max_size": queue_size,
        "below_capacity": below, "over_capacity": over, "serves_after": after_ok,
        "rss_mb_before": round(rss_before, 1), "rss_mb_after": round(rss_after, 1),
        "rss_growth_mb": round(rss_after - rss_before, 1), "model": settings.mlm_model,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--queue-size", type=int, default=8)
    p.add_argument("--mlm-model")
    p.add_argument("--sentiment-model")
    p.add_argument("--json", help="also write the result to this file")
    args = p.parse_args(argv)
    res = run(args.seconds, args.concurrency, args.queue_size, args.mlm_model, args.sentiment_model)
    print(f"capacity {res['capacity']} (concurrency {res['queue_concurrency']} + queue {res['queue_max_size']})")
    print(f"{'phase':<16}{'clients':>8}{'ok':>7}{'busy':>7}{'errors':>8}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}")
    for name in ("below_capacity", "over_capacity"):
        r = res[name]
        print(f"{name:<16}{r['clients']:>8}{r['ok']:>7}{r['busy']:>7}{r['errors']:>8}{r['req_per_s']:>8}"
              f"{r['p50_ms']!s:>9}{r['p95_ms']!s:>9}")
    print(f"serves afterwards: {res['serves_after']}; RSS {res['rss_mb_before']} -> {res['rss_mb_after']} MB")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=2)
    healthy = res["below_capacity"]["errors"] == 0 and res["over_capacity"]["errors"] == 0 and res["serves_after"]
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
