"""bertdemo.finetune: CSV/JSONL fine-tuning from a tiny random BERT, determinism, clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bertdemo.errors import InputError, ModelLoadError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

WORDS = ("good great love wonderful excellent happy fine nice best enjoy "
         "bad awful hate terrible worst boring poor sad ugly waste "
         "the a movie film was is it this very really and plot actors").split()
POS = ["good", "great", "love", "wonderful", "excellent", "happy", "nice", "best"]
NEG = ["bad", "awful", "hate", "terrible", "worst", "boring", "poor", "sad"]


def _rows(n: int, offset: int = 0) -> list[tuple[str, str]]:
    out = []
    for i in range(n):
        k = i + offset
        if k % 2:
            out.append((f"the movie was really {POS[k % len(POS)]} and {POS[(k // 2) % len(POS)]}", "positive"))
        else:
            out.append((f"this film is very {NEG[k % len(NEG)]} and {NEG[(k // 2) % len(NEG)]}", "negative"))
    return out


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> str:
    """A randomly initialised 2-layer BERT (hidden 32) with a vocab of the words above."""
    import torch
    from transformers import BertConfig, BertForPreTraining, BertTokenizerFast

    d = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = BertTokenizerFast(vocab=str(d / "vocab.txt"))  # not vocab_file= (ignored in transformers 5)
    assert tok.convert_tokens_to_ids("movie") != tok.unk_token_id
    tok.save_pretrained(str(d))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    BertForPreTraining(cfg).save_pretrained(str(d))
    return str(d)


def _write_csv(path: Path, rows, header=("text", "label")) -> Path:
    import csv

    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _write_jsonl(path: Path, rows, int_labels: bool = False) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for t, lab in rows:
            fh.write(json.dumps({"text": t, "label": int(lab == "positive") if int_labels else lab}) + "\n")
    return path


def _run(base, train, ev, out, **kw):
    from bertdemo.finetune import finetune

    kw.setdefault("epochs", 2)
    kw.setdefault("lr", 1e-3)
    kw.setdefault("batch_size", 8)
    kw.setdefault("max_length", 16)
    return finetune(train, ev, out, base=base, progress=False, **kw)


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "model.safetensors"))


def test_csv_output_loadable_with_labels_metrics_and_card(tiny_base, tmp_path):
    from transformers import AutoTokenizer, BertForSequenceClassification

    train = _write_csv(tmp_path / "train.csv", _rows(64))
    ev = _write_csv(tmp_path / "dev.csv", _rows(16, offset=100))
    out = tmp_path / "model"
    m = _run(tiny_base, train, ev, out)
    assert {p.name for p in out.iterdir()} >= {
        "README.md", "config.json", "metrics.json", "model.safetensors", "tokenizer.json", "vocab.txt"}
    assert not list(out.glob("*.bin"))
    model = BertForSequenceClassification.from_pretrained(str(out), use_safetensors=True)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert model.config.label2id == {"negative": 0, "positive": 1}
    tok = AutoTokenizer.from_pretrained(str(out))
    assert tok.convert_tokens_to_ids("movie") != tok.unk_token_id
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["eval"] == m["eval"] and len(saved["history"]) == 2
    assert 0.0 <= saved["eval"]["accuracy"] <= 1.0 and "macro_f1" in saved["eval"]
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "base_model:" in card and "license:" in card
    for section in ("## Model description", "## Training data", "## Training procedure",
                    "## Evaluation results", "## Limitations and bias"):
        assert section in card
    # no temp folders left beside the output
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_jsonl_with_int_labels_and_determinism(tiny_base, tmp_path):
    train = _write_jsonl(tmp_path / "train.jsonl", _rows(48), int_labels=True)
    ev = _write_jsonl(tmp_path / "dev.jsonl", _rows(12, offset=50), int_labels=True)
    a = _run(tiny_base, train, ev, tmp_path / "a", seed=7)
    b = _run(tiny_base, train, ev, tmp_path / "b", seed=7)
    c = _run(tiny_base, train, ev, tmp_path / "c", seed=8, max_steps=3)
    assert a["id2label"] == {"0": "0", "1": "1"}
    assert a["history"] == b["history"]
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)
    assert c["hyperparameters"]["steps_run"] == 3
    wc = _weights(tmp_path / "c")
    assert not all((wa[k] == wc[k]).all() for k in wa)


def test_rerun_replaces_output_atomically(tiny_base, tmp_path):
    train = _write_csv(tmp_path / "train.csv", _rows(16))
    ev = _write_csv(tmp_path / "dev.csv", _rows(8, offset=20))
    out = tmp_path / "model"
    _run(tiny_base, train, ev, out, epochs=1)
    (out / "stale.txt").write_text("old")
    bad = _write_csv(tmp_path / "bad.csv", [("x", "neutral")])
    with pytest.raises(InputError):
        _run(tiny_base, train, bad, out, epochs=1)
    assert (out / "stale.txt").exists() and (out / "model.safetensors").exists()  # kept intact
    _run(tiny_base, train, ev, out, epochs=1)
    assert not (out / "stale.txt").exists()


@pytest.mark.parametrize("kind, needle", [
    ("missing", "not found"),
    ("columns", "missing column(s) 'text'"),
    ("empty", "empty"),
    ("header_only", "no data rows"),
    ("unknown_label", "not seen in train: 'neutral'"),
    ("not_utf8", "byte offset"),
    ("extension", "unsupported extension '.txt'"),
    ("bad_json", "line 2 is not valid JSON"),
])
def test_bad_files_raise_clear_input_errors(tiny_base, tmp_path, kind, needle):
    train = _write_csv(tmp_path / "train.csv", _rows(8))
    ev = tmp_path / "dev.csv"
    if kind == "missing":
        ev = tmp_path / "nope.csv"
    elif kind == "columns":
        _write_csv(ev, [("a", "positive")], header=("sentence", "label"))
    elif kind == "empty":
        ev.write_text("")
    elif kind == "header_only":
        ev.write_text("text,label\n")
    elif kind == "unknown_label":
        _write_csv(ev, [("the plot", "neutral"), ("good", "positive")])
    elif kind == "not_utf8":
        ev.write_bytes(b"text,label\ngood movie,positive\nna\xefve \xff,negative\n")
    elif kind == "extension":
        ev = tmp_path / "dev.txt"
        ev.write_text("text,label\na,positive\n")
    elif kind == "bad_json":
        ev = tmp_path / "dev.jsonl"
        ev.write_text('{"text": "good", "label": "positive"}\n{"text": oops}\n')
    with pytest.raises(InputError) as info:
        _run(tiny_base, train, ev, tmp_path / "out")
    assert needle in str(info.value)
    if kind == "columns":
        assert "'sentence'" in str(info.value)  # names the columns that exist
    if kind == "not_utf8":
        assert "line 3" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_bad_base_is_a_model_load_error(tmp_path):
    train = _write_csv(tmp_path / "train.csv", _rows(8))
    with pytest.raises(ModelLoadError):
        _run(str(tmp_path / "no-such-model"), train, train, tmp_path / "out")


def test_cli_subcommand_json(tiny_base, tmp_path, capsys):
    import argparse

    from bertdemo import finetune as ft

    parser = argparse.ArgumentParser()
    ft.register(parser.add_subparsers(dest="cmd"))
    train = _write_csv(tmp_path / "train.csv", _rows(16))
    ev = _write_csv(tmp_path / "dev.csv", _rows(8, offset=30))
    args = parser.parse_args(["finetune", "--train", str(train), "--eval", str(ev), "--out",
                              str(tmp_path / "m"), "--base", tiny_base, "--epochs", "1",
                              "--batch-size", "8", "--max-length", "16", "--json"])
    assert args.handler(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["id2label"] == {"0": "negative", "1": "positive"}


def test_label_maps_are_stable():
    from bertdemo.finetune import build_label_maps

    assert build_label_maps(["pos", "neg", "pos"])[0] == {0: "neg", 1: "pos"}
    assert build_label_maps(["10", "2", "1"])[0] == {0: "1", 1: "2", 2: "10"}  # numeric, not "1","10","2"
    assert build_label_maps([1, 0, "1"])[1] == {"0": 0, "1": 1}


def test_hub_dataset_fails_clearly_when_offline(tiny_base, tmp_path, monkeypatch):
    from bertdemo.finetune import finetune

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(InputError, match="could not load dataset 'glue/sst2'"):
        finetune(None, None, tmp_path / "out", base=tiny_base, dataset="glue/sst2", progress=False)
    assert not (tmp_path / "out").exists()


def test_default_plan_gives_small_data_enough_steps():
    from bertdemo.finetune.train import MIN_STEPS, plan

    epochs, batch, lr, chosen = plan(80, hidden_size=384)
    assert batch == 8 and epochs * -(-80 // batch) >= MIN_STEPS and lr == 1e-4
    assert any("optimizer steps" in c for c in chosen)
    assert plan(80, hidden_size=768)[2] == 3e-5  # a bert-base-sized base gets a gentler rate
    assert plan(80, 384, epochs=2, batch_size=32, lr=5e-5) == (2, 32, 5e-5, [])  # what is given is kept
    assert plan(100_000, 384)[:2] == (3, 32)  # big data: the usual 3 epochs of batch 32


def _separable(n: int, seed: int) -> list[tuple[str, str]]:
    """Clearly positive or negative everyday sentences, varied enough that 9 steps at 5e-5 do not learn them."""
    import random

    pos_t = ["I really enjoyed the {x}.", "What a {a} {x}!", "The {x} was {a} from start to finish.",
             "We loved the {x}, it was {a}.", "Honestly the best {x} I have had in years.",
             "Such a {a} {x}, I would go again.", "The {x} made me so happy.", "Everything about the {x} was {a}."]
    neg_t = ["I really disliked the {x}.", "What a {a} {x}!", "The {x} was {a} from start to finish.",
             "We hated the {x}, it was {a}.", "Honestly the worst {x} I have had in years.",
             "Such a {a} {x}, I would never go again.", "The {x} made me so angry.", "Everything about the {x} was {a}."]
    pos_a = ["wonderful", "great", "lovely", "fantastic", "superb", "delightful"]
    neg_a = ["awful", "terrible", "dreadful", "horrible", "miserable", "boring"]
    things = ["film", "meal", "book", "concert", "hotel", "game", "show", "trip", "class", "party", "service", "room"]
    r = random.Random(seed)
    return [(r.choice(pos_t).format(x=r.choice(things), a=r.choice(pos_a)), "positive") if i % 2 else
            (r.choice(neg_t).format(x=r.choice(things), a=r.choice(neg_a)), "negative") for i in range(n)]


@pytest.mark.slow
def test_defaults_learn_80_clear_rows_with_the_bundled_base(tmp_path):
    """80 clearly labelled rows, every default (bundled base), ~75 s here. The old defaults (3 epochs of batch 32
    at 5e-5: 9 steps) reached 0.75 on this data and 0.50 on the issue's."""
    from bertdemo.finetune import finetune

    train = _write_csv(tmp_path / "train.csv", _separable(80, 1))
    ev = _write_csv(tmp_path / "dev.csv", _separable(20, 2))
    m = finetune(train, ev, tmp_path / "model", progress=False)
    assert m["hyperparameters"]["steps_run"] >= 100
    assert m["eval"]["accuracy"] >= 0.5 + 0.4  # the majority class is 0.50 of the eval rows
    assert "warning" not in m


