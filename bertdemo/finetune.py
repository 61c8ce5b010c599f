"""Fine-tune a BERT checkpoint for text classification on your own CSV/JSONL (or a hub dataset).

``bertdemo finetune --train train.csv --eval dev.csv --out my-model`` writes a folder that the
app and ``bertdemo sentiment --model my-model`` load directly: ``model.safetensors``, tokenizer
files, ``config.json`` with ``id2label``/``label2id``, ``metrics.json`` and a model card
``README.md``. The folder is written atomically: a failed or interrupted run never leaves a
half-written folder and keeps a previous output intact.

torch/transformers are imported inside functions so that the CLI starts fast.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bertdemo import atomic
from bertdemo.errors import InputError, ModelLoadError

DEFAULT_BASE = str(Path(__file__).resolve().parent.parent / "assets" / "models" / "bertdemo-mlm")
SUPPORTED_EXTENSIONS = (".csv", ".jsonl", ".ndjson")


# ---- reading data ------------------------------------------------------------------------------

def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(
            f"{path}: not UTF-8 text: byte 0x{data[err.start]:02x} at byte offset {err.start} "
            f"(line {line}); save the file as UTF-8"
        ) from None


def read_examples(path: str | os.PathLike, text_col: str = "text", label_col: str = "label",
                  role: str = "train") -> list[tuple[str, Any]]:
    """Read ``(text, label)`` pairs from a CSV or JSONL file, with a clear error for bad files."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{role} file not found: {p}")
    if p.is_dir():
        raise InputError(f"{role} file is a directory, expected a .csv or .jsonl file: {p}")
    ext = p.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        raise InputError(f"{role} file {p.name}: unsupported extension {ext or '(none)'!r}; "
                         f"use one of {', '.join(SUPPORTED_EXTENSIONS)}")
    text = _decode(p)
    if not text.strip():
        raise InputError(f"{role} file is empty: {p}")
    rows: list[tuple[str, Any]] = []
    if ext == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = reader.fieldnames or []
        missing = [c for c in (text_col, label_col) if c not in columns]
        if missing:
            raise InputError(f"{role} file {p.name}: missing column(s) {', '.join(map(repr, missing))}; "
                             f"found {', '.join(map(repr, columns)) or 'none'}")
        for lineno, row in enumerate(reader, start=2):
            t, lab = row.get(text_col), row.get(label_col)
            if t is None or lab is None or not str(t).strip() or not str(lab).strip():
                raise InputError(f"{role} file {p.name}: row at line {lineno} has an empty "
                                 f"{text_col!r} or {label_col!r}")
            rows.append((t, lab.strip()))
    else:
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(f"{role} file {p.name}: line {lineno} is not valid JSON ({err.msg})") from None
            if not isinstance(obj, dict):
                raise InputError(f"{role} file {p.name}: line {lineno} is not a JSON object")
            missing = [c for c in (text_col, label_col) if c not in obj]
            if missing:
                raise InputError(f"{role} file {p.name}: line {lineno} is missing column(s) "
                                 f"{', '.join(map(repr, missing))}; found {', '.join(map(repr, obj)) or 'none'}")
            t, lab = obj[text_col], obj[label_col]
            if not isinstance(t, str) or not t.strip():
                raise InputError(f"{role} file {p.name}: line {lineno} has an empty or non-text {text_col!r}")
            if isinstance(lab, bool) or not isinstance(lab, (str, int)) or (isinstance(lab, str) and not lab.strip()):
                raise InputError(f"{role} file {p.name}: line {lineno}: label must be a string or an "
                                 f"integer, got {lab!r}")
            rows.append((t, lab.strip() if isinstance(lab, str) else lab))
    if not rows:
        raise InputError(f"{role} file has a header but no examples: {p}")
    return rows


def _label_key(x: Any) -> str:
    """Label as the string stored in ``config.json`` (``1``, ``"1"`` and ``"01"`` are one label)."""
    if isinstance(x, int) or (isinstance(x, str) and x.lstrip("-").isdigit()):
        return str(int(x))
    return str(x)


def build_label_maps(labels: list[Any]) -> tuple[dict[int, str], dict[str, int]]:
    """Stable label ids: integers (or integer strings) sort numerically, other strings alphabetically."""
    keys = {_label_key(x) for x in labels}
    if all(k.lstrip("-").isdigit() for k in keys):
        ordered = sorted(keys, key=int)
    else:
        ordered = sorted(keys)
    id2label = dict(enumerate(ordered))
    return id2label, {v: k for k, v in id2label.items()}


