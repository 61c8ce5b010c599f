"""The printed table and the targets of a benchmark run."""

from __future__ import annotations

from typing import Any

from benchmarks.workload import TASKS


# ---- report -----------------------------------------------------------------------------------
def _f(x: Any, nd: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "NO"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    large = results["shapes"][1]["label"]
    out = []
    rows = {(r["shape"], r["task"], r["clients"]): r for r in results["serving"]}
    for task in TASKS:
        r16, r1 = rows.get((large, task, 16)), rows.get((large, task, 1))
        if r16 and r1:
            out.append({"target": f"{large} {task}: throughput at 16 clients >= 4x baseline", "value": r16["ratio"],
                        "met": bool(r16["ratio"] and r16["ratio"] >= 4)})
            p95, p50 = r16["bertdemo"]["p95_ms"], r1["baseline"]["p50_ms"]
            out.append({"target": f"{large} {task}: p95 at 16 clients <= baseline p50 at 1 client",
                        "value": f"{_f(p95)} ms vs {_f(p50)} ms", "met": bool(p95 is not None and p50 and p95 <= p50)})
    for a in results["audit"]:
        out.append({"target": f"audit ({a['shape']}): >= 10x the loop, scores equal to 1e-4",
                    "value": f"x{a['speedup']}, max diff {a['max_abs_diff']:.1e}",
                    "met": bool(a["speedup"] and a["speedup"] >= 10 and a["identical_scores"])})
    for h in results.get("http", []):
        if h["shape"] != large:
            continue
        for r in h["rows"]:
            if r["side"] == "plain" or r["side"].startswith("no-op"):  # the references, not the app
                continue
            bf16 = "bf16" in r["side"]
            need = 4.0 if bf16 else 2.5
            out.append({"target": f"{large} {r['task']} over HTTP, {r['side']}: >= {need:g}x the plain app "
                                  f"({'native bf16' if bf16 else 'fp32'})",
                        "value": f"{_f(r['ratio_vs_plain'], 2)}x (p95 {_f(r['p95_ms'])} ms)",
                        "met": bool(r["ratio_vs_plain"] and r["ratio_vs_plain"] >= need)})
    for s in results["startup"]:
        if s["shape"] == "bundled":
            out.append({"target": "start-up to first answer (bundled) < 5 s, RSS < 1 GB",
                        "value": f"{s['median_s']} s, {s['peak_rss_mb']} MB",
                        "met": bool(s["median_s"] < 5 and s["peak_rss_mb"] < 1024)})
    return out


def render(results: dict[str, Any]) -> str:
    m = results["meta"]
    lines = [f"benchmarks.bench ({m['profile']}) - {m['date']} - {m['machine']}",
             f"CPU flags: {m.get('cpu_flags', '?')}; load average at start {m.get('load_avg_start', '?')}",
             f"torch {m['torch']} ({m['torch_threads']} threads), transformers {m['transformers']}; command: {m['command']}",
             ""]
    for s in results["shapes"]:
        lines.append(f"shape {s['label']}: {s['source']}; {s['info']}")
    lines += ["", "Serving (closed-loop clients; baseline = pipeline / direct model call, fp32, one request at a time;"
              " ratio = bertdemo req/s / baseline req/s)",
              "| shape | task | clients | baseline req/s | bertdemo req/s | ratio | baseline p50 / p95 ms"
              " | bertdemo p50 / p95 ms | mean batch | useful tokens |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["serving"]:
        b, s = r["baseline"], r["bertdemo"]
        lines.append(f"| {r['shape']} | {r['task']} | {r['clients']} | {_f(b['req_per_s'])} | {_f(s['req_per_s'])} | "
                     f"**{_f(r['ratio'], 2)}x** | {_f(b['p50_ms'])} / {_f(b['p95_ms'])} | "
                     f"{_f(s['p50_ms'])} / {_f(s['p95_ms'])} | {_f(s['mean_batch'])} | {_pct(s['useful_token_fraction'])} |")
    if results.get("pays"):
        lines += ["", "What pays (fill-mask; variants interleaved round-robin; ratio vs the baseline in the same cell)",
                  "| shape | clients | variant | req/s | vs baseline | p50 / p95 ms | mean batch |",
                  "|---|---:|---|---:|---:|---:|---:|"]
        for r in results["pays"]:
            lines.append(f"| {r['shape']} | {r['clients']} | {r['variant']} | {_f(r['req_per_s'])} | "
                         f"{_f(r['ratio_vs_baseline'], 2)}x | {_f(r['p50_ms'])} / {_f(r['p95_ms'])} | {_f(r['mean_batch'])} |")
    if results.get("agreement"):
        lines += ["", "int8 and bf16 vs fp32 top-1 agreement on the bench's sentences (a default needs >= 99%; bf16's "
                  "qualification on held-out text is bertdemo qualify-precision's)",
                  "| shape | weights | precision | fill-mask | NSP | sentiment | >= 99 % |", "|---|---|---|---:|---:|---:|---|"]
        for a in results["agreement"]:
            lines.append(f"| {a['shape']} | {a['weights']} | {a.get('precision', 'int8')} | "
                         f"{_pct(a['fill_mask_top1'])} ({a['fill_mask_probes']}) | "
                         f"{_pct(a['nsp_top1'])} ({a['nsp_pairs']}) | {_pct(a['sentiment_top1'])} ({a['sentiment_texts']}) | "
                         f"{_f(a.get('eligible_as_default', a.get('int8_eligible_as_default')))} |")
    if results["audit"]:
        lines += ["", "Audit: CrowS-Pairs-style PLL (shared tokens of each pair), batched service vs one forward per masked copy",
                  "| shape | pairs | masked copies | loop s | batched s | speedup | max abs diff | identical (1e-4) |",
                  "|---|---:|---:|---:|---:|---:|---:|---|"]
    for a in results["audit"]:
        lines.append(f"| {a['shape']} | {a['pairs']} | {a['masked_copies']} | {a['loop_s']:.2f} | {a['batched_s']:.2f} | "
                     f"**{_f(a['speedup'])}x** | {a['max_abs_diff']:.1e} | {_f(a['identical_scores'])} |")
    if results["startup"]:
        lines += ["", "Start-up: fresh `python -m bertdemo fill ...` to its answer (process exit), peak RSS of the child",
                  "| shape | runs (s) | median s | peak RSS MB |", "|---|---|---:|---:|"]
        for s in results["startup"]:
            runs = ", ".join(map(str, s["seconds"]))
            lines.append(f"| {s['shape']} | {runs} | {_f(s['median_s'], 2)} | {_f(s['peak_rss_mb'])} |")
    lim = results.get("limit")
    if lim:
        lines += ["", f"The limit: {lim['shape']} encoder forward, batch {lim['batch']} x {lim['tokens']} tokens "
                  f"({lim['forward_gflop']} GFLOP analytic) vs torch.mm 2048x2048 fp32",
                  "| threads | matmul GFLOP/s | forward fp32 ms | forward GFLOP/s | of matmul | int8 ms | int8 speedup | "
                  "matmul bf16 GFLOP/s | bf16 ms | bf16 speedup |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for n, r in lim["threads"].items():
            lines.append(f"| {n} | {r['matmul_gflops']} | {r['forward_fp32_ms']} | {r['forward_fp32_gflops']} | "
                         f"{r['forward_fp32_fraction_of_matmul']:.0%} | {r['forward_int8_ms']} | {r['int8_speedup']}x | "
                         f"{r.get('matmul_bf16_gflops', '-')} | {r.get('forward_bf16_ms', '-')} | "
                         f"{r.get('bf16_speedup', '-')}x |")
        if lim.get("best_matmul_gflops"):
            lines.append(f"Best of the thread settings: forward {lim['best_forward_fp32_gflops']} GFLOP/s vs matmul "
                         f"{lim['best_matmul_gflops']} GFLOP/s = {lim['forward_fraction_of_best_matmul']:.0%} of the limit.")
        if lim.get("serving_gflops") is not None:
            lines.append(f"Serving fill-mask at 16 clients achieved {lim['serving_gflops']} useful GFLOP/s "
                         f"({lim['serving_fraction_of_matmul']:.0%} of the matmul rate).")
        if lim.get("fp32_ceilings"):
            lines += ["", "fp32 ceiling at 16 clients: every useful FLOP at the best matmul rate, no padding, no overhead",
                      "| task | GFLOP / request | ceiling req/s | baseline req/s | ceiling / baseline | achieved | "
                      "achieved / ceiling |", "|---|---:|---:|---:|---:|---:|---:|"]
            for c in lim["fp32_ceilings"]:
                lines.append(f"| {c['task']} | {c['gflop_per_request']} | {c['ceiling_req_per_s']} | "
                             f"{c['baseline_req_per_s']} | {c['ceiling_ratio']}x | {c['achieved_ratio']}x | "
                             f"{c['achieved_fraction_of_ceiling']:.0%} |")
    for h in results.get("http", []):
        who = h.get("client", "gradio_client")
        lines += ["", f"End to end over HTTP ({h['shape']}): {h['clients']} {who} client threads, {h['rounds']} x "
                  f"{h['slice_s']:g} s per side and task, sides alternating; auto -> {h['auto_precision']} ({h['auto_reason']}); "
                  f"CPU {h['cpu_flags']}; load average {h['load_avg_before']} before, {h['load_avg_after']} after",
                  "| task | server | req/s | p50 / p95 ms | errors | busy | vs plain | CPU ms / request: server, clients |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in h["rows"]:
            lines.append(f"| {r['task']} | {r['side']} | {_f(r['req_per_s'], 2)} | {_f(r['p50_ms'])} / {_f(r['p95_ms'])} | "
                         f"{r['errors']} | {r['busy']} | **{_f(r['ratio_vs_plain'], 2)}x** | "
                         f"{_f(r.get('server_cpu_ms_per_req'))}, {_f(r.get('client_cpu_ms_per_req'))} |")
    lines += ["", "Targets", "| target | value | met |", "|---|---|---|"]
    for t in results["targets"]:
        lines.append(f"| {t['target']} | {t['value']} | {_f(t['met'])} |")
    return "\n".join(lines)
