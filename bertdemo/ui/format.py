"""One formatter per result type, shared by the tabs and the chat, and the Markdown escaping rule.

Every piece of user or model text that goes into Markdown passes through :func:`esc` (entities
escaped, Markdown syntax backslashed) or :func:`code` (a literal code span). Nothing here calls a
model: formatters take the service's typed results.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from bertdemo.tasks.attribution import Explanation
from bertdemo.tasks.fill_mask import Candidate
from bertdemo.tasks.next_sentence import NextSentenceResult, RankedCandidate
from bertdemo.tasks.sentiment import SentimentResult

FILL_CAVEAT = "_Predictions reflect statistics of the model's training text, not facts or recommendations._"
NSP_CAVEAT = "_BERT's next-sentence head judges topical fit, not truth or logic._"
SENTIMENT_CAVEAT = "_A small classifier's guess from word patterns; it can be wrong on sarcasm, negation and long text._"
TRUNCATED = "the text was longer than the model reads; only the beginning was scored."


def esc(text: Any) -> str:
    """User text made inert for Markdown/HTML: entities escaped and Markdown syntax backslashed."""
    s = html.escape(str(text), quote=False)
    return re.sub(r"([\\`*_{}\[\]()#+\-!|~>])", r"\\\1", s)


def code(text: Any) -> str:
    """User or model text as a Markdown code span: rendered literally, so it needs no other escaping."""
    t = " ".join(str(text).replace("`", "'").split())
    return f"`{t}`" if t else "` `"


def pct(p: float) -> str:
    return f"{100 * p:.1f}%"


def swaps_phrase(swaps: Sequence[tuple[str, str]]) -> str:
    """``'he' -> 'she', 'his' -> 'her'`` (each swap once)."""
    return ", ".join(dict.fromkeys(f"'{esc(a)}' -> '{esc(b)}'" for a, b in swaps))


# ---- fill mask --------------------------------------------------------------------------------
def candidates_label(preds: Sequence[Candidate]) -> dict[str, float]:
    """One [MASK]'s candidates for a ``gr.Label`` (first score of a repeated token wins)."""
    out: dict[str, float] = {}
    for p in preds:
        out.setdefault(p.token, float(p.score))
    return out


def candidates_line(preds: Sequence[Candidate]) -> str:
    return ", ".join(f"{code(p.token)} {pct(p.score)}" for p in preds)


def top_answer_note(before: Sequence[str], after: Sequence[str], swaps: Sequence[tuple[str, str]] = ()) -> str:
    """Whether the top answer per [MASK] changes between two sentences (or after group-word swaps)."""
    how = f" after swapping {swaps_phrase(swaps)}" if swaps else ""
    if list(before) != list(after):
        return (f"**The top answer changes**{how}: {code(', '.join(before))} -> {code(', '.join(after))}. "
                "Predictions reflect associations in the training text, not facts.")
    return f"**Same top answer**{how} ({code(', '.join(before))}); compare the probabilities. {FILL_CAVEAT}"


# ---- next sentence ----------------------------------------------------------------------------
def nsp_label(res: NextSentenceResult) -> dict[str, float]:
    return {"B follows A": res.is_next, "B does not follow A": 1.0 - res.is_next}


def nsp_verdict(res: NextSentenceResult) -> str:
    verdict = "B likely follows A." if res.is_next >= 0.5 else "B probably does not follow A."
    return f"**P(B follows A) = {pct(res.is_next)}** - {verdict}"


def ranking_rows(ranked: Sequence[RankedCandidate]) -> list[list[Any]]:
    return [[r.rank, r.candidate, round(r.is_next, 4)] for r in ranked]


def ranking_markdown(ranked: Sequence[RankedCandidate]) -> str:
    rows = "\n".join(f"{r.rank}. {esc(r.candidate)} - {pct(r.is_next)}" for r in ranked)
    return f"**Candidates ranked by P(next):**\n\n{rows}"


