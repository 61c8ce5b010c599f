"""The ONNX Runtime row: the bert-base encoder forward in ORT (fp32) beside torch fp32 and bertdemo's CPU bf16.

ONNX Runtime is what a user would pick instead of bertdemo's torch path for CPU speed, so it is measured
on the bench's limit shapes (batch 16 x 32 tokens, and one request of 16 tokens). Each engine is timed in
its own child process, the two alternating for two rounds (best of each): torch's and ORT's thread pools in
one process contend (measured: torch fp32 took 6 s instead of ~0.5 s for 16 x 32 beside an ORT session).
It is not a dependency: the row runs only where ``onnxruntime`` and ``onnx`` import (e.g. ``pip install
--target DIR onnxruntime onnx`` and ``--extra-path DIR``), and says so otherwise.

    python -m benchmarks.onnx_row [--extra-path DIR] [--threads 2] [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

SHAPES = ((16, 32), (1, 16))


def _models() -> tuple[Any, Any]:
    """Random bert-base encoders (seeded, so every process builds the same weights): fp32, and bf16 as served."""
    import copy

    import torch
    from transformers import BertConfig, BertModel

    from benchmarks.modelfactory import SHAPES as MODEL_SHAPES

    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=30522, **MODEL_SHAPES["bert-base"]), add_pooling_layer=False).eval()
    bf16 = copy.deepcopy(model)
    bf16.embeddings.to(torch.bfloat16)
    bf16.encoder.to(torch.bfloat16)
    return model, bf16


def export(path: str) -> None:
    """The fp32 encoder as ONNX (opset 17, dynamic batch and length)."""
    import torch

    model, _ = _models()

    class Encoder(torch.nn.Module):  # positional inputs, one tensor out: what the exporter traces
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids = torch.ones((2, 8), dtype=torch.long)
    torch.onnx.export(Encoder(model), (ids, torch.ones_like(ids)), path, input_names=["input_ids", "attention_mask"],
                      output_names=["hidden"], dynamic_axes={"input_ids": {0: "b", 1: "t"}, "attention_mask": {0: "b", 1: "t"}},
                      opset_version=17, dynamo=False)


def time_engine(engine: str, path: str, seconds: float, threads: int) -> dict[str, float]:
    """Best-of seconds per shape for one engine (``torch``: fp32 and bf16; ``ort``: fp32), in this process."""
    import numpy as np

    from benchmarks.limit import _time_best

    out: dict[str, float] = {}
    rng = np.random.default_rng(0)
    inputs = {(b, t): rng.integers(1000, 30000, (b, t)) for b, t in SHAPES}
    if engine == "torch":
        import torch

        torch.set_num_threads(threads)
        model, bf16 = _models()
        for (b, t), x in inputs.items():
            ids = torch.from_numpy(x)
            mask = torch.ones_like(ids)
            for name, mod in (("torch_fp32", model), ("torch_bf16", bf16)):
                def fwd(mod: Any = mod, ids: Any = ids, mask: Any = mask) -> Any:
                    with torch.inference_mode():
                        return mod(input_ids=ids, attention_mask=mask)
                out[f"{name}_{b}x{t}"] = _time_best(fwd, seconds)
    else:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        for (b, t), x in inputs.items():
            feed = {"input_ids": x, "attention_mask": np.ones_like(x)}
            out[f"ort_fp32_{b}x{t}"] = _time_best(lambda feed=feed: sess.run(None, feed), seconds)
    return out


def run(seconds: float, threads: int, extra_path: str | None) -> dict[str, Any]:
    """Both engines, each in a child process, alternating for two rounds; ms per shape and the ratios."""
    import onnxruntime
    import torch

    from bertdemo.precision import cpu_flags, flag_summary

    env = dict(os.environ)
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bert-base.onnx")
        export(path)
        for _ in range(2):
            for engine in ("torch", "ort"):
                cmd = [sys.executable, "-m", "benchmarks.onnx_row", "--child", engine, "--model", path,
                       "--seconds", str(seconds / 4), "--threads", str(threads)]
                if extra_path:
                    cmd += ["--extra-path", extra_path]
                res = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, env=env,
                                                cwd=str(Path(__file__).resolve().parent.parent)).stdout)
                for k, v in res.items():
                    best[k] = min(v, best.get(k, v))
    rows = []
    for b, t in SHAPES:
        f, h, o = (best[f"{n}_{b}x{t}"] for n in ("torch_fp32", "torch_bf16", "ort_fp32"))
        rows.append({"batch": b, "tokens": t, "torch_fp32_ms": round(f * 1000, 1), "torch_bf16_ms": round(h * 1000, 1),
                     "ort_fp32_ms": round(o * 1000, 1), "ort_vs_torch_fp32": round(f / o, 2),
                     "torch_bf16_vs_torch_fp32": round(f / h, 2), "torch_bf16_vs_ort_fp32": round(o / h, 2)})
    return {"onnxruntime": onnxruntime.__version__, "torch": torch.__version__, "threads": threads,
            "cpu_flags": flag_summary(cpu_flags()), "load_avg": round(os.getloadavg()[0], 2), "rows": rows}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--extra-path", help="a folder with onnxruntime and onnx (searched after the environment's own)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--child", choices=["torch", "ort"], help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.extra_path:
        sys.path.append(args.extra_path)
    if args.child:
        print(json.dumps(time_engine(args.child, args.model, args.seconds, args.threads)))
        return 0
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        import onnxruntime  # noqa: F401
    except ImportError as err:
        print(f"ONNX Runtime row skipped: {err.name} is not installed (it is not a bertdemo dependency)")
        return 0
    print(json.dumps(run(args.seconds, args.threads, args.extra_path), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
