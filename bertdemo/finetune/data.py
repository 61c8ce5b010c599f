"""Fine-tuning data: (text, label) pairs from CSV (the project's one reader), JSONL or a hub dataset."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bertdemo.config import DEFAULT_MLM_MODEL
from bertdemo.csvfile import decode_utf8, read_csv
from bertdemo.errors import InputError

DEFAULT_BASE = DEFAULT_MLM_MODEL  # the bundled masked LM
SUPPORTED_EXTENSIONS = (".csv", ".jsonl", ".ndjson")


def read_examples(path: str | os.PathLike[str], text_col: str = "text", label_col: str = "label",
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
    rows = _csv_rows(p, text_col, label_col, role) if ext == ".csv" else _jsonl_rows(p, text_col, label_col, role)
    if not rows:
        raise InputError(f"{role} file has no examples: {p}")
    return rows


def _csv_rows(p: Path, text_col: str, label_col: str, role: str) -> list[tuple[str, Any]]:
    table = read_csv(p, field=f"{role} file")
    missing = [c for c in (text_col, label_col) if c not in table.columns]
    if missing:
        raise InputError(f"{role} file {p.name}: missing column(s) {', '.join(map(repr, missing))}; "
                         f"found {', '.join(map(repr, table.columns)) or 'none'}")
    rows = []
    for lineno, row in enumerate(table.rows, start=2):
        t, lab = row[text_col], row[label_col]
        if not t.strip() or not lab.strip():
            raise InputError(f"{role} file {p.name}: row at line {lineno} has an empty {text_col!r} or {label_col!r}")
        rows.append((t, lab.strip()))
    return rows


def _jsonl_rows(p: Path, text_col: str, label_col: str, role: str) -> list[tuple[str, Any]]:
    text = decode_utf8(p.read_bytes(), p.name, f"{role} file")
    if not text.strip():
        raise InputError(f"{role} file is empty: {p}")
    rows: list[tuple[str, Any]] = []
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
    return rows


def label_key(x: Any) -> str:
    """Label as the string stored in ``config.json`` (``1``, ``"1"`` and ``"01"`` are one label)."""
    if isinstance(x, int) or (isinstance(x, str) and x.lstrip("-").isdigit()):
        return str(int(x))
    return str(x)


def build_label_maps(labels: list[Any]) -> tuple[dict[int, str], dict[str, int]]:
    """Stable label ids: integers (or integer strings) sort numerically, other strings alphabetically."""
    keys = {label_key(x) for x in labels}
    if all(k.lstrip("-").isdigit() for k in keys):
        ordered = sorted(keys, key=int)
    else:
        ordered = sorted(keys)
    id2label = dict(enumerate(ordered))
    return id2label, {v: k for k, v in id2label.items()}


def load_hub_dataset(name: str, text_col: str, label_col: str) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
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

    def rows(split: str) -> list[tuple[str, Any]]:
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
