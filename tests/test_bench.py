"""Smoke test of ``python -m benchmarks.bench --quick``: it runs end to end and reports a well-formed result.

No timing is asserted (the machine is shared); only structure and correctness: the batched audit
scores equal the straightforward loop's to 1e-4.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict, str]:
    import contextlib
    import io

    from benchmarks.bench import main

    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "results.json"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["--quick", "--out", str(out), "--cache-dir", str(tmp / "cache")])
    return code, json.loads(out.read_text(encoding="utf-8")), buf.getvalue()


def test_quick_bench_runs_and_audit_scores_are_identical(quick_results: tuple[int, dict, str]) -> None:
    code, res, table = quick_results
    assert code == 0
    assert res["audit"], "audit section missing"
    for a in res["audit"]:
        assert a["identical_scores"] is True
        assert a["max_abs_diff"] <= 1e-4
        assert a["masked_copies"] > 0 and a["loop_s"] > 0 and a["batched_s"] > 0
    assert "Serving" in table and "Targets" in table


def test_quick_bench_json_structure(quick_results: tuple[int, dict, str]) -> None:
    _, res, text = quick_results
    assert {"meta", "shapes", "serving", "pays", "agreement", "audit", "startup", "limit", "targets"} <= set(res)
    assert res["meta"]["profile"] == "quick"
    labels = [s["label"] for s in res["shapes"]]
    assert labels[0] == "bundled" and len(labels) == 2
    cells = {(r["shape"], r["task"], r["clients"]) for r in res["serving"]}
    for label in labels:
        for clients in (1, 4, 16):
            assert (label, "fill-mask", clients) in cells
            assert (label, "sentiment", clients) in cells
    for r in res["serving"]:
        for side in ("baseline", "bertdemo"):
            assert r[side]["requests"] > 0
            assert r[side]["req_per_s"] > 0
            assert r[side]["p50_ms"] <= r[side]["p95_ms"]
        assert r["ratio"] > 0
    assert any(p["variant"].startswith("int8") for p in res["pays"])
    for a in res["agreement"]:
        assert 0.0 <= a["fill_mask_top1"] <= 1.0
    s = res["startup"][0]
    assert s["shape"] == "bundled" and s["median_s"] > 0 and s["peak_rss_mb"] > 0
    lim = res["limit"]
    assert lim["forward_gflop"] >= 0 and all(t["matmul_gflops"] > 0 for t in lim["threads"].values())
    ceilings = {c["task"]: c for c in lim["fp32_ceilings"]}
    assert set(ceilings) == {"fill-mask", "nsp", "sentiment"}
    for c in ceilings.values():  # ceiling req/s = best matmul FLOP/s over the useful FLOPs of one request
        assert c["ceiling_req_per_s"] == pytest.approx(lim["best_matmul_gflops"] / c["gflop_per_request"], rel=0.01)
        assert c["ceiling_ratio"] == pytest.approx(c["ceiling_req_per_s"] / c["baseline_req_per_s"], rel=0.01)
    assert "fp32 ceiling at 16 clients" in text
    assert all({"target", "value", "met"} <= set(t) for t in res["targets"])
    # end to end over HTTP: the app (precision auto) and the plain pipeline app, same clients, one run
    (http,) = res["http"]
    assert http["shape"] == "tiny" and http["auto_precision"] in {"fp32", "bf16"} and "avx512_bf16" in http["cpu_flags"]
    sides = {r["side"]: r for r in http["rows"]}
    assert set(sides) == {"plain", f"bertdemo auto ({http['auto_precision']})"}
    for r in sides.values():
        assert r["ok"] > 0 and r["errors"] == 0 and r["ratio_vs_plain"] > 0 and r["p50_ms"] <= r["p95_ms"]
    assert "End to end over HTTP (tiny)" in text


def test_pll_loop_matches_service(service) -> None:
    """The bench's reference loop and the service's batched scoring agree, on the audit's own alignment."""
    import torch  # noqa: F401
    from transformers import BertForMaskedLM

    from benchmarks.sections import loop_token_logprobs
    from benchmarks.workload import crows_pairs
    from bertdemo.audit.crows_pairs import shared_positions

    tok = service.mlm.tokenizer
    model = BertForMaskedLM.from_pretrained(service.settings.mlm_model, use_safetensors=True).eval()
    s1, s2 = crows_pairs(1)[0]
    a, b = service.tokenize(s1), service.tokenize(s2)
    pa, pb = shared_positions(a, b)
    assert 0 < len(pa) == len(pb) <= len(a) - 3  # never [CLS], [SEP] or the differing pronoun
    loop = loop_token_logprobs(model, [a, b], [pa, pb], tok.mask_token_id)
    batched = service.token_logprobs([a, b], [pa, pb])
    for u, v in zip(loop, batched, strict=True):
        assert max(abs(x - y) for x, y in zip(u, v, strict=True)) <= 1e-4


def test_bert_flops_counts_bert_base() -> None:
    from benchmarks.limit import bert_flops

    cfg = {"hidden_size": 768, "num_hidden_layers": 12, "intermediate_size": 3072, "vocab_size": 30522}
    # ~85M encoder matmul weights -> ~2 * 85M FLOPs per token, plus attention
    per_token = bert_flops(cfg, 1, 1) / 1
    assert 1.6e8 < per_token < 1.8e8


def test_bench_writes_nothing_at_import(tmp_path: Path) -> None:
    """Importing the bench (a fresh process, run from an empty folder) writes no file and loads no torch."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    code = "import sys, benchmarks.bench as b; assert callable(b.main); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert list(tmp_path.iterdir()) == []  # the default --out is relative: an import-time write would land here
