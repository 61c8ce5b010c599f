"""The plain app the end-to-end benchmark compares with: what a user would otherwise serve.

A Gradio app with the same three endpoint names and arguments as bertdemo's (``/fill_mask``,
``/next_sentence``, ``/sentiment``), each calling :class:`benchmarks.load.Baseline` (a
``transformers.pipeline("fill-mask")`` / a direct model call, fp32, one request at a time: gradio's
default ``concurrency_limit=1``). Same weights as the app it is compared with; loopback only.

    python -m benchmarks.plainapp --mlm DIR --sentiment DIR --port PORT [--noop]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing


def build(mlm: str, sentiment: str, noop: bool = False) -> object:
    """The plain app; ``noop``: the same endpoints answering a constant at once, with ``concurrency_limit=16``
    (what gradio and the clients cost per request without any model: the most any server can give here)."""
    import gradio as gr

    from benchmarks.load import Baseline
    from benchmarks.workload import Shape

    base = None if noop else Baseline(Shape("plain", mlm, sentiment, source="plain app"))
    limit = 16 if noop else 1  # 1: gradio's default, one request at a time

    def fill_mask(text: str, top_k: float, targets: str) -> Any:
        return [{"token": "x", "score": 1.0}] if base is None else base._fill(text)

    def next_sentence(a: str, b: str) -> Any:
        return 0.5 if base is None else base._nsp((a, b))

    def sentiment_fn(text: str) -> Any:
        return [0.5, 0.5] if base is None else base._sentiment(text)

    with gr.Blocks(analytics_enabled=False) as demo:
        text, k, targets, a, b = gr.Textbox(), gr.Number(), gr.Textbox(), gr.Textbox(), gr.Textbox()
        out = gr.JSON()
        gr.Button("fill").click(fill_mask, [text, k, targets], out, api_name="fill_mask", concurrency_limit=limit)
        gr.Button("nsp").click(next_sentence, [a, b], out, api_name="next_sentence", concurrency_limit=limit)
        gr.Button("sentiment").click(sentiment_fn, [text], out, api_name="sentiment", concurrency_limit=limit)
    demo.queue(max_size=256)
    return demo


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--mlm", required=True)
    p.add_argument("--sentiment", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--noop", action="store_true", help="answer a constant without a model (the harness's ceiling)")
    args = p.parse_args(argv)
    demo = build(args.mlm, args.sentiment, args.noop)
    demo.launch(server_name="127.0.0.1", server_port=args.port, quiet=True)  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main())