def test_no_better_than_majority_gets_a_plain_warning(tiny_base, tmp_path, capsys):
    import argparse

    from bertdemo import finetune as ft
    from bertdemo.finetune.train import no_better_warning

    assert no_better_warning(0.9, [0, 1] * 5, {0: "neg", 1: "pos"}) is None
    assert "always answering" in no_better_warning(0.5, [0, 1] * 5, {0: "neg", 1: "pos"})
    assert "'neg'" in no_better_warning(0.72, [0] * 7 + [1] * 3, {0: "neg", 1: "pos"})  # 70 % are 'neg'
    # a run that cannot have learned (one step at a tiny learning rate): the warning reaches metrics, card and CLI
    parser = argparse.ArgumentParser()
    ft.register(parser.add_subparsers(dest="cmd"))
    train = _write_csv(tmp_path / "train.csv", _rows(32))
    ev = _write_csv(tmp_path / "dev.csv", _rows(16, offset=40))
    args = parser.parse_args(["finetune", "--train", str(train), "--eval", str(ev), "--out", str(tmp_path / "m"),
                              "--base", tiny_base, "--max-steps", "1", "--lr", "1e-7", "--max-length", "16", "--json"])
    assert args.handler(args) == 0
    captured = capsys.readouterr()
    metrics = json.loads(captured.out)
    assert metrics["eval"]["accuracy"] <= 0.52
    assert "no better than always answering" in metrics["warning"]
    assert "warning: the model is no better" in captured.err
    assert "**Warning:**" in (tmp_path / "m" / "README.md").read_text()


def test_progress_is_a_few_plain_lines_when_not_a_terminal(tiny_base, tmp_path, capsys):
    from bertdemo.finetune import finetune

    train = _write_csv(tmp_path / "train.csv", _rows(64))
    ev = _write_csv(tmp_path / "dev.csv", _rows(16, offset=100))
    m = finetune(train, ev, tmp_path / "m", base=tiny_base, lr=1e-3, max_length=16, progress=True)
    err = capsys.readouterr().err  # pytest's capture is not a terminal
    lines = err.strip().splitlines()
    steps = m["hyperparameters"]["steps_run"]
    assert steps >= 100 and "\r" not in err
    step_lines = [ln for ln in lines if ln.startswith("finetune: step")]
    assert 1 <= len(step_lines) <= 11, step_lines  # one every tenth, not one per redraw
    assert step_lines[-1].startswith(f"finetune: step {steps}/{steps} (100 %)")
    assert lines[0].startswith("finetune: chose batch size 8")
    assert len(lines) <= len(step_lines) + m["hyperparameters"]["epochs"] + 1
