"""The fine-tuning loop: AdamW with linear warm-up and decay, evaluation every epoch, the best epoch kept.

The learning-rate schedule is written out (``LambdaLR``) rather than transformers'
``get_linear_schedule_with_warmup``: that one starts the first step at learning rate 0, this one at
1/warm-up, and the bundled sentiment model is rebuilt bit for bit from this code.

Defaults that work for small data too (:func:`plan`): a batch size that gives each epoch several
steps, enough epochs for at least ``MIN_STEPS`` optimizer steps, and a learning rate chosen for the
size of the base. Values given explicitly are used as given. A result no better than always
answering the most common class gets a plain warning (``metrics["warning"]``). Progress is a bar on
a terminal and a few plain lines (every ``LOG_EVERY`` of the steps) when the output is a file or pipe.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bertdemo.errors import InputError, ModelLoadError
from bertdemo.finetune.card import atomic_write_dir, classification_metrics, model_card, save_tokenizer
from bertdemo.finetune.data import DEFAULT_BASE, build_label_maps, label_key, load_hub_dataset, read_examples

DEFAULT_EPOCHS = 3
MAX_BATCH = 32
MIN_BATCH = 8
MIN_STEPS = 100  # optimizer steps a default run makes at least (80 rows: 10 epochs of 10 steps)
MAX_AUTO_EPOCHS = 30
SMALL_BASE_HIDDEN = 512  # bases up to this hidden size count as small (the bundled one is 384)
LR_SMALL, LR_LARGE = 1e-4, 3e-5
NO_BETTER_MARGIN = 0.02  # accuracy within this of the majority-class share counts as "no better"
LOG_EVERY = 0.1  # a progress line every tenth of the steps when not on a terminal


def plan(n_train: int, hidden_size: int, epochs: int | None = None, batch_size: int | None = None,
         lr: float | None = None) -> tuple[int, int, float, list[str]]:
    """Epochs, batch size and learning rate for ``n_train`` examples; what was chosen, in words.

    Explicit values are kept. Defaults: batch size ``n_train // 10`` within 8..32; epochs 3, or more
    so the run makes at least ``MIN_STEPS`` optimizer steps; lr 1e-4 for a small base, 3e-5 for a
    bert-base-sized one.
    """
    chosen = []
    if batch_size is None:
        batch_size = max(MIN_BATCH, min(MAX_BATCH, n_train // 10))
        chosen.append(f"batch size {batch_size}")
    steps_per_epoch = max(1, -(-n_train // batch_size))
    if epochs is None:
        epochs = max(DEFAULT_EPOCHS, min(MAX_AUTO_EPOCHS, -(-MIN_STEPS // steps_per_epoch)))
        chosen.append(f"{epochs} epochs ({epochs * steps_per_epoch} optimizer steps: small data get at least "
                      f"{MIN_STEPS})" if epochs > DEFAULT_EPOCHS else f"{epochs} epochs")
    if lr is None:
        small = hidden_size <= SMALL_BASE_HIDDEN
        lr = LR_SMALL if small else LR_LARGE
        chosen.append(f"learning rate {lr:g} (for a {'small' if small else 'bert-base-sized'} base, hidden size "
                      f"{hidden_size})")
    return epochs, batch_size, lr, chosen


def no_better_warning(accuracy: float, eval_labels: list[int], id2label: dict[int, str]) -> str | None:
    """A plain warning when ``accuracy`` is no better than always answering the most common eval label."""
    if not eval_labels:
        return None
    counts: dict[int, int] = {}
    for y in eval_labels:
        counts[y] = counts.get(y, 0) + 1
    top = max(counts, key=counts.__getitem__)
    share = counts[top] / len(eval_labels)
    if accuracy > share + NO_BETTER_MARGIN:
        return None
    return (f"the model is no better than always answering {id2label[top]!r}: eval accuracy {accuracy:.2f}, "
            f"and {share:.2f} of the eval rows are {id2label[top]!r}. It has not learned the task; train longer "
            "(--epochs), with a higher --lr, or on more data before using it.")


class _SparseProgress:
    """Progress for a log file or pipe: one plain line every ``LOG_EVERY`` of the steps (not one per redraw)."""

    def __init__(self, total: int, file: Any) -> None:
        self.total, self.file, self.n, self.t0 = total, file, 0, time.time()
        self.every = max(1, int(total * LOG_EVERY))
        self.postfix = ""

    def update(self, k: int = 1) -> None:
        self.n += k
        if self.n % self.every == 0 or self.n == self.total:
            print(f"finetune: step {self.n}/{self.total} ({100 * self.n / max(1, self.total):.0f} %)"
                  f"{self.postfix}, {time.time() - self.t0:.0f} s", file=self.file, flush=True)

    def set_postfix(self, epoch: int, loss: str) -> None:
        self.postfix = f", epoch {epoch}, loss {loss}"

    def write(self, line: str, file: Any = None) -> None:
        print(line, file=file or self.file, flush=True)

    def close(self) -> None:
        pass


def finetune(train_path: str | os.PathLike[str] | None, eval_path: str | os.PathLike[str] | None,
             out_dir: str | os.PathLike[str], base: str = DEFAULT_BASE, epochs: int | None = None,
             lr: float | None = None, seed: int = 42, batch_size: int | None = None, max_length: int = 128,
             max_steps: int | None = None, dataset: str | None = None, text_col: str = "text",
             label_col: str = "label", progress: bool = True, *, card: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fine-tune ``base`` on (text, label) data and write a loadable model folder to ``out_dir``.

    ``epochs``, ``lr`` and ``batch_size`` left as ``None`` are chosen by :func:`plan`. Returns the
    metrics dict that is also written to ``out_dir/metrics.json`` (with ``"warning"`` when the model
    is no better than the majority class). ``card`` lets a caller override model-card fields
    (license, datasets, description, limitations, ...).
    """
    for name, val, lo in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("max_length", max_length, 8)):
        if val is not None and (not isinstance(val, int) or val < lo):
            raise InputError(f"{name} must be an integer >= {lo}, got {val!r}")
    if max_steps is not None and max_steps < 1:
        raise InputError(f"max_steps must be >= 1, got {max_steps!r}")
    if lr is not None and not lr > 0:
        raise InputError(f"lr must be > 0, got {lr!r}")

    if dataset:
        train_rows, eval_rows = load_hub_dataset(dataset, text_col, label_col)
        train_source, eval_source = f"{dataset} (train)", f"{dataset} (validation)"
    else:
        if not train_path or not eval_path:
            raise InputError("give --train and --eval files (or --dataset NAME)")
        train_rows = read_examples(train_path, text_col, label_col, role="train")
        eval_rows = read_examples(eval_path, text_col, label_col, role="eval")
        train_source, eval_source = Path(train_path).name, Path(eval_path).name
    id2label, label2id = build_label_maps([lab for _, lab in train_rows])
    if len(id2label) < 2:
        raise InputError(f"train data has a single label ({next(iter(label2id))!r}); need at least two")
    unknown = sorted({label_key(lab) for _, lab in eval_rows} - set(label2id))
    if unknown:
        raise InputError(f"eval data has label(s) not seen in train: {', '.join(map(repr, unknown[:10]))}; "
                         f"train labels: {', '.join(map(repr, label2id))}")

    import torch
    from tqdm.auto import tqdm
    from transformers import AutoConfig, AutoTokenizer, BertForSequenceClassification, DataCollatorWithPadding
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    try:
        config = AutoConfig.from_pretrained(base, trust_remote_code=False)
    except Exception as err:
        raise ModelLoadError(f"cannot load base model {base!r}: {type(err).__name__}: {str(err)[:300]}") from None
    if config.model_type != "bert":
        raise ModelLoadError(f"base model {base!r} is a {config.model_type!r} model, not BERT")
    try:
        tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=False)
    except Exception as err:
        raise ModelLoadError(f"cannot load the tokenizer of {base!r}: {type(err).__name__}: {str(err)[:300]}") from None

    torch.manual_seed(seed)  # seeds the fresh classifier head and dropout
    try:
        model = BertForSequenceClassification.from_pretrained(
            base, num_labels=len(id2label), id2label=id2label, label2id=label2id,
            use_safetensors=True, trust_remote_code=False, dtype=torch.float32)
    except Exception as err:
        raise ModelLoadError(f"cannot load base weights {base!r} (safetensors required): "
                             f"{type(err).__name__}: {str(err)[:300]}") from None
    model.config.architectures = ["BertForSequenceClassification"]
    epochs, batch_size, lr, chosen = plan(len(train_rows), int(config.hidden_size), epochs, batch_size, lr)
    if progress and chosen:
        print(f"finetune: chose {', '.join(chosen)}", file=sys.stderr, flush=True)

    def encode(rows: list[tuple[str, Any]]) -> tuple[list[list[int]], list[int]]:
        enc = tokenizer([t for t, _ in rows], truncation=True, max_length=max_length)
        return enc["input_ids"], [label2id[label_key(lab)] for _, lab in rows]

    tr_ids, tr_y = encode(train_rows)
    ev_ids, ev_y = encode(eval_rows)
    collator = DataCollatorWithPadding(tokenizer, padding="longest", return_tensors="pt")  # pads right, as BERT

    def collate(idx: list[int], ids: list[list[int]], ys: list[int]) -> tuple[Any, Any, Any]:
        batch = collator([{"input_ids": ids[i], "labels": ys[i]} for i in idx])
        return batch["input_ids"], batch["attention_mask"], batch["labels"]

    steps_per_epoch = (len(tr_ids) + batch_size - 1) // batch_size
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    warm = max(1, int(0.06 * total))
    decay, no_decay = [], []
    for n, p_ in model.named_parameters():
        (no_decay if n.endswith("bias") or "LayerNorm" in n else decay).append(p_)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))

    def evaluate() -> dict[str, float]:
        model.eval()
        preds, loss_sum = [], 0.0
        order = sorted(range(len(ev_ids)), key=lambda i: len(ev_ids[i]))  # less padding
        with torch.inference_mode():
            for b in range(0, len(order), 64):
                idx = order[b: b + 64]
                x, m, y = collate(idx, ev_ids, ev_y)
                out = model(input_ids=x, attention_mask=m, labels=y)
                loss_sum += out.loss.item() * len(idx)
                preds.extend(zip(idx, out.logits.argmax(-1).tolist()))
        preds = [p for _, p in sorted(preds)]
        res = classification_metrics(preds, ev_y, len(id2label))
        res["eval_loss"] = loss_sum / len(ev_ids)
        model.train()
        return res

    gen = torch.Generator().manual_seed(seed)
    history, best, best_state = [], None, None
    step, t0 = 0, time.time()
    model.train()
    sparse = progress and not sys.stderr.isatty()
    if sparse:
        bar: Any = _SparseProgress(total, sys.stderr)
    else:
        bar = tqdm(total=total, desc="finetune", unit="step", disable=not progress, dynamic_ncols=True,
                   file=sys.stderr)
    try:
        for epoch in range(1, epochs + 1):
            perm = torch.randperm(len(tr_ids), generator=gen).tolist()
            run_loss, n_loss = 0.0, 0
            for b in range(0, len(perm), batch_size):
                if step >= total:
                    break
                x, m, y = collate(perm[b: b + batch_size], tr_ids, tr_y)
                loss = model(input_ids=x, attention_mask=m, labels=y).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                step += 1
                run_loss += loss.item()
                n_loss += 1
                if step % 20 == 0 or sparse:
                    bar.set_postfix(epoch=epoch, loss=f"{run_loss / n_loss:.4f}")
                bar.update(1)
            res = evaluate()
            entry = {"epoch": epoch, "step": step, "train_loss": run_loss / max(1, n_loss), **res}
            history.append(entry)
            if progress:
                bar.write(f"epoch {epoch}: eval accuracy {res['accuracy']:.4f} macro-F1 {res['macro_f1']:.4f} "
                          f"loss {res['eval_loss']:.4f}", file=sys.stderr)
            if best is None or (res["accuracy"], res["macro_f1"]) > (best["accuracy"], best["macro_f1"]):
                best = entry
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if step >= total:
                break
    finally:
        bar.close()
    seconds = time.time() - t0
    model.load_state_dict(best_state)

    counts: dict[str, int] = {}
    for y in tr_y:
        counts[id2label[y]] = counts.get(id2label[y], 0) + 1
    hyper = {"base": base, "epochs": epochs, "lr": lr, "seed": seed, "batch_size": batch_size,
             "max_length": max_length, "max_steps": max_steps, "steps_run": step}
    metrics = {
        "task": "text-classification",
        "name": Path(out_dir).name,
        "base": base,
        "train_source": train_source,
        "eval_source": eval_source,
        "train_examples": len(tr_ids),
        "eval_examples": len(ev_ids),
        "train_label_counts": counts,
        "id2label": {str(k): v for k, v in id2label.items()},
        "best_epoch": best["epoch"],
        "eval": {"accuracy": best["accuracy"], "macro_f1": best["macro_f1"], "loss": best["eval_loss"]},
        "history": history,
        "hyperparameters": hyper,
        "defaults_chosen": chosen,
        "seconds": round(seconds, 1),
    }
    warning = no_better_warning(best["accuracy"], ev_y, id2label)
    if warning:
        metrics["warning"] = warning

    def write(folder: Path) -> None:
        model.save_pretrained(str(folder))  # transformers 5 always writes model.safetensors
        save_tokenizer(tokenizer, folder)
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        (folder / "README.md").write_text(model_card({**metrics, "card": card or {}}), encoding="utf-8")

    metrics["out_dir"] = str(atomic_write_dir(out_dir, write))
    return metrics
