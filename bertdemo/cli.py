"""Command line: ``bertdemo fill | nsp | sentiment | attention | finetune | audit | serve``.

Every subcommand calls the shared service. ``--json`` prints machine-readable output; otherwise a
readable table. Exit codes: 0 success, 1 a failed audit verdict, 2 bad input or usage (message on
stderr, one line, no traceback). Input that can be checked without a model (a missing [MASK], an
empty text, a bad --top-k) is checked before any model loads, so a typo answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from bertdemo.config import ENV_VARS, PRECISIONS, load_settings
from bertdemo.errors import BertDemoError, InputError

# fields of the service's messages as a command-line user knows them (the positional arguments)
CLI_FIELDS = {"texts[]": "text {n}", "candidates[]": "candidate {n}"}
# Subcommands defined in other modules; each exposes ``register(subparsers)``.
EXTENSIONS = ("bertdemo.finetune", "bertdemo.audit.cli", "bertdemo.serve", "bertdemo.qualify")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors: one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_model_flags(p: argparse.ArgumentParser) -> None:
    """Model and runtime flags shared by every subcommand that loads a model."""
    g = p.add_argument_group("model selection (flags override BERTDEMO_* environment variables)")
    g.add_argument("--mlm-model", help=f"masked-LM + NSP checkpoint folder or hub id [{ENV_VARS['mlm_model']}]")
    g.add_argument("--sentiment-model", help=f"sentiment checkpoint folder or hub id [{ENV_VARS['sentiment_model']}]")
    g.add_argument("--device", help=f"auto, cpu, cuda [{ENV_VARS['device']}]")
    g.add_argument("--precision", choices=list(PRECISIONS),
                   help=f"auto (default: bf16 where the CPU and qualified weights allow, else fp32) [{ENV_VARS['precision']}]")
    g.add_argument("--batch-size", type=int, help=f"[{ENV_VARS['batch_size']}]")


def settings_from_args(args: argparse.Namespace) -> Any:
    """Settings = defaults < env vars < flags."""
    return load_settings(
        mlm_model=getattr(args, "mlm_model", None),
        sentiment_model=getattr(args, "sentiment_model", None),
        device=getattr(args, "device", None),
        precision=getattr(args, "precision", None),
        batch_size=getattr(args, "batch_size", None),
    )


def service_from_args(args: argparse.Namespace) -> Any:
    from bertdemo.service import ModelService

    return ModelService(settings_from_args(args))


def emit(args: argparse.Namespace, payload: Any, table: str) -> None:
    from bertdemo.tasks.base import plain

    text = json.dumps(plain(payload), ensure_ascii=False, indent=2) if getattr(args, "json", False) else table
    # Lone surrogates (from undecodable argv bytes) cannot be printed as UTF-8: show them as '?'.
    print(text.encode("utf-8", "replace").decode("utf-8"))


def check_fill(args: argparse.Namespace, settings: Any) -> None:
    """What ``fill`` can refuse before loading a model (the service checks again, with the tokenizer)."""
    from bertdemo.textcheck import MASK, check_int, clean_text, normalize_masks

    text = normalize_masks(clean_text(args.text, max_chars=settings.max_chars))
    n = text.count(MASK)
    if n == 0:
        raise InputError(f"has no {MASK}; put {MASK} where a word should be predicted", field="text")
    if n > settings.max_masks:
        raise InputError(f"has {n} {MASK} tokens; at most {settings.max_masks} are allowed", field="text")
    check_int(args.top_k, "top_k", 1, settings.max_top_k)


def check_nsp(args: argparse.Namespace, settings: Any) -> None:
    from bertdemo.textcheck import check_text_list, clean_text

    if args.candidates and args.second is not None:
        raise BertDemoError("give either a second sentence or --candidates, not both")
    if not args.candidates and args.second is None:
        raise BertDemoError("give a second sentence, or --candidates to rank several")
    clean_text(args.first, "first", settings.max_chars)
    if args.candidates:
        check_text_list(args.candidates, "candidates", settings.max_candidates, settings.max_chars)
    else:
        clean_text(args.second, "second", settings.max_chars)


def check_sentiment(args: argparse.Namespace, settings: Any) -> None:
    from bertdemo.textcheck import check_text_list

    check_text_list(args.texts, "texts", settings.max_batch_texts, settings.max_chars)


def _fill(args: argparse.Namespace) -> int:
    check_fill(args, settings_from_args(args))
    svc = service_from_args(args)
    res = svc.fill_mask(args.text, top_k=args.top_k, targets=args.targets)
    lines = [f"Input:  {res.text}", f"Filled: {res.filled}"]
    for m, preds in enumerate(res.predictions, 1):
        lines.append(f"\n[MASK] #{m}")
        lines.append(f"  {'rank':>4}  {'token':<18} {'prob':>7}")
        lines += [f"  {r:>4}  {p.token:<18} {p.score:>7.4f}" for r, p in enumerate(preds, 1)]
    emit(args, {"predictions": res.predictions, "filled": res.filled}, "\n".join(lines))
    return 0


def _nsp(args: argparse.Namespace) -> int:
    check_nsp(args, settings_from_args(args))
    svc = service_from_args(args)
    if args.candidates:
        ranked = svc.rank_next(args.first, args.candidates)
        table = "\n".join([f"{'rank':>4}  {'P(next)':>8}  candidate"] +
                          [f"{r.rank:>4}  {r.is_next:>8.4f}  {r.candidate}" for r in ranked])
        emit(args, {"ranking": ranked}, table)
        return 0
    res = svc.next_sentence(args.first, args.second)
    emit(args, res, f"P(second follows first) = {res.is_next:.4f}")
    return 0


def _sentiment(args: argparse.Namespace) -> int:
    check_sentiment(args, settings_from_args(args))
    svc = service_from_args(args)
    results = svc.sentiment(args.texts)
    lines = [f"{'label':<10} {'score':>6}  text"]
    for text, r in zip(args.texts, results, strict=True):
        shown = text if len(text) <= 60 else text[:57] + "..."
        lines.append(f"{r.label:<10} {r.score:>6.3f}  {shown}" + ("  (truncated)" if r.truncated else ""))
    emit(args, results, "\n".join(lines))
    return 0


def _attention(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bertdemo import attention_view as view
    from bertdemo.textcheck import check_int

    svc = service_from_args(args)
    res = svc.attention(args.text, args.pair)
    layer = check_int(args.layer if args.layer is not None else res.layers, "--layer", 1, res.layers)
    head = check_int(args.head, "--head", 0, res.heads)
    token = check_int(args.token, "--token", 0, len(res.tokens) - 1)
    model = Path(svc.mlm.name).name or svc.mlm.name
    if args.html:
        Path(args.html).write_text(view.page_html(res, layer, head, token, model=model), encoding="utf-8")
    if args.png:
        Path(args.png).write_bytes(view.figure_png(res, layer, head, token, model=model))
    arr = res.array()
    special = [j for j, t in enumerate(res.tokens) if t in ("[CLS]", "[SEP]")]
    lines = [f"{len(res.tokens)} tokens: " + " ".join(f"{i}:{t}" for i, t in enumerate(res.tokens)),
             f"{res.layers} layers x {res.heads} heads; each row of each matrix sums to 1",
             "", "layer  to [CLS]+[SEP] (mean over heads and tokens)"]
    lines += [f"{lay + 1:>5}  {100 * arr[lay][..., special].sum(-1).mean():5.1f}%" for lay in range(res.layers)]
    m = view.matrix_of(res, layer, head)
    words = [j for j in range(len(res.tokens)) if j not in special]
    lines += ["", f"each token's strongest target in {view.head_name(layer, head)} (and among the other words):"]
    for i, t in enumerate(res.tokens):
        best = int(m[i].argmax())
        line = f"  {t:<14} -> {res.tokens[best]:<14} {100 * float(m[i, best]):5.1f}%"
        others = [j for j in words if j != i]
        if others:
            word = max(others, key=lambda j: m[i, j])
            line += f"   {res.tokens[word]:<14} {100 * float(m[i, word]):5.1f}%"
        lines.append(line)
    if args.json:  # one line: the matrices are large (bert-base, 64 tokens: 12 x 12 x 64 x 64 numbers)
        print(json.dumps(res.to_dict(), ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace").decode("utf-8"))
    else:
        emit(args, res, "\n".join(lines))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bertdemo", description="What BERT learns, how it is used, and a bias audit.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("fill", help="fill [MASK] tokens (masked-language-model objective)")
    p.add_argument("text", help='text with one or more [MASK], e.g. "Paris is the [MASK] of France."')
    p.add_argument("--top-k", default=5, help="candidates per mask (default 5)")
    p.add_argument("--targets", nargs="+", help="restrict candidates to these words")
    p.set_defaults(handler=_fill)

    p = sub.add_parser("nsp", help="next-sentence prediction: P(B follows A), or rank candidates")
    p.add_argument("first", help="sentence A")
    p.add_argument("second", nargs="?", help="sentence B")
    p.add_argument("--candidates", nargs="+", help="several candidate B sentences to rank")
    p.set_defaults(handler=_nsp)

    p = sub.add_parser("sentiment", help="sentiment label and probabilities for each text")
    p.add_argument("texts", nargs="+", help="one or more texts")
    p.set_defaults(handler=_sentiment)

    p = sub.add_parser("attention", help="self-attention weights of every layer and head (JSON, HTML or PNG)")
    p.add_argument("text", help="a sentence (at most 64 tokens with [CLS] and [SEP]; BERTDEMO_ATTENTION_MAX_TOKENS)")
    p.add_argument("--pair", help="a second sentence: the model reads [CLS] text [SEP] pair [SEP]")
    p.add_argument("--layer", type=int, help="layer for the summary and the pictures, 1..layers (default: the last)")
    p.add_argument("--head", type=int, default=0, help="head, 1..heads; 0 = the average of the layer's heads (default)")
    p.add_argument("--token", type=int, default=1, help="token index for the pictures' token view (default 1)")
    p.add_argument("--html", help="also write a self-contained HTML page (no scripts, nothing fetched) here")
    p.add_argument("--png", help="also write a PNG of the chosen head and the layer's head average here")
    p.set_defaults(handler=_attention)

    for cmd in (sub.choices["fill"], sub.choices["nsp"], sub.choices["sentiment"], sub.choices["attention"]):
        add_model_flags(cmd)
        cmd.add_argument("--json", action="store_true", help="machine-readable output")

    for name in EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is None or not name.startswith(err.name):
                raise
            continue
        module.register(sub)
    return parser


def _version() -> str:
    from bertdemo import __version__

    return f"bertdemo {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except BertDemoError as err:
        msg = err.shown(CLI_FIELDS) if isinstance(err, InputError) else str(err)
        print(f"bertdemo {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
