"""Chat routing: one message in, one Markdown answer out, each answered by the shared service.

Routing (see ``HELP``): a ``[MASK]`` -> fill mask; ``A || B`` or ``/nsp A || B`` -> next sentence;
``/rank A || B1 | B2 | ...`` -> candidates ranked; ``/help``; ``/audit`` -> a quick audit; any
other text -> sentiment with word attributions. Nothing here loads models or touches tensors.
User text is always escaped before it is put into Markdown.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from bertdemo.errors import InputError

HELP = """**What I can do** (every answer comes from the loaded BERT models):

- A sentence with `[MASK]` -> the words BERT predicts for the gap, e.g. `Paris is the [MASK] of France.`
- Two sentences separated by `||` (or `/nsp A || B`) -> the probability that B follows A.
- `/rank A || B1 | B2 | B3` -> several candidate next sentences, ranked.
- Any other text -> sentiment (label and probabilities) and the words that drove it.
- `/audit` -> a quick bias audit with a downloadable report (the *Bias audit* tab has every option).
- `/help` -> this list.

Each tab above is the same capability with full controls."""

FILL_CAVEAT = "_Predictions reflect statistics of the model's training text, not facts or recommendations._"
NSP_CAVEAT = "_BERT's next-sentence head judges topical fit, not truth or logic._"
SENTIMENT_CAVEAT = "_A small classifier's guess from word patterns; it can be wrong on sarcasm, negation and long text._"

# Group-word pairs used by the counterfactual swap (both directions).
_PAIRS = [
    ("he", "she"), ("him", "her"), ("his", "her"), ("himself", "herself"), ("man", "woman"),
    ("men", "women"), ("boy", "girl"), ("boys", "girls"), ("father", "mother"), ("son", "daughter"),
    ("brother", "sister"), ("husband", "wife"), ("king", "queen"), ("mr", "mrs"), ("male", "female"),
    ("gentleman", "lady"), ("uncle", "aunt"), ("nephew", "niece"), ("boyfriend", "girlfriend"),
    ("dad", "mom"), ("sons", "daughters"), ("fathers", "mothers"), ("brothers", "sisters"),
    ("husbands", "wives"), ("kings", "queens"), ("males", "females"), ("gentlemen", "ladies"),
]
SWAPS: dict[str, str] = {}
for _a, _b in _PAIRS:
    SWAPS.setdefault(_a, _b)
    SWAPS.setdefault(_b, _a)
# "her" is ambiguous (him/his); "his" reads better in the sentences people type.
SWAPS["her"] = "his"
_WORD = re.compile(r"[A-Za-z]+")


def _match_case(word: str, template: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def swap_group_words(text: str) -> tuple[str, list[tuple[str, str]]]:
    """``text`` with each group word swapped (he<->she, man<->woman, ...), and the swaps made."""
    swaps: list[tuple[str, str]] = []

    def repl(m: re.Match[str]) -> str:
        word = m.group(0)
        other = SWAPS.get(word.lower())
        if other is None:
            return word
        new = _match_case(other, word)
        swaps.append((word, new))
        return new

    # [MASK] contains letters; protect it from the word pattern.
    parts = re.split(r"(\[MASK\])", text)
    out = "".join(p if p == "[MASK]" else _WORD.sub(repl, p) for p in parts)
    return out, swaps


def esc(text: Any) -> str:
    """User text made inert for Markdown/HTML: entities escaped and Markdown syntax backslashed."""
    s = html.escape(str(text), quote=False)
    return re.sub(r"([\\`*_{}\[\]()#+\-!|~>])", r"\\\1", s)


def code(text: Any) -> str:
    """User or model text as a Markdown code span: rendered literally, so it needs no other escaping."""
    t = " ".join(str(text).replace("`", "'").split())
    return f"`{t}`" if t else "` `"


def swaps_phrase(swaps: list[tuple[str, str]]) -> str:
    seen: list[str] = []
    for a, b in swaps:
        pair = f"'{esc(a)}' -> '{esc(b)}'"
        if pair not in seen:
            seen.append(pair)
    return ", ".join(seen)


@dataclass
class Route:
    kind: str  # help | fill | nsp | rank | audit | sentiment
    text: str = ""
    second: str = ""
    candidates: tuple[str, ...] = ()


_MASK_RE = re.compile(r"\[\s*mask\s*\]|<\s*mask\s*>", re.IGNORECASE)


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
        body = msg[5:].strip()
        if "||" not in body:
            raise InputError("write /rank A || B1 | B2 | B3", field="message")
        a, rest = body.split("||", 1)
        cands = tuple(c.strip() for c in rest.split("|") if c.strip())
        return Route("rank", a.strip(), candidates=cands)
    if low.startswith("/nsp"):
        body = msg[4:].strip()
        if "||" not in body:
            raise InputError("write /nsp first sentence || second sentence", field="message")
        a, b = body.split("||", 1)
        return Route("nsp", a.strip(), b.strip())
    if low.startswith("/sentiment"):
        return Route("sentiment", msg[len("/sentiment"):].strip())
    if low.startswith("/fill"):
        return Route("fill", msg[len("/fill"):].strip())
    if low.startswith("/"):
        raise InputError(f"unknown command {esc(msg.split()[0][:30])}; type /help for the list", field="message")
    if "||" in msg:
        a, b = msg.split("||", 1)
        return Route("nsp", a.strip(), b.strip())
    if _MASK_RE.search(msg):
        return Route("fill", msg)
    return Route("sentiment", msg)


def _pct(p: float) -> str:
    return f"{100 * p:.1f}%"


def answer_fill(service: Any, text: str, top_k: int = 5) -> str:
    res = service.fill_mask(text, top_k=top_k)
    lines = []
    many = len(res.predictions) > 1
    for m, preds in enumerate(res.predictions, 1):
        head = f"**[MASK] #{m}:** " if many else "**Top answers:** "
        lines.append(head + ", ".join(f"{code(p.token)} {_pct(p.score)}" for p in preds))
    lines.append(f"**Filled:** {esc(res.filled)}")
    swapped, swaps = swap_group_words(res.text)
    caveat = FILL_CAVEAT
    if swaps:
        other = service.fill_mask(swapped, top_k=1)
        before, after = res.top_tokens, other.top_tokens
        if before != after:
            caveat = (f"_Caveat: swapping {swaps_phrase(swaps)} changes the top answer "
                      f"({code(', '.join(before))} -> {code(', '.join(after))}): predictions reflect "
                      f"associations in the training text, not facts._")
        else:
            caveat = (f"_Swapping {swaps_phrase(swaps)} keeps the top answer; other ranks may still differ. "
                      f"Predictions reflect training-text statistics._")
    lines.append(caveat)
    return "\n\n".join(lines)


def answer_nsp(service: Any, first: str, second: str) -> str:
    p = service.next_sentence(first, second).is_next
    verdict = "likely follows" if p >= 0.5 else "probably does not follow"
    return f"**P(B follows A) = {_pct(p)}** - B {verdict} A.\n\n{NSP_CAVEAT}"


def answer_rank(service: Any, first: str, candidates: tuple[str, ...]) -> str:
    ranked = service.rank_next(first, list(candidates))
    rows = "\n".join(f"{r.rank}. {esc(r.candidate)} - {_pct(r.is_next)}" for r in ranked)
    return f"**Candidates ranked by P(next):**\n\n{rows}\n\n{NSP_CAVEAT}"


def answer_sentiment(service: Any, text: str) -> str:
    res = service.explain_sentiment(text, method="integrated_gradients")
    probs = ", ".join(f"{esc(k)} {_pct(v)}" for k, v in sorted(res.scores.items(), key=lambda kv: -kv[1]))
    pushed = ", ".join(f"{code(w)} ({'+' if s >= 0 else '-'})" for w, s in res.top_words(5))
    lines = [f"**Sentiment: {esc(res.label)}** ({probs})"]
    if pushed:
        lines.append(f"Most influential words (+ toward {esc(res.label)}, - against): {pushed}")
    if res.truncated:
        lines.append("_The text was longer than the model reads; only the beginning was scored._")
    swapped, swaps = swap_group_words(text)
    caveat = SENTIMENT_CAVEAT
    if swaps:
        other = service.sentiment([swapped])[0]
        if other.label != res.label:
            caveat = (f"_Caveat: swapping {swaps_phrase(swaps)} changes the label to {esc(other.label)}: "
                      f"the classifier is sensitive to the group word here._")
        else:
            delta = other.score - res.score
            caveat = (f"_Swapping {swaps_phrase(swaps)} keeps the label "
                      f"(confidence {'+' if delta >= 0 else ''}{100 * delta:.1f} points)._")
    lines.append(caveat)
    return "\n\n".join(lines)
