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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

MAX_REQUESTS_PER_CLIENT = 10_000
TEXTS = ["The capital of France is [MASK].", "She worked as a [MASK].", "The [MASK] was very good."]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _drive(url: str, clients: int, seconds: float, api: str = "/fill_mask", inputs: list[tuple] | None = None,
           pool: list[Any] | None = None) -> tuple[list[float], list[str], list[str], float]:
    """``clients`` threads call ``api`` back to back for ``seconds``: (latencies of answers, busy, other errors, elapsed).

    ``pool``: one ``gradio_client.Client`` per thread, made beforehand (so repeated slices do not time client set-up).
    """
    from gradio_client import Client

    inputs = inputs or [(t, 5, "") for t in TEXTS]
    ok: list[float] = []
    busy: list[str] = []
    other: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(n: int) -> None:
        c = pool[n] if pool is not None else Client(url, verbose=False)
        for i in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= stop_at:
                return
            t0 = time.perf_counter()
            try:
                c.predict(*inputs[(n + i) % len(inputs)], api_name=api)
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
    return ok, busy, other, time.monotonic() - t0


def _summary(ok: list[float], busy: list[str], other: list[str], elapsed: float, clients: int) -> dict[str, Any]:
    lat = sorted(ok)
    return {
        "clients": clients, "seconds": round(elapsed, 1), "ok": len(ok), "busy": len(busy), "errors": len(other),
        "error_examples": other[:3], "req_per_s": round(len(ok) / elapsed, 2) if elapsed else 0.0,
        "p50_ms": round(1000 * statistics.median(lat), 1) if lat else None,
        "p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
    }


def _phase(url: str, clients: int, seconds: float) -> dict[str, Any]:
    return _summary(*_drive(url, clients, seconds), clients)


def _start_server(port: int, concurrency: int, queue_size: int, mlm: str | None, sentiment: str | None) -> Any:
    """``python app.py`` in its own process, as deployed, so its memory is measured apart from the clients."""
    env = {"BERTDEMO_QUEUE_CONCURRENCY": str(concurrency), "BERTDEMO_FAST_CONCURRENCY": str(concurrency),
           "BERTDEMO_QUEUE_MAX_SIZE": str(queue_size)}
    if mlm:
        env["BERTDEMO_MLM_MODEL"] = mlm
    if sentiment:
        env["BERTDEMO_SENTIMENT_MODEL"] = sentiment
    return start_app(port, env)


def start_app(port: int, env: dict[str, str], command: list[str] | None = None, wait_s: float = 180) -> Any:
    """A server process (default ``python app.py``) on 127.0.0.1:``port`` with ``env`` added, once it listens."""
    return wait_listening(spawn(port, env, command), port, wait_s)


def spawn(port: int, env: dict[str, str], command: list[str] | None = None) -> Any:
    """Start a server process (default ``python app.py``) without waiting for it to listen.

    Its stderr goes to an unnamed temporary file, not a pipe: nobody reads a pipe while the load runs,
    and a server that writes a warning per request (gradio's JSON output does, in the plain app) blocks
    for ever once the pipe's 64 KiB buffer is full. :func:`last_words` reads the file's end.
    """
    import os
    import subprocess
    import tempfile

    full_env = {**os.environ, "BERTDEMO_PORT": str(port), "BERTDEMO_HOST": "127.0.0.1", **env}
    root = Path(__file__).resolve().parent.parent
    log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the process; stop() closes it)
    proc = subprocess.Popen(command or [sys.executable, str(root / "app.py")], env=full_env, stdout=subprocess.DEVNULL,
                            stderr=log, cwd=str(root))
    proc.log = log  # type: ignore[attr-defined]
    return proc


def last_words(proc: Any, chars: int = 500) -> str:
    """The end of what a process started by :func:`spawn` wrote to stderr."""
    log = getattr(proc, "log", None)
    if log is None:
        return ""
    log.seek(0)
    return log.read().decode(errors="replace")[-chars:]


def wait_listening(proc: Any, port: int, wait_s: float = 180) -> Any:
    """``proc`` once it accepts connections on ``port``; killed, with its last words, if it exits or takes too long."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited at start-up: {last_words(proc)}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.25)
    proc.kill()
    raise RuntimeError(f"the app did not start listening within {wait_s:.0f} s")


def stop(proc: Any) -> None:
    """Terminate a server started here (its own process only), then kill it if it lingers."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except Exception:
        proc.kill()
        proc.wait(timeout=20)
    if getattr(proc, "log", None) is not None:
        proc.log.close()


HTTP_TASKS = ("fill-mask", "nsp", "sentiment")
NOOP = "no-op gradio app (ceiling)"  # the same endpoints answering a constant: what gradio + the clients allow


HTTP_CLIENTS = ("rest", "gradio_client")  # benchmarks.restclient (default) or gradio's own Python client


