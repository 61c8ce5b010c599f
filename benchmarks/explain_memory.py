"""Server memory under maximum-length attribution work (RSS used to stay at its peak after attributions).

    python -m benchmarks.explain_memory                          # 20 sequential Explain calls
    python -m benchmarks.explain_memory --clients 12 --seconds 45  # 12 clients on /explain and /chat at once

Starts ``python app.py`` on loopback, prints warm-up RSS, the peak during the load, RSS right after,
and after 20 s idle (MiB). With ``--clients``, half the clients call ``/explain`` and half ``/chat``
(which explains a review too) with a 4,990-character text for ``--seconds``; the server's one
attribution limit (``attribution_concurrency``) makes them queue. The server is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

PORT = 7871
CALLS = 20
TEXT = ("The film was long and the plot slow, but the acting was superb and the music moving. " * 60)[:4990]


def _client(url: str) -> object:
    from gradio_client import Client

    for _ in range(120):
        try:
            return Client(url, verbose=False)
        except Exception:
            time.sleep(1)
    raise SystemExit("the app did not start")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=0, help="concurrent clients (0: sequential Explain calls)")
    ap.add_argument("--seconds", type=float, default=45.0, help="how long the concurrent clients run")
    ap.add_argument("--port", type=int, default=PORT)
    args = ap.parse_args(argv)
    url = f"http://127.0.0.1:{args.port}/"
    env = dict(os.environ, GRADIO_SERVER_PORT=str(args.port), GRADIO_SERVER_NAME="127.0.0.1",
               GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error",
               TOKENIZERS_PARALLELISM="false")
    server = subprocess.Popen([sys.executable, "app.py"], cwd=str(Path(__file__).resolve().parent.parent), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = _client(url)
        proc = psutil.Process(server.pid)

        def rss() -> float:
            return proc.memory_info().rss / 2**20

        client.predict("A short warm-up text that is fine.", api_name="/sentiment")  # type: ignore[attr-defined]
        warm = peak = rss()
        t0 = time.time()
        counts = {"ok": 0, "errors": 0}
        if args.clients <= 0:
            for _ in range(CALLS):
                client.predict(TEXT, api_name="/explain")  # type: ignore[attr-defined]
                counts["ok"] += 1
                peak = max(peak, rss())
        else:
            stop = time.time() + args.seconds
            lock = threading.Lock()

            def work(i: int) -> None:
                c = _client(url)
                while time.time() < stop:
                    try:
                        if i % 2:
                            c.predict(TEXT, [], api_name="/chat")  # type: ignore[attr-defined]
                        else:
                            c.predict(TEXT, "integrated_gradients", api_name="/explain")  # type: ignore[attr-defined]
                        key = "ok"
                    except Exception:
                        key = "errors"
                    with lock:
                        counts[key] += 1

            threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(args.clients)]
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                peak = max(peak, rss())
                time.sleep(0.2)
        after = rss()
        time.sleep(20)
        idle = rss()
        mode = f"{args.clients} clients for {args.seconds:.0f} s" if args.clients else f"{CALLS} sequential Explain calls"
        print(f"{mode}: warm {warm:.0f} MiB, peak {peak:.0f}, right after {after:.0f}, after 20 s idle {idle:.0f} "
              f"({counts['ok']} answers, {counts['errors']} errors, {time.time() - t0:.0f} s)")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
