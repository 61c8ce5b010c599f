"""App start to first answer, per precision: ``python app.py`` until its first ``/fill_mask`` answer over HTTP.

    python -m benchmarks.startup --runs 3 --precisions fp32 auto
    python -m benchmarks.startup --runs 5 --precisions auto --checkouts /tmp/before .   # before/after a change

Runs alternate between the precisions and checkouts (each runs its own ``app.py`` and ``bertdemo``), so a
machine's load hits all alike; prints each run's seconds and the server's RSS at that moment, and the
median per side. Loopback only; every server is stopped.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def once(precision: str, checkout: Path = ROOT) -> tuple[float, float]:
    """Seconds from spawning ``python app.py`` (of ``checkout``) to its first fill-mask answer, and its RSS (MiB) then."""
    from gradio_client import Client

    port = _port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "BERTDEMO_PRECISION": precision, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    server = subprocess.Popen([sys.executable, "app.py"], cwd=str(checkout), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"the app exited at start-up ({precision})")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/config", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        Client(f"http://127.0.0.1:{port}/", verbose=False).predict("Paris is the [MASK] of France.", 5, "",
                                                                   api_name="/fill_mask")
        return time.perf_counter() - t0, psutil.Process(server.pid).memory_info().rss / 2**20
    finally:
        server.terminate()
        server.wait(30)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--precisions", nargs="+", default=["fp32", "auto"])
    ap.add_argument("--checkouts", nargs="+", type=Path, default=[ROOT],
                    help="folders with an app.py to compare (e.g. a git worktree of an older commit)")
    args = ap.parse_args(argv)
    sides = [(p, c.resolve()) for c in args.checkouts for p in args.precisions]
    seconds: dict[str, list[float]] = {}
    for run in range(args.runs):
        for p, checkout in sides:
            label = p if len(args.checkouts) == 1 else f"{checkout} {p}"
            s, rss = once(p, checkout)
            seconds.setdefault(label, []).append(s)
            print(f"run {run + 1} {label}: {s:.1f} s, RSS {rss:.0f} MiB, load average {os.getloadavg()[0]:.1f}", flush=True)
    for label, xs in seconds.items():
        print(f"{label}: median {statistics.median(xs):.1f} s over {len(xs)} runs ({', '.join(f'{x:.1f}' for x in xs)})")


if __name__ == "__main__":
    main()
