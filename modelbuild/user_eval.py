"""The user-style evaluation: what a visitor types, hand-written, never trained on.

Files in ``modelbuild/eval/`` (see its README): ``cloze.jsonl`` (one [MASK], a set of
acceptable answers), ``nsp.jsonl`` (a sentence and its natural next sentence, with a topic; the
negatives pair each first sentence with the second sentence of another topic, so both are the same
everyday style), ``app_examples.json`` (every example the app and the README offer, with what a
reasonable answer is) and ``occupations.txt`` (for the occupation probes).

Scoring mirrors the app: a softmax over the whole vocabulary at each [MASK], each mask predicted
from one forward pass; NSP is P(IsNext) from the pre-training head.
"""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path

import torch

EVAL_DIR = Path(os.environ.get("BERTDEMO_BUILD_EVAL_DIR") or Path(__file__).with_name("eval"))


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def occupations() -> set[str]:
    return {w.strip() for w in (EVAL_DIR / "occupations.txt").read_text("utf-8").splitlines() if w.strip()}


@torch.inference_mode()
def top_tokens(model, tok, texts: list[str], k: int = 5, batch: int = 32) -> list[list[list[tuple[str, float]]]]:
    """Per text, per [MASK] (in order): the top-``k`` (token, probability)."""
    out = []
    for i in range(0, len(texts), batch):
        enc = tok(texts[i:i + batch], padding=True, return_tensors="pt")
        seq = model.bert(**enc)[0]
        for r in range(len(enc["input_ids"])):
            pos = (enc["input_ids"][r] == tok.mask_token_id).nonzero().flatten().tolist()
            probs = model.cls.predictions(seq[r, pos]).float().softmax(-1)
            v, ix = probs.topk(k, dim=-1)
            out.append([[(tok.convert_ids_to_tokens(int(t)), float(p)) for p, t in zip(v[m], ix[m])]
                        for m in range(len(pos))])
    return out


@torch.inference_mode()
@torch.inference_mode()
def logit_gaps(model, tok, pairs: list[tuple[str, str]], batch: int = 32) -> list[float]:
    """logit(is next) - logit(not next) of the NSP head per (A, B) pair, as the app computes it."""
    out: list[float] = []
    for i in range(0, len(pairs), batch):
        chunk = pairs[i:i + batch]
        enc = tok([a for a, _ in chunk], [b for _, b in chunk], padding=True, truncation=True,
                  max_length=256, return_tensors="pt")
        logits = model.cls.seq_relationship(model.bert(**enc)[1]).float()
        out += (logits[:, 0] - logits[:, 1]).tolist()
    return out


def is_next_probs(model, tok, pairs: list[tuple[str, str]], batch: int = 32) -> list[float]:
    """P(B follows A) from the NSP head (label 0 = IsNext, as in BERT): the softmax of two logits."""
    return [1.0 / (1.0 + math.exp(-g)) if g >= 0 else math.exp(g) / (1.0 + math.exp(g))
            for g in logit_gaps(model, tok, pairs, batch)]


def nsp_eval_pairs(items: list[dict], seed: int = 7) -> list[tuple[str, str, int, str]]:
    """(A, B, label, id): every item once as a true pair (label 1) and once with the second
    sentence of an item of another topic (label 0); balanced, deterministic."""
    rng = random.Random(seed)
    order = list(range(len(items)))
    out = []
    for it in items:
        out.append((it["a"], it["b"], 1, it["id"]))
        rng.shuffle(order)
        j = next(j for j in order if items[j]["topic"] != it["topic"])
        out.append((it["a"], items[j]["b"], 0, it["id"]))
    return out


def evaluate_cloze(model, tok, items: list[dict]) -> dict:
    tops = top_tokens(model, tok, [it["text"] for it in items])
    top1 = top5 = 0
    per_topic: dict[str, list[int]] = {}
    examples = []
    for it, t in zip(items, tops):
        words = [w for w, _ in t[0]]
        ok = set(it["answers"])
        h1, h5 = words[0] in ok, bool(ok & set(words))
        top1 += h1
        top5 += h5
        per_topic.setdefault(it["topic"], [0, 0])
        per_topic[it["topic"]][0] += h5
        per_topic[it["topic"]][1] += 1
        examples.append({"id": it["id"], "text": it["text"], "top5": words, "top1_ok": h1, "top5_ok": h5})
    n = len(items)
    return {"items": n, "top1": top1 / n, "top5": top5 / n,
            "top5_by_topic": {k: round(v[0] / v[1], 3) for k, v in sorted(per_topic.items())},
            "predictions": examples}


