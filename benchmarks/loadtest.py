"""Bounded load test of the app over HTTP on loopback (issue: reliability under load).

Starts the real app (``python app.py``, its own process) on a free 127.0.0.1 port, then runs phases of gradio_client
threads calling ``/fill_mask`` for a fixed time each:
0. a warm-up at twice the capacity (half the time), so allocator and connection pools settle;
1. below capacity (clients <= queue concurrency + queue size): expect zero errors;
2. twice the capacity: expect clear "queue is full"/busy answers, no other errors, a server that
   still answers afterwards, and the server's memory after the run within a small margin of its memory after warm-up (no leak).
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


def _start_server(port: int, concurrency: int, queue_size: int, mlm: str | None, sentiment: str | None) -> Any:
    """``python app.py`` in its own process, as deployed, so its memory is measured apart from the clients."""
    import os
    import subprocess

    env = {**os.environ, "BERTDEMO_PORT": str(port), "BERTDEMO_HOST": "127.0.0.1",
           "BERTDEMO_QUEUE_CONCURRENCY": str(concurrency), "BERTDEMO_QUEUE_MAX_SIZE": str(queue_size)}
    if mlm:
        env["BERTDEMO_MLM_MODEL"] = mlm
    if sentiment:
        env["BERTDEMO_SENTIMENT_MODEL"] = sentiment
    app = Path(__file__).resolve().parent.parent / "app.py"
    proc = subprocess.Popen([sys.executable, str(app)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited at start-up: {proc.stderr.read().decode(errors='replace')[-500:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.25)
    proc.kill()
    raise RuntimeError("the app did not start listening within 180 s")


def _server_rss_mb(proc: Any) -> float:
    import psutil

    return psutil.Process(proc.pid).memory_info().rss / 2**20


def run(seconds: float, concurrency: int, queue_size: int, mlm: str | None, sentiment: str | None) -> dict[str, Any]:
    """Warm-up at 2x capacity, then half capacity, then 2x capacity again; server RSS after each."""
    from gradio_client import Client

    port = _free_port()
    proc = _start_server(port, concurrency, queue_size, mlm, sentiment)
    url = f"http://127.0.0.1:{port}/"
    capacity = concurrency + queue_size
    try:
        Client(url, verbose=False).predict(TEXTS[0], 5, "", api_name="/fill_mask")
        rss_start = _server_rss_mb(proc)
        warm = _phase(url, 2 * capacity, seconds / 2)
        rss_warm = _server_rss_mb(proc)
        below = _phase(url, max(1, capacity // 2), seconds)
        over = _phase(url, 2 * capacity, seconds)
        time.sleep(1.0)
        after_ok = Client(url, verbose=False).predict(TEXTS[0], 5, "", api_name="/fill_mask") is not None
        rss_end = _server_rss_mb(proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except Exception:
            proc.kill()
    return {
        "capacity": capacity, "queue_concurrency": concurrency, "queue_max_size": queue_size,
        "warm_up": warm, "below_capacity": below, "over_capacity": over, "serves_after": after_ok,
        "server_rss_mb_start": round(rss_start, 1), "server_rss_mb_after_warm_up": round(rss_warm, 1),
        "server_rss_mb_end": round(rss_end, 1), "rss_growth_after_warm_up_mb": round(rss_end - rss_warm, 1),
        "model": mlm or "bundled (assets/models)",
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
    print(f"serves afterwards: {res['serves_after']}; server RSS {res['server_rss_mb_start']} MB at start, "
          f"{res['server_rss_mb_after_warm_up']} MB after warm-up, {res['server_rss_mb_end']} MB at the end "
          f"({res['rss_growth_after_warm_up_mb']:+} MB after warm-up)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=2)
    healthy = res["below_capacity"]["errors"] == 0 and res["over_capacity"]["errors"] == 0 and res["serves_after"]
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
