"""Chat routing: one message in, one Markdown answer out, each answered by the shared service.

Routing (see ``HELP``): a ``[MASK]`` -> fill mask; ``A || B`` or ``/nsp A || B`` -> next sentence;
``[MASK]`` on both sides of ``||`` -> both sentences filled and compared side by side;
``/rank A || B1 | B2 | ...`` -> candidates ranked; ``/compare TEXT`` -> the same question to both
configured models, routed by the text's shape like the rest; ``/help``, a greeting or a question about the
app -> the help; ``/audit`` -> a quick audit; any other text -> sentiment with word attributions.
Where a message could mean two things the answer starts with the route taken (``Route.note``), and
text that does not look like English gets a plain warning before the answer. Answers use the same
formatters as the tabs (:mod:`bertdemo.ui.format`). Nothing here loads models or touches tensors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bertdemo import compare
from bertdemo.errors import InputError
from bertdemo.groupwords import swap_group_words
from bertdemo.textcheck import english_only_warning
from bertdemo.ui import format as fmt

HELP = """**What I can do** (every answer comes from the loaded BERT models):

- A sentence with `[MASK]` -> the words BERT predicts for the gap, e.g. `Paris is the [MASK] of France.`
- Two sentences separated by `||` (or `/nsp A || B`) -> the probability that B follows A.
- Two sentences with `[MASK]` on both sides of `||` -> both filled and compared side by side.
- `/rank A || B1 | B2 | B3` -> several candidate next sentences, ranked.
- Any other text -> sentiment (label and probabilities) and the words that drove it.
- `/audit` -> a quick bias audit with a downloadable report (the *Bias audit* tab has every option).
- `/sentiment TEXT` -> sentiment even for a greeting or a question.
- `/compare TEXT` -> the same question to two models side by side (a `[MASK]`: fill mask; `A || B`: next
  sentence; other text: sentiment), where the operator has configured a second model.
- `/help` (or hello, or "what can you do?") -> this list.

The models read English only; other languages get an answer with a warning.

Each tab above is the same capability with full controls."""


ROUTE_FILL_PAIR = ("_Read as two sentences to fill and compare (`[MASK]` on both sides of `||`). For next-sentence "
                   "prediction, send the two sentences without `[MASK]`._")
ROUTE_NSP_WITH_MASK = ("_Read as a next-sentence question (`||`); the `[MASK]` stays an unknown word. To fill it, "
                       "send that sentence on its own._")
EMPTY_REPLY = "Type a sentence first, or `/help` to see what I can do."


@dataclass
class Route:
    kind: str  # help | fill | fill_pair | nsp | rank | audit | sentiment | compare
    text: str = ""
    second: str = ""
    candidates: tuple[str, ...] = ()
    note: str = ""  # the route taken, said to the visitor when the message could mean something else
    task: str = ""  # compare: which task both models answer (bertdemo.compare.TASKS)


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
    if low.startswith("/compare"):
        body = msg[len("/compare"):].strip()
        if not body:
            raise InputError("needs text after /compare: a sentence with [MASK], A || B, or any text", field="message")
        if "||" in body:
            return Route("compare", *_pair(body, ""), task=compare.NSP)
        return Route("compare", body, task=compare.FILL if _MASK_RE.search(body) else compare.SENTIMENT)
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
        a, b = _pair(msg, "")
        masked = bool(_MASK_RE.search(a)), bool(_MASK_RE.search(b))
        if all(masked):
            return Route("fill_pair", a, b, note=ROUTE_FILL_PAIR)
        if any(masked):
            return Route("nsp", a, b, note=ROUTE_NSP_WITH_MASK)
        return Route("nsp", a, b)
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


def _masked_cell(res: Any) -> str:
    return "; ".join(fmt.candidates_line(preds) for preds in res.predictions)


def answer_fill_pair(service: Any, first: str, second: str, top_k: int = 5) -> str:
    """Both masked sentences filled, side by side, and whether the top answer changes between them."""
    a, b = service.fill_mask(first, top_k=top_k), service.fill_mask(second, top_k=top_k)
    rows = [
        "| | Sentence A | Sentence B |",
        "|---|---|---|",
        f"| **Filled** | {fmt.esc(a.filled)} | {fmt.esc(b.filled)} |",
        f"| **Top answers** | {_masked_cell(a)} | {_masked_cell(b)} |",
    ]
    return "\n".join(rows) + "\n\n" + fmt.top_answer_note(a.top_tokens, b.top_tokens)


def answer_nsp(service: Any, first: str, second: str) -> str:
    return f"{fmt.nsp_verdict(service.next_sentence(first, second))}\n\n{fmt.NSP_CAVEAT}"


def answer_rank(service: Any, first: str, candidates: tuple[str, ...]) -> str:
    return f"{fmt.ranking_markdown(service.rank_next(first, list(candidates)))}\n\n{fmt.NSP_CAVEAT}"


def answer_sentiment(service: Any, text: str) -> str:
    res = service.explain_sentiment(text, method="integrated_gradients")
    swapped, swaps = swap_group_words(text)
    caveat = fmt.label_swap_note(res, service.sentiment([swapped])[0], swaps) if swaps else fmt.SENTIMENT_CAVEAT
    return f"{fmt.sentiment_markdown(res)}\n\n{caveat}"


def answer_compare(service: Any, task: str, text: str, second: str = "") -> str:
    """``/compare``: both configured models side by side, or why not (and how the operator turns it on)."""
    enabled = compare.tasks_enabled(service)
    if not enabled:
        return compare.ENABLE
    if task not in enabled:
        return (f"This server compares models on {', '.join(enabled)} only (the operator configured a second model "
                f"for those); this message reads as {task}.")
    return fmt.comparison_markdown(compare.compare(service, task, text, second))


def warnings_for(r: Route) -> list[str]:
    """What to say before the answer: the route taken (when ambiguous), and a non-English warning."""
    out = [r.note] if r.note else []
    if r.kind in {"fill", "fill_pair", "nsp", "rank", "sentiment", "compare"}:
        warning = english_only_warning(" ".join([r.text, r.second, *r.candidates]))
        if warning:
            out.append(f"**{warning}**")
    return out


# fields of the service's messages, as the chat visitor knows them
FIELD_NAMES = {"message": "Your message", "text": "Your message", "texts": "Your message",
               "first": "The first sentence (before ||)", "second": "The second sentence (after ||)",
               "sentence pair": "The two sentences together", "candidates": "Candidate {n}"}


def error_reply(err: Exception) -> str:
    """One plain sentence for a refused message (with the /help hint once)."""
    msg = err.shown(FIELD_NAMES, sep=" ") if isinstance(err, InputError) else str(err)
    msg = msg.rstrip(". ")
    hint = "" if "/help" in msg else " Type `/help` for what I can do."
    return f"Sorry: {fmt.esc(msg)}.{hint}"
