"""One formatter per result type, shared by the tabs and the chat, and the Markdown escaping rule.

Numbers follow one policy, :func:`pct`: probabilities as percent with one decimal ("80.1 %"),
tiny ones as "<0.1 %", near-certain ones as ">99.9 %"; tables carry the same strings. The space
before "%" is a no-break space, so a narrow screen never puts the "%" on a line of its own.

Every piece of user or model text that goes into Markdown passes through :func:`esc` (entities
escaped, Markdown syntax backslashed) or :func:`code` (a literal code span). Nothing here calls a
model: formatters take the service's typed results.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from bertdemo.compare import FILL, NSP, TIMED_ROUNDS, Comparison, top_answer
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


PCT_SPACE = "\u00a0"  # no-break space between a number and its "%"


def pct(p: float) -> str:
    """A probability as percent: one decimal, "<0.1 %" and ">99.9 %" at the ends (the one number policy)."""
    v = 100 * float(p)
    if v != v:  # NaN
        return "n/a"
    if v <= 0:
        text = "0"
    elif v < 0.1:
        text = "<0.1"
    elif v >= 100:
        text = "100"
    elif v > 99.9:
        text = ">99.9"
    else:
        text = f"{v:.1f}"
    return f"{text}{PCT_SPACE}%"


def points(delta: float) -> str:
    """A change of probability in percentage points, signed ("+3.2 points")."""
    return f"{100 * delta:+.1f} points"


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


RANKING_HEADERS = ["rank", "candidate", "P(next)"]


def ranking_rows(ranked: Sequence[RankedCandidate]) -> list[list[Any]]:
    return [[r.rank, r.candidate, pct(r.is_next)] for r in ranked]


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
    cost = steps_note(res)
    if cost:
        lines.append(cost)
    return "\n\n".join(lines)


def steps_note(res: Explanation) -> str:
    """Said when a long text got fewer integrated-gradient steps (the cost cap), else ``""``."""
    if not res.steps_capped:
        return ""
    return (f"_Long text: the word scores used {res.steps} integrated-gradient steps instead of "
            f"{res.steps_requested}, so the answer stays quick; they are rougher than for a short text._")


def explain_note(res: Explanation, other: Explanation | None = None) -> str:
    """The Sentiment tab's note after Explain: label, cost cap, and where the two methods disagree."""
    parts = [sentiment_note(res)]
    cost = steps_note(res)
    if cost:
        parts.append(cost)
    if other is not None:
        parts.append(method_disagreement(res, other))
    return "\n\n".join(p for p in parts if p)


def method_disagreement(res: Explanation, other: Explanation, n: int = 5) -> str:
    """Which of ``res``'s top words the other method scores with the opposite sign (``""`` when none)."""
    from bertdemo.tasks.attribution import METHOD_NAMES

    theirs = other.word_scores()
    peak = max((abs(s) for _, s in theirs.values()), default=0.0) or 1.0
    shown = res.top_words(n)
    flipped = [w for w, s in shown
               if w.lower() in theirs and s * theirs[w.lower()][1] < 0 and abs(theirs[w.lower()][1]) >= 0.1 * peak]
    if not flipped:
        return ""
    if len(flipped) > len(shown) / 2:  # listing (nearly) every word would say nothing
        return (f"**The word-level explanation of this text is unreliable**: the two methods disagree on most "
                f"words ({len(flipped)} of the {len(shown)} strongest get opposite signs from "
                f"{esc(METHOD_NAMES.get(other.method, other.method))}). Read the colours as noise here, "
                "not as reasons for the label.")
    return (f"**The methods disagree** on {', '.join(code(w) for w in flipped)}: "
            f"{esc(METHOD_NAMES.get(other.method, other.method))} gives the opposite sign. "
            "Gradient × input measures a local slope, integrated gradients the whole path from a blank text; "
            "prefer integrated gradients, and treat these words' direction as uncertain.")


def highlighted(res: Explanation) -> list[tuple[str, float | None]]:
    """Word attributions scaled to [-1, 1] for ``gr.HighlightedText`` (signs kept), in the text as written."""
    pairs = res.attributions or []
    peak = max((abs(s) for _, s in pairs), default=0.0) or 1.0
    if res.spans and res.text and len(res.spans) == len(pairs):
        out: list[tuple[str, float | None]] = []
        pos = 0
        for (a, b), (_, s) in zip(res.spans, pairs, strict=True):
            if a > pos:
                out.append((res.text[pos:a], None))
            out.append((res.text[a:b], round(s / peak, 4)))
            pos = b
        return out
    return [(w + " ", round(s / peak, 4)) for w, s in pairs]


def label_swap_note(orig: SentimentResult, other: SentimentResult, swaps: Sequence[tuple[str, str]]) -> str:
    """Whether the label moves when group words are swapped (counterfactual tab, chat caveat)."""
    if orig.label != other.label:
        return (f"**The label moves** ({esc(orig.label)} -> {esc(other.label)}) after swapping {swaps_phrase(swaps)}: "
                "the classifier is sensitive to the group word here.")
    delta = other.scores[orig.label] - orig.scores[orig.label]
    return (f"**The label does not move** ({esc(orig.label)}); the probability of {esc(orig.label)} changes by "
            f"{points(delta)} after swapping {swaps_phrase(swaps)}.")


