"""What a fine-tuned model folder holds besides its weights: tokenizer files, metrics, the model card."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bertdemo import atomic


def classification_metrics(preds: list[int], golds: list[int], num_labels: int) -> dict[str, float]:
    """Accuracy and macro-F1 over the classes that occur (scikit-learn's; ``evaluate.load`` needs the hub)."""
    from sklearn.metrics import accuracy_score, f1_score

    if not golds:
        return {"accuracy": 0.0, "macro_f1": 0.0}
    return {"accuracy": float(accuracy_score(golds, preds)), "macro_f1": float(f1_score(golds, preds, average="macro"))}


def save_tokenizer(tokenizer: Any, folder: Path) -> None:
    """Save tokenizer files, plus ``vocab.txt`` and ``special_tokens_map.json`` for old loaders."""
    tokenizer.save_pretrained(str(folder))
    vocab_path = folder / "vocab.txt"
    if not vocab_path.exists():
        vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
        vocab_path.write_text("".join(tok + "\n" for tok, _ in vocab), encoding="utf-8")
    stm = folder / "special_tokens_map.json"
    if not stm.exists():
        special = {k: str(getattr(tokenizer, k)) for k in
                   ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
                   if getattr(tokenizer, k, None) is not None}
        stm.write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")


def atomic_write_dir(out_dir: str | os.PathLike[str], write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp_dir)`` on a staging folder beside ``out_dir``, then swap it into place.

    If ``write`` fails (or the process dies), ``out_dir`` is untouched (see :mod:`bertdemo.atomic`).
    """
    return atomic.write_dir(out_dir, write)


def model_card(info: dict[str, Any]) -> str:
    """A Hugging Face model card: metadata from ``huggingface_hub``'s ``ModelCardData`` + the sections the Hub shows."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    card = info.get("card", {})
    hp = info["hyperparameters"]
    ev = info["eval"]
    labels = ", ".join(f"`{v}`" for v in info["id2label"].values())
    name = card.get("name", info["name"])
    results = [EvalResult(task_type="text-classification", dataset_type=info["eval_source"], dataset_name=info["eval_source"],
                          metric_type=metric, metric_name=label, metric_value=round(ev[key], 4))
               for metric, label, key in (("accuracy", None, "accuracy"), ("f1", "macro-F1", "macro_f1"))]
    data = ModelCardData(license=card.get("license", "apache-2.0"), language=list(card.get("language", ["en"])),
                         library_name="transformers", pipeline_tag="text-classification",
                         tags=["bert", "text-classification", "bertdemo", *card.get("tags", [])],
                         datasets=list(card.get("datasets", [info["train_source"]])), metrics=["accuracy", "f1"],
                         base_model=card.get("base_model", info["base"]), model_name=name, eval_results=results)
    front = f"---\n{data.to_yaml()}\n---\n\n"
    train_default = f"`{info['train_source']}`"
    hist = "\n".join(
        f"| {h['epoch']} | {h['step']} | {h['train_loss']:.4f} | {h['eval_loss']:.4f} | "
        f"{h['accuracy']:.4f} | {h['macro_f1']:.4f} |" for h in info["history"])
    body = (
        f"# {name}\n\n"
        "## Model description\n\n"
        f"{card.get('description', 'A BERT sequence classifier fine-tuned with `bertdemo finetune`.')}\n\n"
        f"- Architecture: `BertForSequenceClassification`, labels: {labels}\n"
        f"- Base model: `{info['base']}` (classifier head initialised with seed {hp['seed']})\n\n"
        "## Training data\n\n"
        f"{card.get('training_data', train_default)}"
        f"\n\n{info['train_examples']} training examples; label counts: "
        f"{json.dumps(info['train_label_counts'])}.\n\n"
        "## Training procedure\n\n"
        "Fine-tuned with `bertdemo finetune` (AdamW, weight decay 0.01, linear warm-up over 6 % of "
        "the steps then linear decay; evaluated after every epoch; the best epoch by eval accuracy "
        "is kept).\n\n"
        "| hyperparameter | value |\n|---|---|\n"
        + "".join(f"| {k} | {v} |\n" for k, v in hp.items())
        + f"| training time | {info['seconds']:.0f} s on CPU |\n\n"
        "## Evaluation results\n\n"
        f"Eval set: `{info['eval_source']}`, {info['eval_examples']} examples. Best epoch: "
        f"{info['best_epoch']}: accuracy **{ev['accuracy']:.4f}**, macro-F1 **{ev['macro_f1']:.4f}**.\n\n"
        + (f"**Warning:** {info['warning']}\n\n" if info.get("warning") else "")
        + "| epoch | step | train loss | eval loss | accuracy | macro-F1 |\n|---|---|---|---|---|---|\n"
        f"{hist}\n\n"
        + (card.get("extra_results", "") + "\n\n" if card.get("extra_results") else "")
        + "## Limitations and bias\n\n"
        + card.get("limitations",
                   "The eval set above is used to pick the best epoch, so it slightly overstates "
                   "accuracy on new data; measure on a separate test set. The model inherits the "
                   "biases of its base model and of its training data, and is only as good on a "
                   "domain as that domain's share of the training data.")
        + "\n\n## How to use\n\n```python\nfrom transformers import pipeline\n"
        f"clf = pipeline(\"text-classification\", model=\"{card.get('path', 'path/to/this/folder')}\")\n"
        "print(clf(\"What a wonderful day!\"))\n```\n"
    )
    return str(ModelCard(front + body))
