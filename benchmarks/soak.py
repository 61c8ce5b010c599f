"""Soak test: the real app under mixed traffic, hostile requests included, for a bounded time (loopback only).

    python -m benchmarks.soak --minutes 30 --out artifacts/soak      # writes soak.csv, soak.png, summary.json

Starts ``python app.py`` on a free 127.0.0.1 port with its files in a private folder and a short file
lifetime (``--file-ttl``, so expiry is exercised within the run), then runs ``--clients`` threads for
``--minutes``. Each loop picks one request from a fixed mix: fill mask, next sentence, sentiment, a
maximum-length Explain, chat, a CSV upload with formula cells, a small audit every ``--audit-every``
seconds from the first client, and hostile
requests each with a known right answer (a 200 MB declared body -> 413, a wrong-type payload -> a clear
error, path traversal -> 403/404, a 300-column CSV audit -> refused before queueing, script tags -> escaped
text). A request whose answer is not the expected one counts as an unexpected error.
Every ``--every`` seconds it samples the server's RSS, open files, threads and disk use of its folder,
with the counts so far. The server is stopped at the end; traffic never leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
LONG = ("The film was long and the plot slow, but the acting was superb and the music moving. " * 60)[:4990]
FORMULA_CSV = "text\n=cmd|' /C calc'!A0\n+1+1 was fine\n@SUM(1,1) bad\ni loved it\n"
WIDE_CSV = ",".join(f"g{i}" for i in range(300)) + ",text\n" + ",".join("a" for _ in range(300)) + ",hello\n"
FAST = ("fill_mask", "next_sentence", "sentiment")


@dataclass
class Sample:
    """One row of the soak's time series."""

    t_s: float
    rss_mib: float
    open_fds: int
    sockets: int
    threads: int
    disk_kib: float
    requests: int
    unexpected: int
    busy: int
    fast_p95_ms: float | None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sockets(pid: int) -> int:
    """How many of the process's descriptors are sockets (Linux; 0 elsewhere)."""
    count = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
            except OSError:
                continue
    except OSError:
        return 0
    return count


def _disk_kib(folder: Path) -> float:
    total = 0
    for p in folder.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            continue
    return total / 1024