# ---- sentiment --------------------------------------------------------------------------------
def sentiment_note(res: SentimentResult) -> str:
    return f"**{esc(res.label)}** ({pct(res.score)})" + (f" - {TRUNCATED}" if res.truncated else "")


def sentiment_markdown(res: Explanation) -> str:
    probs = ", ".join(f"{esc(k)} {pct(v)}" for k, v in sorted(res.scores.items(), key=lambda kv: -kv[1]))
    lines = [f"**Sentiment: {esc(res.label)}** ({probs})"]
    pushed = ", ".join(f"{code(w)} ({'+' if s >= 0 else '-'})" for w, s in res.top_words(5))
    if pushed:
        lines.append(f"Most influential words (+ toward {esc(res.label)}, - against): {pushed}")
    if res.truncated:
        lines.append(f"_{TRUNCATED[:1].upper()}{TRUNCATED[1:]}_")
    return "\n\n".join(lines)


def highlighted(res: Explanation) -> list[tuple[str, float]]:
    """Word attributions scaled to [-1, 1] for ``gr.HighlightedText`` (signs kept)."""
    pairs = res.attributions or []
    peak = max((abs(s) for _, s in pairs), default=0.0) or 1.0
    return [(w + " ", round(s / peak, 4)) for w, s in pairs]


def label_swap_note(orig: SentimentResult, other: SentimentResult, swaps: Sequence[tuple[str, str]]) -> str:
    """Whether the label moves when group words are swapped (counterfactual tab, chat caveat)."""
    if orig.label != other.label:
        return (f"**The label moves** ({esc(orig.label)} -> {esc(other.label)}) after swapping {swaps_phrase(swaps)}: "
                "the classifier is sensitive to the group word here.")
    delta = other.scores[orig.label] - orig.scores[orig.label]
    return (f"**The label does not move** ({esc(orig.label)}); the probability of {esc(orig.label)} changes by "
            f"{100 * delta:+.1f} points after swapping {swaps_phrase(swaps)}.")


def counterfactual_rows(texts: Sequence[str], results: Sequence[SentimentResult]) -> list[list[Any]]:
    return [[version, t, r.label, round(r.score, 4)]
            for version, t, r in zip(("original", "swapped"), texts, results, strict=True)]


def scores_rows(texts: Sequence[str], results: Sequence[SentimentResult]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of a scored CSV: text, label, score, one probability column per class."""
    labels = list(results[0].scores)
    header = ["text", "label", "score", *[f"p_{k}" for k in labels]]
    rows = [[t, r.label, round(r.score, 4), *[round(r.scores[k], 4) for k in labels]]
            for t, r in zip(texts, results, strict=True)]
    return header, rows


# ---- attention --------------------------------------------------------------------------------
def attention_note(res: Any, layer: int, head: int) -> str:
    """Where the chosen head's attention goes, in shares: [CLS], [SEP], the other tokens, and each token itself.

    ``head`` 0 is the layer's head average. Shares are the mean over the rows (each row sums to 1).
    """
    arr = res.array()
    m = arr[layer - 1].mean(axis=0) if head == 0 else arr[layer - 1, head - 1]
    n = len(res.tokens)
    cls = sum(float(m[:, j].mean()) for j in range(n) if res.tokens[j] == "[CLS]")
    sep = sum(float(m[:, j].mean()) for j in range(n) if res.tokens[j] == "[SEP]")
    own = float(sum(m[i, i] for i in range(n)) / n)
    which = f"layer {layer}, " + ("the average of its heads" if head == 0 else f"head {head}")
    everywhere = arr[..., [j for j in range(n) if res.tokens[j] in ("[CLS]", "[SEP]")]].sum(-1).mean()
    return (f"**{n} tokens**, {res.layers} layers x {res.heads} heads. In {which}, a token's attention goes on average "
            f"{pct(cls)} to [CLS], {pct(sep)} to [SEP] and {pct(max(0.0, 1 - cls - sep))} to the other tokens; "
            f"{pct(own)} is a token attending to itself. Over all layers and heads, {pct(float(everywhere))} goes to "
            "[CLS] or [SEP].")