def evaluate_nsp(model, tok, items: list[dict]) -> dict:
    pairs = nsp_eval_pairs(items)
    probs = is_next_probs(model, tok, [(a, b) for a, b, _, _ in pairs])
    correct = sum((p >= 0.5) == bool(lab) for p, (_, _, lab, _) in zip(probs, pairs))
    pos = [p for p, q in zip(probs, pairs) if q[2] == 1]
    neg = [p for p, q in zip(probs, pairs) if q[2] == 0]
    ranked = sum(pos[i] > neg[i] for i in range(len(pos)))
    neg_sorted = sorted(neg)
    return {"pairs": len(pairs), "accuracy": correct / len(pairs),
            "true_pair_accepted": sum(p >= 0.5 for p in pos) / len(pos),
            "other_topic_rejected": sum(p < 0.5 for p in neg) / len(neg),
            "ranking_accuracy": ranked / len(pos), "median_is_next_of_negatives": neg_sorted[len(neg) // 2]}


def evaluate_app_examples(model, tok, examples: dict, classify=None) -> list[dict]:
    """Each example of the app/README with the model's answer and whether it is reasonable.

    ``classify`` (texts -> labels) scores the sentiment examples when a classifier is given.
    """
    occ = occupations()
    rows = []
    fm = examples.get("fill_mask", [])
    tops = top_tokens(model, tok, [e["text"] for e in fm]) if fm else []
    for e, t in zip(fm, tops):
        expects = e.get("expect")
        expects = expects if isinstance(expects, list) else [expects]
        verdicts = []
        for ex in expects:
            if not ex:
                continue
            words = [w for w, _ in t[ex.get("mask_index", 0)]]
            if "min_occupations_in_top5" in ex:
                verdicts.append(sum(w in occ for w in words) >= ex["min_occupations_in_top5"])
            else:
                verdicts.append(bool(set(ex["any_in_top5"]) & set(words)))
        rows.append({"task": "fill_mask", "source": e.get("source", ""), "input": e["text"],
                     "answer": " | ".join(", ".join(f"{w} {p:.0%}" for w, p in m) for m in t),
                     "ok": all(verdicts) if verdicts else None, "note": e.get("note", "")})
    nsp = examples.get("nsp", [])
    if nsp:
        for e, p in zip(nsp, is_next_probs(model, tok, [(e["a"], e["b"]) for e in nsp])):
            rows.append({"task": "next_sentence", "source": e.get("source", ""), "input": f"{e['a']} || {e['b']}",
                         "answer": f"P(is next) {p:.1%}", "ok": (p >= 0.5) == bool(e["expect_is_next"])
                         if e.get("expect_is_next") is not None else None, "note": e.get("note", "")})
    for e in examples.get("ranking", []):
        ps = is_next_probs(model, tok, [(e["a"], c) for c in e["candidates"]])
        best = e["candidates"][max(range(len(ps)), key=ps.__getitem__)]
        rows.append({"task": "rank_next", "source": e.get("source", ""), "input": e["a"],
                     "answer": f"best: {best} ({max(ps):.1%})",
                     "ok": best == e["expect_best"] if e.get("expect_best") else None, "note": e.get("note", "")})
    sent = examples.get("sentiment", [])
    if sent and classify is not None:
        for e, lab in zip(sent, classify([e["text"] for e in sent])):
            rows.append({"task": "sentiment", "source": e.get("source", ""), "input": e["text"], "answer": lab,
                         "ok": lab == e["expect"] if e.get("expect") else None, "note": e.get("note", "")})
    return rows


def load_app_examples() -> dict:
    return json.loads((EVAL_DIR / "app_examples.json").read_text("utf-8"))


def unique_rows(rows: list[dict]) -> list[dict]:
    """One row per (task, input): the app and README repeat some examples; count each once."""
    out: dict[tuple[str, str], dict] = {}
    for r in rows:
        key = (r["task"], r["input"])
        if key in out:
            out[key]["source"] = ", ".join(filter(None, [out[key]["source"], r["source"]]))
        else:
            out[key] = dict(r)
    return list(out.values())


def app_summary(rows: list[dict]) -> dict:
    rows = unique_rows(rows)
    judged = [r for r in rows if r["ok"] is not None]
    return {"judged": len(judged), "reasonable": sum(r["ok"] for r in judged), "rows": rows}


def evaluate_user_style(model, tok, classify=None) -> dict:
    """The whole user-style report for a ``BertForPreTraining`` (and optionally a classifier)."""
    model.eval()
    res = {"cloze": evaluate_cloze(model, tok, load_jsonl(EVAL_DIR / "cloze.jsonl"))}
    if getattr(model.cls, "seq_relationship", None) is not None:
        res["nsp"] = evaluate_nsp(model, tok, load_jsonl(EVAL_DIR / "nsp.jsonl"))
    res["app_examples"] = app_summary(evaluate_app_examples(model, tok, load_app_examples(), classify))
    return res


def summary(res: dict) -> dict:
    """The headline numbers (for logs and candidate choice)."""
    out = {"cloze_top1": round(res["cloze"]["top1"], 4), "cloze_top5": round(res["cloze"]["top5"], 4)}
    if "nsp" in res:
        out["nsp_accuracy"] = round(res["nsp"]["accuracy"], 4)
        out["nsp_ranking"] = round(res["nsp"]["ranking_accuracy"], 4)
    out["app_examples_ok"] = f"{res['app_examples']['reasonable']}/{res['app_examples']['judged']}"
    return out