class Traffic:
    """The request mix; each call returns "ok", "busy" or "unexpected: <what>"."""

    def __init__(self, url: str, work: Path) -> None:
        from gradio_client import Client

        self.url = url
        self.client = Client(url, verbose=False)
        self.formula = work / "formulas.csv"
        self.formula.write_text(FORMULA_CSV, encoding="utf-8")
        self.wide = work / "wide.csv"
        self.wide.write_text(WIDE_CSV, encoding="utf-8")

    def fill_mask(self) -> str:
        out = self.client.predict("Paris is the [MASK] of France.", 5, "", api_name="/fill_mask")
        return "ok" if out[0]["confidences"] else "unexpected: no answers"

    def next_sentence(self) -> str:
        out = self.client.predict("I went to the bakery.", "They had run out of bread.", api_name="/next_sentence")
        return "ok" if out[0]["confidences"] else "unexpected: no answer"

    def sentiment(self) -> str:
        out = self.client.predict("I loved this movie, the acting was wonderful.", api_name="/sentiment")
        return "ok" if out[0]["label"] else "unexpected: no label"

    def explain(self) -> str:
        out = self.client.predict(LONG, "integrated_gradients", api_name="/explain")
        return "ok" if out[2] else "unexpected: no attributions"

    def chat(self) -> str:
        history, _ = self.client.predict(random.choice(["hello", "the [MASK] sat on the mat.", LONG[:800],
                                                        "<script>alert(1)</script> what a film"]), [], api_name="/chat")
        text = json.dumps(history)
        return "unexpected: unescaped script" if "<script>" in text else "ok"

    def csv_upload(self) -> str:
        from gradio_client import handle_file

        _preview, download, _note = self.client.predict(handle_file(str(self.formula)), api_name="/sentiment_csv")
        with Path(download).open(encoding="utf-8") as f:
            cells = [row[0] for row in csv.reader(f)][1:]
        live = [c for c in cells if c[:1] in "=+-@\t\r"]
        return f"unexpected: live formula {live[0]!r}" if live else "ok"

    def small_audit(self) -> str:
        out = self.client.predict(["crows_pairs"], 5, None, "", "", False, None, api_name="/bias_audit")
        return "ok" if out else "unexpected: no result"

    # hostile requests, each with its right answer
    def huge_body(self) -> str:
        with socket.create_connection(self.url.split("//")[1].rstrip("/").split(":"), timeout=30) as sock:
            sock.sendall(b"POST /gradio_api/call/fill_mask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 200000000\r\n\r\n" + b'{"data": ["' + b"a" * 100_000)
            status = sock.recv(64).decode("latin-1").split(" ")[1]
        return "ok" if status == "413" else f"unexpected: status {status}"

    def wrong_type(self) -> str:
        try:
            self.client.predict({"not": "text"}, "five", [1, 2], api_name="/fill_mask")
        except Exception as err:
            return "ok" if "must be" in str(err) or "wrong type" in str(err) else f"unexpected: {str(err)[:80]}"
        return "unexpected: accepted a wrong type"

    def traversal(self) -> str:
        for path in ("/gradio_api/file=/etc/passwd", "/gradio_api/file=../../../../etc/passwd",
                     "/gradio_api/file=%2e%2e/%2e%2e/etc/hostname"):
            r = httpx.get(self.url.rstrip("/") + path, timeout=30)
            if r.status_code not in (403, 404) or "root:" in r.text:
                return f"unexpected: {path} -> {r.status_code}"
        return "ok"

    def wide_audit(self) -> str:
        from gradio_client import handle_file

        try:
            self.client.predict(["user_data"], 5, handle_file(str(self.wide)), ",".join(f"g{i}" for i in range(300)),
                                "", False, None, api_name="/bias_audit")
        except Exception as err:
            return "ok" if "column" in str(err).lower() else f"unexpected: {str(err)[:80]}"
        return "unexpected: a 300-column audit was accepted"


MIX = [("fill_mask", 6), ("next_sentence", 4), ("sentiment", 4), ("explain", 1), ("chat", 2), ("csv_upload", 1),
       ("huge_body", 1), ("wrong_type", 1), ("traversal", 1), ("wide_audit", 1)]


def _start(port: int, work: Path, ttl: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_TEMP_DIR": str(work / "app-files"), "BERTDEMO_FILE_TTL_S": str(ttl),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error",
           "TOKENIZERS_PARALLELISM": "false"}
    for key in ("BERTDEMO_PORT", "BERTDEMO_HOST", "BERTDEMO_OUTPUT_DIR"):
        env.pop(key, None)
    with (work / "server.log").open("wb") as log:  # the server's own account of errors, read at the end
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=str(ROOT), env=env, stdout=log, stderr=log)
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the app exited at start-up")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/config", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the app did not start within 180 s")


