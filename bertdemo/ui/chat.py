"""Chat routing: one message in, one Markdown answer out, each answered by the shared service.

Routing (see ``HELP``): a ``[MASK]`` -> fill mask; ``A || B`` or ``/nsp A || B`` -> next sentence;
``/rank A || B1 | B2 | ...`` -> candidates ranked; ``/help``; ``/audit`` -> a quick audit; any
other text -> sentiment with word attributions. Answers use the same formatters as the tabs
(:mod:`bertdemo.ui.format`). Nothing here loads models or touches tensors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bertdemo.errors import InputError
from bertdemo.groupwords import swap_group_words
from bertdemo.ui import format as fmt

HELP = """**What I can do** (every answer comes from the loaded BERT models):

- A sentence with `[MASK]` -> the words BERT predicts for the gap, e.g. `Paris is the [MASK] of France.`
- Two sentences separated by `||` (or `/nsp A || B`) -> the probability that B follows A.
- `/rank A || B1 | B2 | B3` -> several candidate next sentences, ranked.
- Any other text -> sentiment (label and probabilities) and the words that drove it.
- `/audit` -> a quick bias audit with a downloadable report (the *Bias audit* tab has every option).
- `/sentiment TEXT` -> sentiment even for a greeting or a question.
- `/help` (or hello, or "what can you do?") -> this list.

Each tab above is the same capability with full controls."""


@dataclass
class Route:
    kind: str  # help | fill | nsp | rank | audit | sentiment
    text: str = ""
    second: str = ""
    candidates: tuple[str, ...] = ()


_MASK_RE = re.compile(r"\[\s*mask\s*\]|<\s*mask\s*>", re.IGNORECASE)
_GREETING_RE = re.compile(r"^(hi|hello|hey|hiya|howdy|greetings|good (morning|afternoon|evening)|yo)\b", re.IGNORECASE)
_CAPABILITY_RE = re.compile(
    r"\b(what (can|do|should) (you|i)( do| try| ask| type)?|how (does (this|it) work|do i (use|start))|"
    r"who are you|what are you|what is this|help me|what is bertdemo)\b", re.IGNORECASE)


def _asks_for_help(msg: str) -> bool:
    """A greeting or a question about the app, not text to classify: short, and says so."""
    words = msg.split()
    return (len(words) <= 4 and bool(_GREETING_RE.match(msg))) or (len(words) <= 12 and bool(_CAPABILITY_RE.search(msg)))


def _pair(body: str, usage: str) -> tuple[str, str]:
    if "||" not in body:
        raise InputError(usage, field="message")
    a, b = body.split("||", 1)
    return a.strip(), b.strip()


def route(message: Any) -> Route:
    """Decide which capability answers ``message`` (no model call)."""
    if not isinstance(message, str):
        raise InputError("must be text", field="message")
    msg = message.strip()
    if not msg:
        raise InputError("is empty; type a sentence, or /help", field="message")
    low = msg.lower()
    if low in {"/help", "help", "/?", "?"}:
        return Route("help")
    if low == "/audit" or low.startswith("/audit "):
        return Route("audit")
    if low.startswith("/rank"):
        a, rest = _pair(msg[5:].strip(), "write /rank A || B1 | B2 | B3")
        return Route("rank", a, candidates=tuple(c.strip() for c in rest.split("|") if c.strip()))
    if low.startswith("/nsp"):
        return Route("nsp", *_pair(msg[4:].strip(), "write /nsp first sentence || second sentence"))
    if low.startswith("/sentiment"):
        return Route("sentiment", msg[len("/sentiment"):].strip())
    if low.startswith("/fill"):
        return Route("fill", msg[len("/fill"):].strip())
    if low.startswith("/"):
        raise InputError(f"unknown command {fmt.esc(msg.split()[0][:30])}; type /help for the list", field="message")
    if "||" in msg:
        return Route("nsp", *_pair(msg, ""))
    if _MASK_RE.search(msg):
        return Route("fill", msg)
    if _asks_for_help(msg):
        return Route("help")
    return Route("sentiment", msg)


def answer_fill(service: Any, text: str, top_k: int = 5) -> str:
    res = service.fill_mask(text, top_k=top_k)
    many = len(res.predictions) > 1
    lines = [(f"**[MASK] #{m}:** " if many else "**Top answers:** ") + fmt.candidates_line(preds)
             for m, preds in enumerate(res.predictions, 1)]
    lines.append(f"**Filled:** {fmt.esc(res.filled)}")
    swapped, swaps = swap_group_words(res.text)
    if swaps:
        lines.append(fmt.top_answer_note(res.top_tokens, service.fill_mask(swapped, top_k=1).top_tokens, swaps))
    else:
        lines.append(fmt.FILL_CAVEAT)
    return "\n\n".join(lines)


def answer_nsp(service: Any, first: str, second: str) -> str:
    return f"{fmt.nsp_verdict(service.next_sentence(first, second))}\n\n{fmt.NSP_CAVEAT}"


def answer_rank(service: Any, first: str, candidates: tuple[str, ...]) -> str:
    return f"{fmt.ranking_markdown(service.rank_next(first, list(candidates)))}\n\n{fmt.NSP_CAVEAT}"


def answer_sentiment(service: Any, text: str) -> str:
    res = service.explain_sentiment(text, method="integrated_gradients")
    swapped, swaps = swap_group_words(text)
    caveat = fmt.label_swap_note(res, service.sentiment([swapped])[0], swaps) if swaps else fmt.SENTIMENT_CAVEAT
    return f"{fmt.sentiment_markdown(res)}\n\n{caveat}"