def make_client(url: str, kind: str = "rest") -> Any:
    """One client of ``kind`` for ``url``; both have ``predict(*args, api_name=...)``."""
    if kind == "rest":
        from benchmarks.restclient import RestClient

        return RestClient(url)
    if kind == "gradio_client":
        from gradio_client import Client

        return Client(url, verbose=False)
    raise ValueError(f"unknown HTTP client {kind!r}; one of {', '.join(HTTP_CLIENTS)}")


def http_compare(mlm: str, sentiment: str, sides: dict[str, dict[str, str]], tasks: Sequence[str] = HTTP_TASKS,
                 clients: int = 16, seconds: float = 10.0, rounds: int = 2,
                 log: Callable[[str], None] = print, ceiling: bool = True, client: str = "rest") -> list[dict[str, Any]]:
    """The plain pipeline app vs bertdemo's app (one per entry of ``sides``: label -> extra BERTDEMO_* env), over HTTP.

    Every server runs in its own process with the same weights; the same ``clients`` client threads
    (``client``: :mod:`benchmarks.restclient` or ``gradio_client``, made once per server) call one task for
    ``seconds`` per slice, the servers in turn (plain, app, plain, app, ...) for ``rounds`` rounds, so
    machine noise hits every side alike. One row per task and side, with req/s, p50/p95 latency, the ratio
    to the plain app in the same run, and CPU ms per request of the server and of the clients; a no-op
    gradio app with the same endpoints is the ceiling the harness allows here.
    """
    from benchmarks.workload import FILL, NSP, SENTIMENT

    calls = {"fill-mask": ("/fill_mask", [(t, 5, "") for t in FILL]),
             "nsp": ("/next_sentence", [tuple(p) for p in NSP]),
             "sentiment": ("/sentiment", [(t,) for t in SENTIMENT])}
    procs: dict[str, Any] = {}
    try:
        ports = {label: _free_port() for label in ["plain", *sides, *([NOOP] if ceiling else [])]}
        for label, extra in (("plain", []), *([(NOOP, ["--noop"])] if ceiling else [])):
            procs[label] = spawn(ports[label], {}, [sys.executable, "-m", "benchmarks.plainapp", "--mlm", mlm,
                                                    "--sentiment", sentiment, "--port", str(ports[label]), *extra])
        for label, env in sides.items():
            procs[label] = spawn(ports[label], {"BERTDEMO_MLM_MODEL": mlm, "BERTDEMO_SENTIMENT_MODEL": sentiment,
                                                "BERTDEMO_QUEUE_MAX_SIZE": str(max(64, 4 * clients)), **env})
        for label, proc in procs.items():
            wait_listening(proc, ports[label], 300)
        urls = {label: f"http://127.0.0.1:{port}/" for label, port in ports.items()}
        pools = {label: [make_client(url, client) for _ in range(clients)] for label, url in urls.items()}
        for pool in pools.values():  # warm-up: first requests load lazily built parts
            for task in tasks:
                api, inputs = calls[task]
                for args in inputs[:2]:
                    pool[0].predict(*args, api_name=api)
        rows: list[dict[str, Any]] = []
        for task in tasks:
            api, inputs = calls[task]
            acc = {label: ([], [], [], 0.0) for label in urls}
            cpu = {label: [0.0, 0.0] for label in urls}  # CPU seconds of (server, this client process)
            for _ in range(rounds):
                for label in urls:
                    before = (_cpu_s(procs[label].pid), _cpu_s(None))
                    ok, busy, other, elapsed = _drive(urls[label], clients, seconds, api, inputs, pools[label])
                    cpu[label][0] += _cpu_s(procs[label].pid) - before[0]
                    cpu[label][1] += _cpu_s(None) - before[1]
                    a = acc[label]
                    acc[label] = (a[0] + ok, a[1] + busy, a[2] + other, a[3] + elapsed)
            plain = _summary(*acc["plain"], clients)
            for label in urls:
                summ = _summary(*acc[label], clients)
                ratio = summ["req_per_s"] / plain["req_per_s"] if plain["req_per_s"] else None
                n = max(1, summ["ok"])
                rows.append({"task": task, "side": label, **summ, "ratio_vs_plain": None if ratio is None else round(ratio, 2),
                             "server_cpu_ms_per_req": round(1000 * cpu[label][0] / n, 1),
                             "client_cpu_ms_per_req": round(1000 * cpu[label][1] / n, 1)})
                log(f"  http {task:<9} {label:<24} {summ['req_per_s']:>7} req/s  p95 {summ['p95_ms']} ms  "
                    f"errors {summ['errors']} busy {summ['busy']}  x{rows[-1]['ratio_vs_plain']}  CPU ms/req server "
                    f"{rows[-1]['server_cpu_ms_per_req']} client {rows[-1]['client_cpu_ms_per_req']}")
        return rows
    finally:
        for proc in procs.values():
            stop(proc)


def _cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` (``None``: this one, all its threads)."""
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


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
        stop(proc)
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