def _load_hub_dataset(name: str, text_col: str, label_col: str):
    """``glue/sst2`` -> ``load_dataset("glue", "sst2")``; returns (train, eval) lists."""
    try:
        import datasets
    except ImportError as err:  # pragma: no cover - datasets is a dependency
        raise InputError(f"--dataset needs the 'datasets' package: {err}") from None
    parts = name.split("/")
    args = (parts[0], parts[1]) if len(parts) == 2 and parts[0] == "glue" else (name,)
    try:
        ds = datasets.load_dataset(*args)
    except Exception as err:
        raise InputError(f"could not load dataset {name!r} from the Hugging Face hub "
                         f"(is the hub reachable? HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '0')}): "
                         f"{type(err).__name__}: {str(err)[:300]}") from None
    train_split = "train"
    eval_split = next((s for s in ("validation", "test") if s in ds), None)
    if train_split not in ds or eval_split is None:
        raise InputError(f"dataset {name!r} needs a train and a validation/test split; has {list(ds)}")
    if "sentence" in ds[train_split].column_names and text_col not in ds[train_split].column_names:
        text_col = "sentence"
    feats = ds[train_split].features
    names = getattr(feats.get(label_col), "names", None)

    def rows(split):
        cols = ds[split].column_names
        missing = [c for c in (text_col, label_col) if c not in cols]
        if missing:
            raise InputError(f"dataset {name!r} split {split}: missing column(s) {missing}; found {cols}")
        out = []
        for t, lab in zip(ds[split][text_col], ds[split][label_col]):
            if isinstance(lab, int) and lab < 0:  # GLUE test splits are unlabelled (-1)
                continue
            out.append((t, names[lab] if names else lab))
        return out

    return rows(train_split), rows(eval_split)


# ---- metrics -----------------------------------------------------------------------------------

def classification_metrics(preds: list[int], golds: list[int], num_labels: int) -> dict[str, float]:
    """Accuracy and macro-F1 (computed here; ``evaluate.load`` needs the hub)."""
    n = len(golds)
    acc = sum(p == g for p, g in zip(preds, golds)) / n if n else 0.0
    f1s = []
    for c in range(num_labels):
        tp = sum(p == c and g == c for p, g in zip(preds, golds))
        fp = sum(p == c and g != c for p, g in zip(preds, golds))
        fn = sum(p != c and g == c for p, g in zip(preds, golds))
        if tp + fp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return {"accuracy": acc, "macro_f1": sum(f1s) / len(f1s) if f1s else 0.0}


# ---- saving ------------------------------------------------------------------------------------

def save_tokenizer(tokenizer, folder: Path) -> None:
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


