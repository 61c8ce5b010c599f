"""``bertdemo finetune``: the command line of the fine-tuning pipeline."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bertdemo.finetune.data import DEFAULT_BASE
from bertdemo.finetune.train import finetune


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "finetune", help="fine-tune a BERT classifier on a CSV/JSONL file",
        description="Fine-tune a BERT checkpoint for text classification. Files are CSV (with a "
                    "header) or JSONL with a text and a label column; labels may be strings or "
                    "integers. Writes a loadable model folder with metrics.json and a model card.")
    p.add_argument("--train", metavar="FILE", help="training data (.csv or .jsonl)")
    p.add_argument("--eval", metavar="FILE", help="evaluation data (.csv or .jsonl); picks the best epoch")
    p.add_argument("--out", metavar="DIR", required=True, help="output model folder (replaced atomically)")
    p.add_argument("--base", metavar="MODEL", default=DEFAULT_BASE,
                   help="base BERT folder or hub id (default: the bundled bertdemo-mlm)")
    p.add_argument("--epochs", type=int, default=None, metavar="N",
                   help="default: 3, or more so that small data get at least 100 optimizer steps")
    p.add_argument("--lr", type=float, default=None, metavar="X",
                   help="default: 1e-4 for a small base (hidden size <= 512, e.g. the bundled one), 3e-5 for bert-base")
    p.add_argument("--seed", type=int, default=42, metavar="S")
    p.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help="default: a tenth of the training rows, from 8 to 32")
    p.add_argument("--max-length", type=int, default=128, metavar="N")
    p.add_argument("--max-steps", type=int, default=None, metavar="N", help="stop after N optimizer steps")
    p.add_argument("--dataset", metavar="NAME", default=None,
                   help="a Hugging Face dataset instead of files, e.g. glue/sst2 (needs the hub)")
    p.add_argument("--text-col", default="text", metavar="C")
    p.add_argument("--label-col", default="label", metavar="C")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    metrics = finetune(
        args.train, args.eval, args.out, base=args.base, epochs=args.epochs, lr=args.lr,
        seed=args.seed, batch_size=args.batch_size, max_length=args.max_length,
        max_steps=args.max_steps, dataset=args.dataset, text_col=args.text_col,
        label_col=args.label_col, progress=not args.json)
    if metrics.get("warning"):
        print(f"bertdemo finetune: warning: {metrics['warning']}", file=sys.stderr)
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    ev = metrics["eval"]
    print(f"wrote {metrics['out_dir']}")
    print(f"labels: {', '.join(metrics['id2label'].values())}")
    print(f"train examples: {metrics['train_examples']}, eval examples: {metrics['eval_examples']}")
    print(f"best epoch {metrics['best_epoch']}: accuracy {ev['accuracy']:.4f}, macro-F1 {ev['macro_f1']:.4f}")
    print(f"time: {metrics['seconds']:.0f} s")
    return 0
