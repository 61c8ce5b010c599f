"""The plain app the end-to-end benchmark compares with: what a user would otherwise serve.

A Gradio app with the same three endpoint names and arguments as bertdemo's (``/fill_mask``,
``/next_sentence``, ``/sentiment``), each calling :class:`benchmarks.load.Baseline` (a
``transformers.pipeline("fill-mask")`` / a direct model call, fp32, one request at a time: gradio's
default ``concurrency_limit=1``). Same weights as the app it is compared with; loopback only.

    python -m benchmarks.plainapp --mlm DIR --sentiment DIR --port PORT
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing


def build(mlm: str, sentiment: str) -> object:
    import gradio as gr

    from benchmarks.load import Baseline
    from benchmarks.workload import Shape

    base = Baseline(Shape("plain", mlm, sentiment, source="plain app"))

    def fill_mask(text: str, top_k: float, targets: str) -> list[dict]:
        return base._fill(text)

    def next_sentence(a: str, b: str) -> float:
        return base._nsp((a, b))

    def sentiment_fn(text: str) -> list[float]:
        return base._sentiment(text)

    with gr.Blocks(analytics_enabled=False) as demo:
        text, k, targets, a, b = gr.Textbox(), gr.Number(), gr.Textbox(), gr.Textbox(), gr.Textbox()
        out = gr.JSON()
        gr.Button("fill").click(fill_mask, [text, k, targets], out, api_name="fill_mask")
        gr.Button("nsp").click(next_sentence, [a, b], out, api_name="next_sentence")
        gr.Button("sentiment").click(sentiment_fn, [text], out, api_name="sentiment")
    demo.queue()  # gradio's defaults: one request at a time per event
    return demo


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--mlm", required=True)
    p.add_argument("--sentiment", required=True)
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    demo = build(args.mlm, args.sentiment)
    demo.launch(server_name="127.0.0.1", server_port=args.port, quiet=True)  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main())