def atomic_write_dir(out_dir: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_dir)`` on a staging folder beside ``out_dir``, then swap it into place.

    If ``write`` fails (or the process dies), ``out_dir`` is untouched (see :mod:`bertdemo.atomic`).
    """
    return atomic.write_dir(out_dir, write)


def _yaml_list(items) -> str:
    return "".join(f"\n- {json.dumps(str(x))}" for x in items) or " []"


def model_card(info: dict) -> str:
    """A Hugging Face model card: YAML front matter + the sections the Hub shows."""
    card = info.get("card", {})
    hp = info["hyperparameters"]
    ev = info["eval"]
    labels = ", ".join(f"`{v}`" for v in info["id2label"].values())
    front = (
        "---\n"
        f"license: {card.get('license', 'apache-2.0')}\n"
        f"language:{_yaml_list(card.get('language', ['en']))}\n"
        "library_name: transformers\n"
        "pipeline_tag: text-classification\n"
        f"tags:{_yaml_list(['bert', 'text-classification', 'bertdemo', *card.get('tags', [])])}\n"
        f"datasets:{_yaml_list(card.get('datasets', [info['train_source']]))}\n"
        f"metrics:{_yaml_list(['accuracy', 'f1'])}\n"
        f"base_model: {json.dumps(card.get('base_model', info['base']))}\n"
        "model-index:\n"
        f"- name: {json.dumps(card.get('name', info['name']))}\n"
        "  results:\n"
        "  - task:\n      type: text-classification\n"
        f"    dataset:\n      name: {json.dumps(info['eval_source'])}\n      type: {json.dumps(info['eval_source'])}\n"
        "    metrics:\n"
        f"    - type: accuracy\n      value: {ev['accuracy']:.4f}\n"
        f"    - type: f1\n      name: macro-F1\n      value: {ev['macro_f1']:.4f}\n"
        "---\n\n"
    )
    train_default = f"`{info['train_source']}`"
    hist = "\n".join(
        f"| {h['epoch']} | {h['step']} | {h['train_loss']:.4f} | {h['eval_loss']:.4f} | "
        f"{h['accuracy']:.4f} | {h['macro_f1']:.4f} |" for h in info["history"])
    body = (
        f"# {card.get('name', info['name'])}\n\n"
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
        "| epoch | step | train loss | eval loss | accuracy | macro-F1 |\n|---|---|---|---|---|---|\n"
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
    return front + body


# ---- training ----------------------------------------------------------------------------------

def finetune(train_path: str | os.PathLike | None, eval_path: str | os.PathLike | None,
             out_dir: str | os.PathLike, base: str = DEFAULT_BASE, epochs: int = 3, lr: float = 5e-5,
             seed: int = 42, batch_size: int = 32, max_length: int = 128, max_steps: int | None = None,
             dataset: str | None = None, text_col: str = "text", label_col: str = "label",
             progress: bool = True, *, card: dict | None = None) -> dict:
    """Fine-tune ``base`` on (text, label) data and write a loadable model folder to ``out_dir``.

    Returns the metrics dict that is also written to ``out_dir/metrics.json``. ``card`` lets a
    caller override model-card fields (license, datasets, description, limitations, ...).
    """
    for name, val, lo in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("max_length", max_length, 8)):
        if not isinstance(val, int) or val < lo:
            raise InputError(f"{name} must be an integer >= {lo}, got {val!r}")
    if max_steps is not None and max_steps < 1:
        raise InputError(f"max_steps must be >= 1, got {max_steps!r}")
    if not lr > 0:
        raise InputError(f"lr must be > 0, got {lr!r}")

    if dataset:
        train_rows, eval_rows = _load_hub_dataset(dataset, text_col, label_col)
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
    unknown = sorted({_label_key(lab) for _, lab in eval_rows} - set(label2id))
    if unknown:
        raise InputError(f"eval data has label(s) not seen in train: {', '.join(map(repr, unknown[:10]))}; "
                         f"train labels: {', '.join(map(repr, label2id))}")

    import torch
    from tqdm.auto import tqdm
    from transformers import AutoConfig, AutoTokenizer, BertForSequenceClassification
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

    def encode(rows):
        enc = tokenizer([t for t, _ in rows], truncation=True, max_length=max_length)
        return enc["input_ids"], [label2id[_label_key(lab)] for _, lab in rows]

    tr_ids, tr_y = encode(train_rows)
    ev_ids, ev_y = encode(eval_rows)
    pad = tokenizer.pad_token_id or 0

    def collate(idx, ids, ys):
        seqs = [ids[i] for i in idx]
        width = max(len(s) for s in seqs)
        x = torch.full((len(seqs), width), pad, dtype=torch.long)
        m = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            x[r, : len(s)] = torch.tensor(s)
            m[r, : len(s)] = 1
        return x, m, torch.tensor([ys[i] for i in idx])

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

    def evaluate():
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
                bar.update(1)
                if step % 20 == 0:
                    bar.set_postfix(epoch=epoch, loss=f"{run_loss / n_loss:.4f}")
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
        "seconds": round(seconds, 1),
    }

    def write(folder: Path) -> None:
        model.save_pretrained(str(folder))  # transformers 5 always writes model.safetensors
        save_tokenizer(tokenizer, folder)
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        (folder / "README.md").write_text(model_card({**metrics, "card": card or {}}), encoding="utf-8")

    metrics["out_dir"] = str(atomic_write_dir(out_dir, write))
    return metrics


# ---- CLI ---------------------------------------------------------------------------------------

def register(subparsers) -> None:
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
    p.add_argument("--epochs", type=int, default=3, metavar="N")
    p.add_argument("--lr", type=float, default=5e-5, metavar="X")
    p.add_argument("--seed", type=int, default=42, metavar="S")
    p.add_argument("--batch-size", type=int, default=32, metavar="N")
    p.add_argument("--max-length", type=int, default=128, metavar="N")
    p.add_argument("--max-steps", type=int, default=None, metavar="N", help="stop after N optimizer steps")
    p.add_argument("--dataset", metavar="NAME", default=None,
                   help="a Hugging Face dataset instead of files, e.g. glue/sst2 (needs the hub)")
    p.add_argument("--text-col", default="text", metavar="C")
    p.add_argument("--label-col", default="label", metavar="C")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(handler=_run)


def _run(args) -> int:
    metrics = finetune(
        args.train, args.eval, args.out, base=args.base, epochs=args.epochs, lr=args.lr,
        seed=args.seed, batch_size=args.batch_size, max_length=args.max_length,
        max_steps=args.max_steps, dataset=args.dataset, text_col=args.text_col,
        label_col=args.label_col, progress=not args.json)
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
