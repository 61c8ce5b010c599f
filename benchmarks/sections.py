"""The measured sections: serving, what pays, int8 agreement, audit scoring, start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.load import (
    INPUTS,
    Baseline,
    Tally,
    _count_batches,
    _r,
    _warm,
    alwayswait_batcher_class,
    drive,
    make_service,
    percentile,
    service_calls,
)
from benchmarks.workload import CLIENTS, FILL, NSP, SENTIMENT, TASKS, TOLERANCE, Profile, Shape, crows_pairs
from bertdemo.audit.crows_pairs import shared_positions
from bertdemo.config import PROJECT_ROOT


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
               log: Callable[[str], None], bf16: Any = None) -> list[dict]:
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
        *([("bf16 (bf16 encoder, fp32 heads)", bf16, threads)] if bf16 is not None else []),
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


def bench_agreement(shape: Shape, profile: Profile, svc: Any, int8: Any, precision: str = "int8") -> dict[str, Any]:
    """Top-1 agreement of ``int8`` (a service in ``precision``) with fp32: fill-mask probes, NSP pairs, sentiment labels."""
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
            "precision": precision, "eligible_as_default": bool(fill and fill >= 0.99 and (agree(sa, sb) or 0) >= 0.99)}


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


def bench_audit(shape: Shape, pairs_n: int, svc: Any, base: Baseline, log: Callable[[str], None]) -> dict[str, Any]:
    tok = svc.mlm.tokenizer
    pairs = crows_pairs(pairs_n)
    ids_list, pos_list = [], []
    for s1, s2 in pairs:
        a, b = svc.tokenize(s1), svc.tokenize(s2)
        pa, pb = shared_positions(a, b)
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


def bench_http(shape: Shape, profile: Profile, log: Callable[[str], None]) -> dict[str, Any]:
    """End to end over HTTP: ``python app.py`` vs the plain pipeline app, same clients, same weights, one run.

    The app runs with the precision ``auto`` picks for this shape on this CPU, and beside it with the other of
    fp32/bf16 forced (when this CPU has native bf16), so each figure is a ratio to the plain app in the same run.
    """
    from benchmarks.loadtest import http_compare
    from bertdemo.models import weights_sha256
    from bertdemo.precision import cpu_flags, decide_precision, flag_summary, native_bf16, read_qualification

    flags = cpu_flags()
    auto = decide_precision("auto", "cpu", "pretraining", weights_sha256(Path(shape.mlm)), flags, read_qualification())
    sides = {f"bertdemo auto ({auto.precision})": {}}
    if native_bf16(flags) and profile.http_references:
        other = "fp32" if auto.precision == "bf16" else "bf16"
        sides[f"bertdemo {other} (forced)"] = {"BERTDEMO_PRECISION": other}
    load_before = os.getloadavg()[0]
    rows = http_compare(shape.mlm, shape.clf, sides, profile.http_tasks, profile.http_clients,
                        profile.http_seconds[shape.label], profile.http_rounds, log, profile.http_references,
                        profile.http_client)
    return {"shape": shape.label, "clients": profile.http_clients, "client": profile.http_client,
            "slice_s": profile.http_seconds[shape.label],
            "rounds": profile.http_rounds, "auto_precision": auto.precision, "auto_reason": auto.reason,
            "cpu_flags": flag_summary(flags), "load_avg_before": round(load_before, 2),
            "load_avg_after": round(os.getloadavg()[0], 2), "rows": rows}
