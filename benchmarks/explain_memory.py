"""Server memory under maximum-length Explain calls (RSS used to stay at its peak after attributions).

    python -m benchmarks.explain_memory      # starts `python app.py` on port 7871, prints RSS figures

Warm-up RSS, the peak over 20 Explain calls on a 4,990-character text, RSS right after, and after 20 s
idle. Loopback only; the server is stopped at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

PORT = 7871
CALLS = 20
TEXT = ("The film was long and the plot slow, but the acting was superb and the music moving. " * 60)[:4990]


def main() -> None:
    from gradio_client import Client

    env = dict(os.environ, GRADIO_SERVER_PORT=str(PORT), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1",
               TRANSFORMERS_VERBOSITY="error", TOKENIZERS_PARALLELISM="false")
    server = subprocess.Popen([sys.executable, "app.py"], cwd=str(Path(__file__).resolve().parent.parent), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = None
        for _ in range(120):
            try:
                client = Client(f"http://127.0.0.1:{PORT}/", verbose=False)
                break
            except Exception:
                time.sleep(1)
        if client is None:
            raise SystemExit("the app did not start")
        proc = psutil.Process(server.pid)

        def rss() -> float:
            return proc.memory_info().rss / 2**20

        client.predict("A short warm-up text that is fine.", api_name="/sentiment")
        warm = peak = rss()
        t0 = time.time()
        for _ in range(CALLS):
            client.predict(TEXT, api_name="/explain")
            peak = max(peak, rss())
        after = rss()
        time.sleep(20)
        idle = rss()
        print(f"warm {warm:.0f} MiB, peak {peak:.0f}, after {CALLS} explains {after:.0f}, "
              f"after 20 s idle {idle:.0f} ({time.time() - t0:.0f} s)")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