def counterfactual_rows(texts: Sequence[str], results: Sequence[SentimentResult]) -> list[list[Any]]:
    return [[version, t, r.label, pct(r.score)]
            for version, t, r in zip(("original", "swapped"), texts, results, strict=True)]


def result_columns(columns: Sequence[str], labels: Sequence[str]) -> list[str]:
    """Names of the result columns added to a scored CSV, prefixed when the input already has them."""
    wanted = ["label", "score", *[f"p_{k}" for k in labels]]
    taken = {c.lower() for c in columns}
    prefix = "predicted_" if any(w.lower() in taken for w in wanted) else ""
    return [prefix + w for w in wanted]


def scores_rows_keeping(columns: Sequence[str], rows: Sequence[dict[str, str]],
                        results: Sequence[SentimentResult | None]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of a scored CSV: every input column and row, then label, score and one
    probability column per class (blank for a row that was skipped)."""
    first = next((r for r in results if r is not None), None)
    labels = list(first.scores) if first else []
    header = [*columns, *result_columns(columns, labels)]
    out = []
    for row, r in zip(rows, results, strict=True):
        added = ([r.label, round(r.score, 4), *[round(r.scores[k], 4) for k in labels]] if r is not None
                 else [""] * (2 + len(labels)))
        out.append([*(row.get(c, "") for c in columns), *added])
    return header, out


def csv_report(name: str, scored: int, skipped: Sequence[tuple[int, str]], shown: int = 10) -> str:
    """What happened to an uploaded CSV: rows scored, and each skipped row by line (the first ``shown``)."""
    head = f"**Scored {scored:,} row{'s' if scored != 1 else ''}** of {code(name)}."
    if not skipped:
        return head + " The download has every input column plus the results."
    listed = "; ".join(f"line {line} ({esc(why)})" for line, why in skipped[:shown])
    more = f"; and {len(skipped) - shown:,} more" if len(skipped) > shown else ""
    return (f"{head} **Skipped {len(skipped):,} row{'s' if len(skipped) != 1 else ''}**: {listed}{more}. "
            "They stay in the download with empty results, so it still lines up with your file.")


def empty_table(headers: Sequence[str]) -> Any:
    """A table with its column names and no rows (never gradio's default "1 2 3" headers)."""
    import pandas as pd

    return pd.DataFrame(columns=list(headers))

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


# ---- compare models ---------------------------------------------------------------------------
COMPARE_TIME_NOTE = ("_Time: one request (tokenizing, forward pass, result) on this server's hardware, the median of "
                     f"{TIMED_ROUNDS} after an untimed warm-up, the models taking turns; single-request times are noisy, "
                     "so only a large, repeatable gap means much. Size: weights in memory as served._")


def _compare_answer(task: str, res: Any) -> list[tuple[str, str]]:
    """The rows of one model's answer: (row name, cell)."""
    if task == FILL:
        many = len(res.predictions) > 1
        words = "<br>".join((f"#{m}: " if many else "") + candidates_line(preds)
                            for m, preds in enumerate(res.predictions, 1))
        return [("filled", esc(res.filled)), ("top words", words)]
    if task == NSP:
        return [("P(B follows A)", pct(res.is_next)), ("verdict", "follows" if res.follows else "does not follow")]
    probs = ", ".join(f"{esc(k)} {pct(v)}" for k, v in sorted(res.scores.items(), key=lambda kv: -kv[1]))
    return [("label", f"**{esc(res.label)}**"), ("probabilities", probs)]


def _audit_cell(audit: Any) -> str:
    if audit is None:
        return "no audit report of these weights"
    lines = [f"**{esc(audit.verdict)}** ({code(audit.report)}, {esc(audit.finished_at[:10])})"]
    lines += [f"{esc(c.title)}: {esc(c.status)}" + (f" - {esc(c.headline)}" if c.headline else "") for c in audit.checks]
    return "<br>".join(lines)


def comparison_markdown(cmp: Comparison) -> str:
    """Both models' answers side by side (one column per model), then size, time and audit numbers."""
    answers = cmp.answers
    rows: dict[str, list[str]] = {}
    for a in answers:
        for name, cell in _compare_answer(cmp.task, a.answer):
            rows.setdefault(name, []).append(cell)
    facts = [a.model for a in answers]
    rows["parameters"] = [f"{m.parameters:,}" for m in facts]
    rows["size"] = [f"{m.size_mb:,.1f} MB ({esc(m.precision)}, {esc(m.device)})" for m in facts]
    rows["time"] = [f"{a.milliseconds:,.0f} ms" for a in answers]
    rows["bias audit"] = [_audit_cell(m.audit) for m in facts]
    head = "| | " + " | ".join(f"**{esc(m.name)}**" for m in facts) + " |"
    table = [head, "|---" * (len(facts) + 1) + "|"]
    table += [f"| **{esc(name)}** | " + " | ".join(cells) + " |" for name, cells in rows.items()]
    tops = [top_answer(cmp.task, a.answer) for a in answers]
    if len(answers) < 2:
        verdict = ""
    elif cmp.same_answer:
        verdict = f"**Same answer** from both models ({code(tops[0])}); compare the probabilities."
    else:
        verdict = "**The models disagree**: " + " vs ".join(code(t) for t in tops) + "."
    caveat = {FILL: FILL_CAVEAT, NSP: NSP_CAVEAT}.get(cmp.task, SENTIMENT_CAVEAT)
    return "\n\n".join(p for p in (verdict, "\n".join(table), COMPARE_TIME_NOTE, caveat) if p)
