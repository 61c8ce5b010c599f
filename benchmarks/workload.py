"""The benchmark's workloads, profiles and model shapes (random-weight checkpoints, cached)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertdemo.config import DEFAULT_MLM_MODEL, DEFAULT_SENTIMENT_MODEL

VOCAB_SIZE = 30522  # bert-base-uncased's vocabulary size, for the generated tokenizer
CLIENTS = (1, 4, 16)
TASKS = ("fill-mask", "nsp", "sentiment")
TOLERANCE = 1e-4  # audit scores: batched vs loop


@dataclass(frozen=True)
class Profile:
    name: str
    large_shape: str  # bert-base (full) or tiny (quick stand-in)
    slice_s: dict[str, float]  # shape label -> one baseline or bertdemo slice of a serving cell
    rounds: int  # slices per variant per serving cell (interleaved ABAB)
    pays_rounds: int  # round-robin passes over the variants of "what pays"
    audit_pairs: dict[str, int]  # shape label -> pairs scored
    startup_runs: dict[str, int]
    limit_batch: tuple[int, int]  # (batch, tokens) of the limit forward
    limit_seconds: float
    agreement_probes: int
    # end to end over HTTP (benchmarks.loadtest.http_compare): shape label -> one slice in s (absent: not run)
    http_seconds: dict[str, float] = field(default_factory=dict)
    http_rounds: int = 2
    http_clients: int = 16
    http_tasks: tuple[str, ...] = TASKS
    http_references: bool = True  # also the other precision forced and the no-op ceiling (two more servers)
    http_client: str = "rest"  # benchmarks.restclient (light) or "gradio_client" (see benchmarks/README.md)


FULL = Profile("full", "bert-base", slice_s={"bundled": 1.0, "bert-base": 3.0}, rounds=2, pays_rounds=1,
               audit_pairs={"bundled": 12, "bert-base": 2}, startup_runs={"bundled": 2, "bert-base": 1},
               limit_batch=(16, 32), limit_seconds=2.0, agreement_probes=240,
               http_seconds={"bundled": 10.0, "bert-base": 10.0})
QUICK = Profile("quick", "tiny", slice_s={"bundled": 0.12, "tiny": 0.1}, rounds=1, pays_rounds=1,
                audit_pairs={"bundled": 4, "tiny": 3}, startup_runs={"bundled": 1, "tiny": 0},
                limit_batch=(4, 16), limit_seconds=0.2, agreement_probes=40,
                http_seconds={"tiny": 1.0}, http_rounds=1, http_clients=4, http_tasks=("fill-mask",),
                http_references=False)

# ---- workloads --------------------------------------------------------------------------------
FILL = [
    "paris is the [MASK] of france.",
    "the doctor told me to [MASK] more water every day.",
    "she opened the window because the room was too [MASK].",
    "i would like a cup of [MASK] with milk and no sugar, please.",
    "the train to berlin was late again this [MASK].",
    "he [MASK] the book on the table and left the room without a word.",
    "our team won the [MASK] after a long and difficult season.",
    "the children played in the [MASK] until it started to rain.",
    "a good [MASK] always checks the results twice before publishing them.",
    "the museum is closed on [MASK] and open every other day of the week.",
    "they planted trees along the river to stop the [MASK] from washing the soil away.",
    "my favourite [MASK] is the one with the old red door.",
    "the price of [MASK] went up again last month.",
    "we took the [MASK] to the airport early in the morning.",
    "the [MASK] barked at the postman.",
    "after dinner we watched a [MASK] about the history of the city, which was longer than expected.",
]
NSP = [
    ("the sky was dark and full of clouds.", "soon it started to rain."),
    ("she bought a new bicycle.", "the museum is closed on mondays."),
    ("he studied for the exam every night.", "in the end he passed with a good grade."),
    ("the train was late again.", "my favourite colour is blue."),
    ("we planted tomatoes in the spring.", "by the summer the garden was full of fruit."),
    ("the meeting started at nine.", "penguins cannot fly but they swim well."),
    ("the children played in the park until it started to rain, and then they ran home.",
     "their mother made them hot chocolate when they arrived."),
    ("the shop sells bread and milk.", "the river flows into the sea."),
]
SENTIMENT = [
    "i loved this movie.",
    "a terrible film, i want my two hours back.",
    "the food was good but the service was slow.",
    "what a great day!",
    "the hotel room was dirty and the staff did not care at all about it.",
    "not bad.",
    "this is the best book i have read this year, i could not put it down.",
    "the plot was boring and the actors seemed tired.",
    "happy with the price, the quality and the fast delivery.",
    "sad ending, but a beautiful story about a family and a small town by the sea.",
]
_OCCUPATIONS = ["nurse", "doctor", "engineer", "teacher", "pilot", "secretary", "farmer", "lawyer",
                "cook", "manager"]
_TEMPLATES = [
    "the {o} said that {p} would finish the report by friday.",
    "everyone agreed that the {o} knew what {p} was doing.",
    "the {o} was tired because {p} had worked all night.",
    "when the {o} arrived, {p} asked for a cup of tea.",
    "the {o} smiled because {p} liked the new office.",
]


def crows_pairs(n: int) -> list[tuple[str, str]]:
    """``n`` minimal pairs that differ in one pronoun (the shape of CrowS-Pairs items)."""
    pairs = []
    for t in _TEMPLATES:
        for o in _OCCUPATIONS:
            pairs.append((t.format(o=o, p="he"), t.format(o=o, p="she")))
    return [pairs[(i * 7) % len(pairs)] for i in range(n)]


def _all_words() -> list[str]:
    texts = [*FILL, *(a + " " + b for a, b in NSP), *SENTIMENT, *(" ".join(p) for p in crows_pairs(50)),
             "hello"]
    words: dict[str, None] = {}
    for t in texts:
        for w in re.findall(r"[a-z]+", t.lower()):
            words[w] = None
    return list(words)


# ---- checkpoints ------------------------------------------------------------------------------
def _is_checkpoint(path: Path) -> bool:
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def generated_tokenizer(cache: Path) -> Path:
    """A 30522-entry WordPiece tokenizer: the bench's words, single characters, then fillers."""
    from benchmarks.modelfactory import SPECIALS, make_tokenizer

    out = cache / "tokenizer-30522"
    if (out / "tokenizer_config.json").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    vocab = list(SPECIALS)
    for piece in [*_all_words(), *(c for ch in "abcdefghijklmnopqrstuvwxyz0123456789.,!?'-" for c in (ch, "##" + ch))]:
        if piece not in vocab:
            vocab.append(piece)
    vocab += [f"[unused{i}]" for i in range(VOCAB_SIZE - len(vocab))]
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    make_tokenizer(out / "vocab.txt").save_pretrained(out)
    return out