def run(minutes: float, clients: int, every: float, ttl: int, audit_every: float, out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bertdemo-soak-"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    server = _start(port, work, ttl)
    proc = psutil.Process(server.pid)
    counts: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    fast_ms: list[float] = []
    lock = threading.Lock()
    t0 = time.time()
    stop_at = t0 + minutes * 60
    names = [n for n, w in MIX for _ in range(w)]

    def client(i: int) -> None:
        rnd = random.Random(i)
        traffic = Traffic(url, work)
        # one visitor runs the audits (a second one from the same address would be refused as promised)
        next_audit = time.time() + audit_every / 2 if i == 0 else float("inf")
        while time.time() < stop_at:
            name = "small_audit" if time.time() >= next_audit else rnd.choice(names)
            if name == "small_audit":
                next_audit = time.time() + audit_every
            started = time.perf_counter()
            try:
                outcome = getattr(traffic, name)()
            except Exception as err:
                msg = str(err)
                outcome = ("busy" if "queue is full" in msg.lower() or "busy" in msg.lower()
                           else f"unexpected: {type(err).__name__}: {msg[:100]}")
            with lock:
                counts["requests"] += 1
                if outcome == "busy":
                    counts["busy"] += 1
                elif outcome != "ok":
                    counts["unexpected"] += 1
                    problems[f"{name}: {outcome}"] += 1
                elif name in FAST:
                    fast_ms.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    samples: list[Sample] = []
    try:
        while True:
            with lock:
                window = sorted(fast_ms)
                fast_ms.clear()
                snapshot = dict(counts)
            samples.append(Sample(round(time.time() - t0, 1), round(proc.memory_info().rss / 2**20, 1),
                                  proc.num_fds(), _sockets(proc.pid), proc.num_threads(),
                                  round(_disk_kib(work / "app-files"), 1), snapshot.get("requests", 0),
                                  snapshot.get("unexpected", 0), snapshot.get("busy", 0),
                                  round(window[int(0.95 * (len(window) - 1))], 1) if window else None))
            print(json.dumps(asdict(samples[-1])), flush=True)
            if time.time() >= stop_at and not any(t.is_alive() for t in threads):
                break
            time.sleep(every)
    finally:
        server.terminate()
        server.wait(15)
    with (out / "soak.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(samples[0])))
        writer.writeheader()
        writer.writerows(asdict(s) for s in samples)
    half = [s for s in samples if s.t_s >= samples[-1].t_s / 2]
    summary = {
        "minutes": minutes, "clients": clients, "file_ttl_s": ttl, "requests": counts["requests"],
        "unexpected_errors": counts["unexpected"], "busy": counts["busy"], "problems": dict(problems),
        "rss_mib": {"first": samples[0].rss_mib, "max": max(s.rss_mib for s in samples), "last": samples[-1].rss_mib,
                    "second_half_min": min(s.rss_mib for s in half), "second_half_max": max(s.rss_mib for s in half)},
        "open_fds_max": max(s.open_fds for s in samples), "threads_max": max(s.threads for s in samples),
        "disk_kib": {"max": max(s.disk_kib for s in samples), "last": samples[-1].disk_kib},
        "cpu": _cpu_flags(),
        "server_log_errors": [line for line in (work / "server.log").read_text(errors="replace").splitlines()
                              if "error" in line.lower() or "traceback" in line.lower()][:20],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    _plot(samples, out / "soak.png", summary)
    return summary


def _cpu_flags() -> str:
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0]
    except (OSError, IndexError):
        return "unknown"
    return " ".join(f for f in ("amx_bf16", "avx512_bf16", "avx512_vnni") if f" {f}" in flags) or "none of amx/avx512 bf16"


def _plot(samples: list[Sample], path: Path, summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s.t_s / 60 for s in samples]
    fig, axes = plt.subplots(4, 1, figsize=(8, 8), sharex=True)
    series = [("server RSS (MiB)", [s.rss_mib for s in samples]),
              ("open descriptors (all / sockets)", [s.open_fds for s in samples]),
              ("disk used by the app's files (KiB)", [s.disk_kib for s in samples]),
              ("unexpected errors (cumulative)", [s.unexpected for s in samples])]
    for ax, (label, ys) in zip(axes, series, strict=True):
        ax.plot(minutes, ys)
        if label.startswith("open descriptors"):
            ax.plot(minutes, [s.sockets for s in samples], linestyle="--")
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylim(bottom=0)
    axes[-1].set_xlabel("minutes")
    fig.suptitle(f"bertdemo soak: {summary['clients']} clients, {summary['requests']} requests, "
                 f"{summary['unexpected_errors']} unexpected errors, file lifetime {summary['file_ttl_s']} s", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Soak test of the app on loopback (bounded in time).")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--file-ttl", type=int, default=300, help="the app's file lifetime (BERTDEMO_FILE_TTL_S)")
    ap.add_argument("--audit-every", type=float, default=120.0, help="seconds between small audits (one client)")
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "soak")
    args = ap.parse_args(argv)
    if args.minutes <= 0 or args.minutes > 240 or args.clients < 1 or args.clients > 64:
        raise SystemExit("--minutes must be in (0, 240] and --clients in [1, 64]")
    summary = run(args.minutes, args.clients, args.every, args.file_ttl, args.audit_every, args.out)
    print(json.dumps(summary, indent=2))
    return 1 if summary["unexpected_errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
