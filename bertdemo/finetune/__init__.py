"""Fine-tune a BERT checkpoint for text classification on your own CSV/JSONL (or a hub dataset).

``bertdemo finetune --train train.csv --eval dev.csv --out my-model`` writes a folder that the
app and ``bertdemo sentiment --model my-model`` load directly: ``model.safetensors``, tokenizer
files, ``config.json`` with ``id2label``/``label2id``, ``metrics.json`` and a model card
``README.md``. The folder is written atomically: a failed or interrupted run never leaves a
half-written folder and keeps a previous output intact.

Modules: ``data`` (reading examples), ``train`` (the loop), ``card`` (metrics, tokenizer files,
model card), ``cli``. torch/transformers are imported inside functions so that the CLI starts fast.
"""

from __future__ import annotations

from bertdemo.finetune.card import atomic_write_dir, classification_metrics, model_card, save_tokenizer
from bertdemo.finetune.cli import register
from bertdemo.finetune.data import DEFAULT_BASE, SUPPORTED_EXTENSIONS, build_label_maps, read_examples
from bertdemo.finetune.train import finetune

__all__ = ["DEFAULT_BASE", "SUPPORTED_EXTENSIONS", "atomic_write_dir", "build_label_maps", "classification_metrics",
           "finetune", "model_card", "read_examples", "register", "save_tokenizer"]