def _checkpoint(cache: Path, kind: str, shape: str, tokenizer_dir: Path, tag: str) -> Path:
    from benchmarks.modelfactory import make_checkpoint

    out = cache / f"{shape}-{kind}-{tag}"
    if not _is_checkpoint(out):
        make_checkpoint(out, kind, shape, tokenizer_dir=tokenizer_dir, seed=0 if kind == "pretraining" else 1,
                        max_position_embeddings=512 if shape == "bert-base" else 128)
    return out


@dataclass
class Shape:
    label: str  # "bundled", "bert-base", "tiny"
    mlm: str
    clf: str
    source: str  # what the folders are
    info: dict[str, Any] = field(default_factory=dict)


def prepare_shapes(profile: Profile, cache: Path) -> list[Shape]:
    cache.mkdir(parents=True, exist_ok=True)
    gen_tok: Path | None = None

    def gen() -> Path:
        nonlocal gen_tok
        if gen_tok is None:
            gen_tok = generated_tokenizer(cache)
        return gen_tok

    mlm_b, clf_b = Path(DEFAULT_MLM_MODEL), Path(DEFAULT_SENTIMENT_MODEL)
    real_mlm, real_clf = _is_checkpoint(mlm_b), _is_checkpoint(clf_b)
    bundled = Shape(
        "bundled",
        str(mlm_b) if real_mlm else str(_checkpoint(cache, "pretraining", "bert-tiny", gen(), "gen")),
        str(clf_b) if real_clf else str(_checkpoint(cache, "classifier", "bert-tiny", gen(), "gen")),
        source=("assets/models (bundled)" if real_mlm and real_clf else
                "bert-tiny random-weight stand-in (bundled models not present yet)" if not (real_mlm or real_clf) else
                "partly bundled, partly bert-tiny stand-in"),
    )
    # the large shape reads the bundled tokenizer when it is bert-sized, else the generated one
    tok_dir, tag = gen(), "gen"
    if real_mlm:
        try:
            vocab_n = sum(1 for _ in (mlm_b / "vocab.txt").open(encoding="utf-8"))
        except OSError:
            vocab_n = 0
        if vocab_n >= 20000:
            tok_dir, tag = mlm_b, "bundledtok"
    shape = profile.large_shape
    large = Shape(shape, str(_checkpoint(cache, "pretraining", shape, tok_dir, tag)),
                  str(_checkpoint(cache, "classifier", shape, tok_dir, tag)),
                  source=f"{shape} random weights (modelfactory), tokenizer: {'bundled' if tag != 'gen' else 'generated 30522'}")
    for s in (bundled, large):
        cfg = json.loads((Path(s.mlm) / "config.json").read_text(encoding="utf-8"))
        s.info = {k: cfg.get(k) for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                          "intermediate_size", "vocab_size")}
    return [bundled, large]
