"""``python -m benchmarks.bench``: bertdemo's service side by side with what a user would otherwise write.

One run measures, prints a table and writes ``benchmarks/results.json``:

1. **serving** - fill-mask, next-sentence and sentiment under 1, 4 and 16 concurrent client
   threads for a bounded time (req/s, p50/p95 latency): the service (micro-batched) vs the plain
   baseline (a ``transformers.pipeline('fill-mask')`` / a direct model call per request, fp32, one
   request at a time), on the bundled shape and the bert-base shape. Baseline and bertdemo run in
   alternating slices (ABAB...) so machine noise hits both alike; ratio = bertdemo / baseline.
2. **what pays** - service variants on the large shape at 16 clients (micro-batching off, wait
   times, int8, bf16), and int8's and bf16's top-1 agreement with fp32.
3. **audit** - CrowS-Pairs-style pseudo-log-likelihood of N sentence pairs: the service's batched
   ``token_logprobs`` vs the straightforward loop (one forward per masked copy); scores must agree
   to 1e-4 (the command exits 1 if they do not).
4. **start-up** - a fresh ``python -m bertdemo fill ...`` process to its answer, and its peak RSS.
5. **the limit** - achieved FLOP/s of the batched bert-base forward (analytic FLOP count) vs a
   plain 2048x2048 fp32 matmul on the same machine.
6. **end to end over HTTP** - ``python app.py`` vs a plain pipeline app (:mod:`benchmarks.plainapp`),
   16 ``gradio_client`` threads, same weights, slices alternating, with the precision ``auto`` picks
   and the other of fp32/bf16 forced (``--only http`` runs just this).

Checkpoints are random-weight (speed depends on shape, not on weights), built once with
:mod:`benchmarks.modelfactory` under ``--cache-dir``; the bundled models in ``assets/models`` are used
instead of the bert-tiny stand-in as soon as they exist. ``--quick`` (smoke test, < 1 minute) uses
tiny shapes and short slices. Nothing here runs at import time and torch is imported lazily.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.limit import bench_limit, fp32_ceilings, serving_gflops
from benchmarks.load import Baseline, _free, make_service
from benchmarks.loadtest import HTTP_CLIENTS
from benchmarks.report import render, targets
from benchmarks.sections import bench_agreement, bench_audit, bench_http, bench_pays, bench_serving, bench_startup
from benchmarks.workload import FULL, QUICK, Profile, prepare_shapes
from bertdemo.config import PROJECT_ROOT


# ---- command ----------------------------------------------------------------------------------
def run_bench(profile: Profile, cache: Path, log: Callable[[str], None],
              command: str = "python -m benchmarks.bench", only: str = "") -> dict[str, Any]:
    """Every section on ``profile``'s shapes; ``only="http"``: just the end-to-end HTTP comparison,
    ``only="inprocess"``: everything but it."""
    import torch
    import transformers

    from bertdemo.precision import cpu_flags, cpu_name, flag_summary

    t_start = time.perf_counter()
    log(f"benchmarks.bench ({profile.name}): preparing checkpoints under {cache}")
    shapes = prepare_shapes(profile, cache)
    results: dict[str, Any] = {
        "meta": {"profile": profile.name, "date": time.strftime("%Y-%m-%d %H:%M %Z"), "command": command,
                 "machine": f"{platform.machine()} {cpu_name()}, {os.cpu_count()} logical CPUs, "
                            f"{_mem_gb()} GB RAM, {platform.system()} {platform.release()}",
                 "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
                 "torch_threads": torch.get_num_threads(), "slice_s": profile.slice_s, "rounds": profile.rounds,
                 "cpu_flags": flag_summary(cpu_flags()), "load_avg_start": round(os.getloadavg()[0], 2)},
        "shapes": [{"label": s.label, "source": s.source, "mlm": s.mlm, "sentiment": s.clf, "info": s.info} for s in shapes],
        "serving": [], "pays": [], "agreement": [], "audit": [], "startup": [], "limit": None, "http": [],
    }
    for k, shape in enumerate(shapes if only != "http" else []):
        large = k == len(shapes) - 1
        log(f"shape {shape.label}: loading baseline and service")
        base = Baseline(shape)
        svc = make_service(shape, precision="fp32")  # explicit: "auto" would pick bf16 for qualified weights
        svc.warm_up()
        results["serving"] += bench_serving(shape, profile, base, svc, log)
        int8 = make_service(shape, precision="int8")
        bf16 = make_service(shape, precision="bf16")
        results["agreement"].append(bench_agreement(shape, profile, svc, int8))
        results["agreement"].append(bench_agreement(shape, profile, svc, bf16, "bf16"))
        results["audit"].append(bench_audit(shape, profile.audit_pairs.get(shape.label, 4), svc, base, log))
        results["pays"] += bench_pays(shape, profile, base, svc, int8, log, bf16)
        if large:
            lim = bench_limit(shape, profile, svc, log)
            row = next(r for r in results["serving"] if r["shape"] == shape.label and r["task"] == "fill-mask"
                       and r["clients"] == 16)
            lim["serving_gflops"] = serving_gflops(shape, row["bertdemo"]["req_per_s"], svc.mlm.tokenizer)
            best_mm = max(t["matmul_gflops"] for t in lim["threads"].values())
            best_fwd = max(t["forward_fp32_gflops"] for t in lim["threads"].values())
            lim["best_matmul_gflops"], lim["best_forward_fp32_gflops"] = best_mm, best_fwd
            lim["forward_fraction_of_best_matmul"] = round(best_fwd / best_mm, 3)
            lim["serving_fraction_of_matmul"] = round(lim["serving_gflops"] / best_mm, 3) if lim["serving_gflops"] else None
            lim["fp32_ceilings"] = fp32_ceilings(shape, results["serving"], best_mm, svc.mlm.tokenizer)
            results["limit"] = lim
        _free(svc)
        _free(int8)
        _free(bf16)
        base.close()
        del base
        gc.collect()
    for shape in shapes if only != "http" else []:  # start-up last, with this process's models released
        runs = profile.startup_runs.get(shape.label, 0)
        if runs:
            results["startup"].append(bench_startup(shape, runs, log))
    for shape in shapes if only != "inprocess" else []:  # servers in their own processes, after ours are freed
        if shape.label in profile.http_seconds:
            log(f"shape {shape.label}: end to end over HTTP, the app vs the plain pipeline app")
            results["http"].append(bench_http(shape, profile, log))
    results["targets"] = targets(results)
    results["meta"]["bench_seconds"] = round(time.perf_counter() - t_start, 1)
    return results


def _mem_gb() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.0f}"
    except (OSError, ValueError, IndexError):
        pass
    return "?"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.bench [--quick] [--json] [--out FILE] [--cache-dir DIR]``; exit 1 if audit scores disagree."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="smoke-test run: tiny shapes, short slices (< 1 minute)")
    p.add_argument("--out", default="benchmarks/results.json", help="where to write the JSON results")
    p.add_argument("--json", action="store_true", help="print the JSON results instead of the table")
    p.add_argument("--cache-dir", help="where generated benchmark checkpoints are kept (default .cache/bench)")
    p.add_argument("--only", choices=["http", "inprocess"],
                   help="http: only the app vs the plain app over HTTP; inprocess: every section but that one")
    p.add_argument("--http-client", choices=HTTP_CLIENTS, default="rest",
                   help="the HTTP section's clients: rest (light, default) or gradio_client (gradio's own, heavy)")
    args = p.parse_args(argv)
    profile = dataclasses.replace(QUICK if args.quick else FULL, http_client=args.http_client)
    cache = Path(args.cache_dir) if args.cache_dir else PROJECT_ROOT / ".cache" / "bench"
    command = ("python -m benchmarks.bench" + (" --quick" if args.quick else "") + (f" --only {args.only}" if args.only else "")
               + (f" --http-client {args.http_client}" if args.http_client != "rest" else ""))

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    results = run_bench(profile, cache, log, command, args.only or "")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(render(results))
        print(f"\nwrote {out} ({results['meta']['bench_seconds']} s)")
    return 0 if all(a["identical_scores"] for a in results["audit"]) else 1


if __name__ == "__main__":
    sys.exit(main())
