"""The ONNX Runtime row: the bert-base encoder forward in ORT (fp32) beside torch fp32 and bertdemo's CPU bf16.

ONNX Runtime is what a user would pick instead of bertdemo's torch path for CPU speed, so it is measured
on the bench's limit shapes (batch 16 x 32 tokens, and one request of 16 tokens), interleaved in one process.
It is not a dependency: the row runs only where ``onnxruntime`` and ``onnx`` import (e.g. ``pip install
--target DIR onnxruntime onnx`` and ``--extra-path DIR``), and says so otherwise.

    python -m benchmarks.onnx_row [--extra-path DIR] [--threads 2] [--seconds 2]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

SHAPES = ((16, 32), (1, 16))


def run(seconds: float, threads: int) -> dict[str, Any]:
    """Best-of timings (ms) per shape for torch fp32, torch bf16 (bertdemo's CPU bf16), ORT fp32."""
    import onnxruntime as ort
    import torch
    from transformers import BertConfig, BertModel

    from benchmarks.limit import _time_best
    from benchmarks.modelfactory import SHAPES as MODEL_SHAPES
    from bertdemo.precision import cpu_flags, flag_summary

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=30522, **MODEL_SHAPES["bert-base"]), add_pooling_layer=False).eval()
    bf16 = copy.deepcopy(model)
    bf16.embeddings.to(torch.bfloat16)
    bf16.encoder.to(torch.bfloat16)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bert-base.onnx")
        ids = torch.ones((2, 8), dtype=torch.long)
        class Encoder(torch.nn.Module):  # positional inputs, one tensor out: what the exporter traces
            def __init__(self, bert: Any) -> None:
                super().__init__()
                self.bert = bert

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        torch.onnx.export(Encoder(model), (ids, torch.ones_like(ids)), path, input_names=["input_ids", "attention_mask"],
                          output_names=["hidden"], dynamic_axes={"input_ids": {0: "b", 1: "t"},
                                                                 "attention_mask": {0: "b", 1: "t"}},
                          opset_version=17, dynamo=False)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # ORT's idle threads otherwise spin after each run, stealing the cores from the torch runs interleaved
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        rows = []
        for batch, tokens in SHAPES:
            x = torch.randint(1000, 30000, (batch, tokens))
            m = torch.ones_like(x)
            feed = {"input_ids": x.numpy(), "attention_mask": m.numpy()}

            def torch_fwd(mod: Any, x: Any = x, m: Any = m) -> Any:
                with torch.inference_mode():
                    return mod(input_ids=x, attention_mask=m)

            t = {"torch_fp32": [], "torch_bf16": [], "ort_fp32": []}
            for _ in range(2):  # interleaved: noise hits all three alike
                t["torch_fp32"].append(_time_best(lambda: torch_fwd(model), seconds / 6))
                t["torch_bf16"].append(_time_best(lambda: torch_fwd(bf16), seconds / 6))
                t["ort_fp32"].append(_time_best(lambda feed=feed: sess.run(None, feed), seconds / 6))
            best = {k: min(v) for k, v in t.items()}
            rows.append({"batch": batch, "tokens": tokens, **{f"{k}_ms": round(v * 1000, 1) for k, v in best.items()},
                         "ort_vs_torch_fp32": round(best["torch_fp32"] / best["ort_fp32"], 2),
                         "torch_bf16_vs_torch_fp32": round(best["torch_fp32"] / best["torch_bf16"], 2)})
    return {"onnxruntime": ort.__version__, "torch": torch.__version__, "threads": threads,
            "cpu_flags": flag_summary(cpu_flags()), "rows": rows}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--extra-path", help="a folder with onnxruntime and onnx (searched after the environment's own)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=2.0)
    args = p.parse_args(argv)
    if args.extra_path:
        sys.path.append(args.extra_path)
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        import onnxruntime  # noqa: F401
    except ImportError as err:
        print(f"ONNX Runtime row skipped: {err.name} is not installed (it is not a bertdemo dependency)")
        return 0
    res = run(args.seconds, args.threads)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
