"""How far from the limit: analytic FLOPs of a BERT forward against a plain matmul on the same machine."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from benchmarks.workload import FILL, NSP, SENTIMENT, TASKS, Profile, Shape


def bert_flops(cfg: dict[str, Any], batch: int, tokens: int, head_positions: int = 0) -> float:
    """Analytic FLOPs (2 per multiply-add) of the encoder, pooler and MLM head at ``head_positions``."""
    h, n, i, v = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"], cfg["vocab_size"]
    per_token = n * (4 * h * h + 2 * h * i + 2 * tokens * h)  # projections, FFN, QK^T and AV
    macs = batch * tokens * per_token + batch * h * h + head_positions * (h * h + h * v)
    return 2.0 * macs


def _time_best(fn: Callable[[], Any], seconds: float, min_reps: int = 2) -> float:
    """Fastest of the repetitions: on a shared machine noise only ever adds time."""
    fn()
    times: list[float] = []
    end = time.perf_counter() + seconds
    while len(times) < min_reps or time.perf_counter() < end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_limit(shape: Shape, profile: Profile, svc: Any, log: Callable[[str], None]) -> dict[str, Any]:
    import copy

    import torch

    from bertdemo.models import quantize_int8, to_cpu_bf16

    batch, tokens = profile.limit_batch
    cfg = shape.info
    model = svc.mlm.model.bert
    q = quantize_int8(svc.mlm.model).bert  # a quantized copy; the service's own model is untouched
    bf = to_cpu_bf16(copy.deepcopy(svc.mlm.model)).bert  # precision="bf16"'s encoder (fp32 pooler), a copy
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, cfg["vocab_size"], (batch, tokens), generator=g)
    attn = torch.ones_like(ids)
    a = torch.randn(2048, 2048, generator=g)
    b = torch.randn(2048, 2048, generator=g)
    a16, b16 = a.bfloat16(), b.bfloat16()
    threads = torch.get_num_threads()
    flops = bert_flops(cfg, batch, tokens)
    mm_flops = 2.0 * 2048**3

    def fwd(m: Any) -> Callable[[], Any]:
        def run() -> Any:
            with torch.inference_mode():
                return m(input_ids=ids, attention_mask=attn)
        return run

    res: dict[str, Any] = {"shape": shape.label, "batch": batch, "tokens": tokens, "forward_gflop": round(flops / 1e9, 2),
                           "threads": {}}
    for n in sorted({threads, 1}, reverse=True):
        torch.set_num_threads(n)
        try:
            per = profile.limit_seconds / 6
            t_mm, t_f, t_q, t_mb, t_b = [], [], [], [], []
            for _ in range(2):  # interleaved
                t_mm.append(_time_best(lambda: torch.mm(a, b), per))
                t_f.append(_time_best(fwd(model), per))
                t_q.append(_time_best(fwd(q), per))
                t_mb.append(_time_best(lambda: torch.mm(a16, b16), per))
                t_b.append(_time_best(fwd(bf), per))
        finally:
            torch.set_num_threads(threads)
        mm_s, f_s, q_s, mb_s, b_s = min(t_mm), min(t_f), min(t_q), min(t_mb), min(t_b)
        res["threads"][str(n)] = {
            "matmul_gflops": round(mm_flops / mm_s / 1e9, 1),
            "forward_fp32_ms": round(f_s * 1000, 1), "forward_fp32_gflops": round(flops / f_s / 1e9, 1),
            "forward_fp32_fraction_of_matmul": round((flops / f_s) / (mm_flops / mm_s), 3),
            "forward_int8_ms": round(q_s * 1000, 1), "forward_int8_effective_gflops": round(flops / q_s / 1e9, 1),
            "int8_speedup": round(f_s / q_s, 2),
            "matmul_bf16_gflops": round(mm_flops / mb_s / 1e9, 1),
            "forward_bf16_ms": round(b_s * 1000, 1), "bf16_speedup": round(f_s / b_s, 2),
        }
        r = res["threads"][str(n)]
        log(f"  limit {shape.label} threads={n}: matmul {r['matmul_gflops']} GFLOP/s, forward fp32 "
            f"{r['forward_fp32_gflops']} GFLOP/s ({r['forward_fp32_fraction_of_matmul']:.0%}), int8 x{r['int8_speedup']}, "
            f"bf16 x{r['bf16_speedup']} (matmul bf16 {r['matmul_bf16_gflops']} GFLOP/s)")
    del q, bf
    gc.collect()
    return res


def request_flops(shape: Shape, task: str, tok: Any) -> float:
    """Mean useful FLOPs of one benchmark request (unpadded tokens; MLM head at the mask only)."""
    if task == "fill-mask":
        lens, head = [len(tok(t)["input_ids"]) for t in FILL], 1
    elif task == "nsp":
        lens, head = [len(tok(a, b)["input_ids"]) for a, b in NSP], 0
    else:
        lens, head = [len(tok(t)["input_ids"]) for t in SENTIMENT], 0
    return sum(bert_flops(shape.info, 1, n, head_positions=head) for n in lens) / len(lens)


def serving_gflops(shape: Shape, svc_req_per_s: float | None, tok: Any) -> float | None:
    """Useful FLOP/s the service achieved on fill-mask (unpadded tokens, head at the mask only)."""
    if not svc_req_per_s:
        return None
    return round(request_flops(shape, "fill-mask", tok) * svc_req_per_s / 1e9, 2)


def fp32_ceilings(shape: Shape, serving: list[dict], best_matmul_gflops: float, tok: Any) -> list[dict]:
    """Per task: the most req/s fp32 could give if every FLOP ran at the matmul rate, over the baseline.

    If this ratio is under 4, the 4x target cannot be met at fp32 on this machine by any batching.
    """
    out = []
    for task in TASKS:
        row = next((r for r in serving if r["shape"] == shape.label and r["task"] == task and r["clients"] == 16), None)
        if row is None or not row["baseline"]["req_per_s"]:
            continue
        per_req = request_flops(shape, task, tok)
        ceiling = best_matmul_gflops * 1e9 / per_req
        out.append({"task": task, "gflop_per_request": float(f"{per_req / 1e9:.4g}"), "ceiling_req_per_s": round(ceiling, 1),
                    "baseline_req_per_s": row["baseline"]["req_per_s"],
                    "ceiling_ratio": round(ceiling / row["baseline"]["req_per_s"], 2),
                    "achieved_ratio": row["ratio"],
                    "achieved_fraction_of_ceiling": round(row["bertdemo"]["req_per_s"] / ceiling, 3)})
    return out
