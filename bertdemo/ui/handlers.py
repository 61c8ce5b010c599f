"""Thin Gradio callbacks: validate the form, call the shared service, format the result.

No model loading or tensor code lives here. Every callback is wrapped by :func:`user_facing`,
so a visitor sees a one-line message (escaped, no traceback, no file path) for any failure.
Files offered for download are written only into a per-session folder under the app's own
output directory.
"""

from __future__ import annotations

import atexit
import csv
import functools
import hashlib
import html
import io
import logging
import math
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from bertdemo.config import Settings
from bertdemo.errors import BertDemoError, InputError
from bertdemo.ui import chat

log = logging.getLogger(__name__)

INTERNAL_ERROR = "Something went wrong inside the app. Please try again; if it keeps happening, report it."
QUICK_AUDIT_CHECKS = ["crows_pairs", "stereoset", "templates", "classifier"]  # /audit in chat
QUICK_AUDIT_LIMIT = 20
MAX_LABELS = 8
SHOWN_CHARS = 2000  # longest user message echoed back into the chat  # most [MASK] results shown as separate Label components


def user_facing(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every failure into a ``gr.Error`` with a plain, escaped message and no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except BertDemoError as err:
            raise gr.Error(html.escape(str(err), quote=False), print_exception=False) from None
        except Exception as err:  # a bug: log the type only (the message may hold user text)
            log.error("internal error in %s: %s", fn.__name__, type(err).__name__)
            log.debug("traceback", exc_info=True)
            raise gr.Error(INTERNAL_ERROR, print_exception=False) from None

    return wrapper


def parse_targets(targets: Any) -> list[str] | None:
    """``"he, she"`` -> ``["he", "she"]``; empty -> ``None``."""
    if targets is None:
        return None
    if isinstance(targets, (list, tuple)):
        words = [str(t).strip() for t in targets]
    elif isinstance(targets, str):
        words = [w.strip() for w in targets.replace("\n", ",").split(",")]
    else:
        raise InputError("must be words separated by commas", field="targets")
    words = [w for w in words if w]
    return words or None


def _label(preds: list[Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in preds:
        out.setdefault(p.token, float(p.score))
    return out


def _num(value: Any, field: str, default: int) -> Any:
    """Pass numbers through (the service validates ranges); map blanks to the default."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, float) and math.isnan(value):
        raise InputError("must be a number", field=field)
    return value


class Handlers:
    """Callbacks bound to one service and one output directory."""

    def __init__(self, service: Any, settings: Settings, out_root: Path | None = None) -> None:
        self.service = service
        self.settings = settings
        if out_root is None and settings.output_dir:
            out_root = Path(settings.output_dir)
        elif out_root is None:  # a private temp dir, removed when the process exits
            out_root = Path(tempfile.mkdtemp(prefix="bertdemo-app-"))
            atexit.register(shutil.rmtree, out_root, ignore_errors=True)
        out_root.mkdir(parents=True, exist_ok=True)
        self.out_root = out_root.resolve()
        self.n_labels = max(1, min(settings.max_masks, MAX_LABELS))

    # ---- files -----------------------------------------------------------------------------
    def session_dir(self, request: gr.Request | None) -> Path:
        """A fresh folder for one result, inside this session's folder (never a user-chosen path)."""
        session = getattr(request, "session_hash", None) or "anonymous"
        key = hashlib.sha256(str(session).encode()).hexdigest()[:16]
        path = self.out_root / key / uuid.uuid4().hex[:12]
        path.mkdir(parents=True, exist_ok=True)
        return path

    def cleanup_session(self, request: gr.Request) -> None:
        """Delete this session's files when the visitor leaves (``demo.unload``)."""
        session = getattr(request, "session_hash", None)
        if session:
            key = hashlib.sha256(str(session).encode()).hexdigest()[:16]
            shutil.rmtree(self.out_root / key, ignore_errors=True)

    def read_upload(self, upload: Any, field: str = "file") -> list[dict[str, str]]:
        """Rows of an uploaded CSV, refusing what is empty, too big, not UTF-8 or not CSV."""
        if upload is None or upload == "":
            raise InputError("is missing; upload a .csv file", field=field)
        path = Path(getattr(upload, "name", None) or getattr(upload, "path", None) or str(upload))
        if not path.is_file():
            raise InputError("could not be read; upload a .csv file", field=field)
        size = path.stat().st_size
        limit = self.settings.max_upload_bytes
        if size > limit:
            raise InputError(f"is {size:,} bytes; at most {limit:,} are allowed", field=field)
        if size == 0:
            raise InputError("is empty", field=field)
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError("is not UTF-8 text; save it as UTF-8 CSV", field=field) from None
        if "\x00" in text:
            raise InputError("is not a text CSV file", field=field)
        try:
            reader = csv.DictReader(io.StringIO(text))
            if not reader.fieldnames:
                raise InputError("has no header row", field=field)
            rows = []
            for i, row in enumerate(reader):
                if i >= self.settings.max_upload_rows:
                    raise InputError(f"has more than {self.settings.max_upload_rows:,} rows; split it", field=field)
                rows.append({(k or "").strip(): (v if isinstance(v, str) else "") for k, v in row.items()})
        except csv.Error:
            raise InputError("is not a valid CSV file", field=field) from None
        if not rows:
            raise InputError("has a header but no rows", field=field)
        return rows

    # ---- fill mask ---------------------------------------------------------------------------
    @user_facing
    def fill_mask(self, text: Any, top_k: Any = 5, targets: Any = None) -> tuple[Any, ...]:
        res = self.service.fill_mask(text, top_k=_num(top_k, "top_k", 5), targets=parse_targets(targets))
        preds = res.predictions
        labels = [_label(preds[i]) if i < len(preds) else None for i in range(self.n_labels)]
        return (*labels, res.filled)

    def label_visibility(self, *values: Any) -> tuple[Any, ...]:
        """UI-only follow-up: show one Label per [MASK] that got predictions, hide the rest."""
        return tuple(gr.update(visible=i == 0 or bool(v)) for i, v in enumerate(values))

    @user_facing
    def fill_mask_compare(self, text_a: Any, text_b: Any, top_k: Any = 5, targets: Any = None) -> tuple[Any, ...]:
        k = _num(top_k, "top_k", 5)
        words = parse_targets(targets)
        if not (isinstance(text_b, str) and text_b.strip()) and isinstance(text_a, str):
            text_b, _ = chat.swap_group_words(text_a)
        a = self.service.fill_mask(text_a, top_k=k, targets=words)
        b = self.service.fill_mask(text_b, top_k=k, targets=words)
        top_a, top_b = a.top_tokens, b.top_tokens
        if top_a == top_b:
            note = (f"Same top answer ({chat.code(', '.join(top_a))}) for both sentences; compare the "
                    "probabilities below. " + chat.FILL_CAVEAT)
        else:
            note = (f"**The top answer changes:** {chat.code(', '.join(top_a))} vs {chat.code(', '.join(top_b))}. "
                    "Predictions reflect associations in the training text, not facts.")
        return _label(a.predictions[0]), _label(b.predictions[0]), a.filled, b.filled, note

    @user_facing
    def swap_text(self, text: Any) -> str:
        """UI helper: the sentence with group words swapped (for the compare box)."""
        if not isinstance(text, str) or not text.strip():
            raise InputError("is empty; type a sentence first", field="sentence A")
        swapped, swaps = chat.swap_group_words(text)
        if not swaps:
            raise InputError("has no group word to swap (he, she, man, woman, ...)", field="sentence A")
        return swapped

    # ---- next sentence -------------------------------------------------------------------------
    @user_facing
    def next_sentence(self, first: Any, second: Any) -> tuple[dict[str, float], str]:
        p = self.service.next_sentence(first, second).is_next
        verdict = "B likely follows A." if p >= 0.5 else "B probably does not follow A."
        return {"B follows A": p, "B does not follow A": 1.0 - p}, f"**P(B follows A) = {100 * p:.1f}%** - {verdict}"

    @user_facing
    def rank_next(self, first: Any, candidates: Any) -> list[list[Any]]:
        if isinstance(candidates, str):
            candidates = [c.strip() for c in candidates.splitlines() if c.strip()]
        ranked = self.service.rank_next(first, candidates)
        return [[r.rank, r.candidate, round(r.is_next, 4)] for r in ranked]

    # ---- sentiment -----------------------------------------------------------------------------
    @user_facing
    def sentiment(self, text: Any) -> tuple[dict[str, float], str]:
        res = self.service.sentiment([text])[0]
        note = f"**{chat.esc(res.label)}** ({100 * res.score:.1f}%)"
        if res.truncated:
            note += " - the text was longer than the model reads; only the beginning was scored."
        return dict(res.scores), note

    @user_facing
    def explain(self, text: Any, method: Any = "integrated_gradients") -> tuple[dict[str, float], list[tuple[str, float]]]:
        res = self.service.explain_sentiment(text, method=method or "integrated_gradients")
        pairs = res.attributions or []
        peak = max((abs(s) for _, s in pairs), default=0.0) or 1.0
        highlighted = [(w + " ", round(s / peak, 4)) for w, s in pairs]
        return dict(res.scores), highlighted

    @user_facing
    def counterfactual(self, text: Any) -> tuple[str, list[list[Any]], str]:
        if not isinstance(text, str) or not text.strip():
            raise InputError("is empty; type a sentence with a group word (he, she, man, woman, ...)", field="text")
        swapped, swaps = chat.swap_group_words(text)
        if not swaps:
            raise InputError("has no group word to swap; try one with he, she, man, woman, his, her ...", field="text")
        orig, other = self.service.sentiment([text, swapped])
        table = [
            ["original", text, orig.label, round(orig.score, 4)],
            ["swapped", swapped, other.label, round(other.score, 4)],
        ]
        if orig.label != other.label:
            verdict = (f"**The label moves** ({chat.esc(orig.label)} -> {chat.esc(other.label)}) after swapping "
                       f"{chat.swaps_phrase(swaps)}: the classifier is sensitive to the group word here.")
        else:
            delta = other.scores[orig.label] - orig.scores[orig.label]
            verdict = (f"**The label does not move** ({chat.esc(orig.label)}); the probability of "
                       f"{chat.esc(orig.label)} changes by {100 * delta:+.1f} points after swapping "
                       f"{chat.swaps_phrase(swaps)}.")
        return swapped, table, verdict

    @user_facing
    def sentiment_csv(self, upload: Any, request: gr.Request | None = None) -> tuple[list[list[Any]], str]:
        rows = self.read_upload(upload)
        columns = list(rows[0])
        col = next((c for c in columns if c.lower() == "text"), None)
        if col is None:
            if len(columns) == 1:
                col = columns[0]
            else:
                shown = ", ".join(c[:30] for c in columns[:10])
                raise InputError(f"needs a column named 'text' (found: {shown})", field="file")
        texts = [r.get(col, "") for r in rows]
        blank = [i + 2 for i, t in enumerate(texts) if not (t or "").strip()]
        if blank:
            raise InputError(f"has empty text on line {blank[0]}" + (f" and {len(blank) - 1} more" if len(blank) > 1 else ""),
                             field="file")
        results = self.service.sentiment(texts)
        labels = list(results[0].scores)
        out_rows = [[t, r.label, round(r.score, 4), *[round(r.scores[k], 4) for k in labels]]
                    for t, r in zip(texts, results, strict=True)]
        out = self.session_dir(request) / "sentiment_scores.csv"
        with out.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["text", "label", "score", *[f"p_{k}" for k in labels]])
            w.writerows(out_rows)
        preview = [[t[:200], lab, s] for t, lab, s, *_ in out_rows[:200]]
        return preview, str(out)

    # ---- chat ----------------------------------------------------------------------------------
    def chat_reply(self, message: Any, request: gr.Request | None = None) -> list[Any]:
        """Assistant messages (Markdown strings or file dicts) for one user message."""
        r = chat.route(message)
        if r.kind == "help":
            return [chat.HELP]
        if r.kind == "fill":
            return [chat.answer_fill(self.service, r.text)]
        if r.kind == "nsp":
            return [chat.answer_nsp(self.service, r.text, r.second)]
        if r.kind == "rank":
            return [chat.answer_rank(self.service, r.text, r.candidates)]
        if r.kind == "audit":
            result = self.audit_core(QUICK_AUDIT_CHECKS, QUICK_AUDIT_LIMIT, None, "", "", request, None)
            msgs: list[Any] = [result["summary"] + "\n\n_Full options and plots are on the **Bias audit** tab._"]
            html_report = next((p for p in result["files"] if p.endswith(".html")), None)
            if html_report:
                msgs.append({"path": html_report})
            return msgs
        return [chat.answer_sentiment(self.service, r.text)]

    def chat(self, message: Any, history: Any, request: gr.Request | None = None) -> tuple[list[dict[str, Any]], str]:
        history = list(history or []) if isinstance(history, (list, tuple)) else []
        shown = ""
        if isinstance(message, str):
            shown = chat.esc(message if len(message) <= SHOWN_CHARS else message[:SHOWN_CHARS] + " ...")
        try:
            replies = self.chat_reply(message, request)
        except BertDemoError as err:
            replies = [f"Sorry: {chat.esc(err)}. Type `/help` for what I can do."]
        except Exception as err:
            log.error("internal error in chat: %s", type(err).__name__)
            log.debug("traceback", exc_info=True)
            replies = [INTERNAL_ERROR]
        history.append({"role": "user", "content": shown or "(empty)"})
        history.extend({"role": "assistant", "content": m} for m in replies)
        return history, ""

    # ---- bias audit ------------------------------------------------------------------------------
    def audit_core(self, checks: Any, limit: Any, upload: Any, group_cols: Any, label_col: Any,
                   request: gr.Request | None, progress: Any) -> dict[str, Any]:
        from bertdemo.ui import audit_adapter

        return audit_adapter.run(self.service, checks, _num(limit, "sample size", 50), upload, self.session_dir(request),
                                 progress, group_cols=group_cols, label_col=label_col)

    @user_facing
    def bias_audit(self, checks: Any, limit: Any, upload: Any = None, group_cols: Any = "", label_col: Any = "",
                   request: gr.Request | None = None,
                   progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008 (gradio's idiom)
        result = self.audit_core(checks, limit, upload, group_cols, label_col, request, progress)
        return result["summary"], result["table"], result["plot"], result["files"]


def _count(n: Any) -> str:
    n = float(n or 0)
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f}"


def about_markdown(service: Any, settings: Settings) -> str:
    """The model card: what is loaded, its limits, the privacy promise (operator values escaped)."""
    info = service.describe()
    lines = ["## Loaded models", "", "| role | name | kind | parameters | precision | device | max tokens | weights sha256 |",
             "|---|---|---|---|---|---|---|---|"]
    roles = {"pretraining": "fill mask + next sentence", "classifier": "sentiment"}
    for kind, m in info.get("loaded", {}).items():
        params = m.get("parameters") or 0
        lines.append(
            f"| {chat.esc(roles.get(kind, kind))} | {chat.esc(Path(str(m.get('name', ''))).name or m.get('name', ''))} | "
            f"{chat.esc(kind)} | {_count(params)} | {chat.esc(m.get('precision', ''))} | {chat.esc(m.get('device', ''))} | "
            f"{m.get('max_length', '')} | {chat.code(str(m.get('weights_sha256', ''))[:12])} |")
    if not info.get("loaded"):
        lines.append("| - | (models load on first use) | | | | | | |")
    s = info.get("settings", {})
    lines += [
        "",
        f"Sources are chosen by the operator (`BERTDEMO_MLM_MODEL`, `BERTDEMO_SENTIMENT_MODEL` or `bertdemo serve "
        f"--mlm-model/--sentiment-model`), never by visitors. Fill-mask/next-sentence source: "
        f"{chat.code(Path(str(s.get('mlm_model', ''))).name)}; sentiment source: "
        f"{chat.code(Path(str(s.get('sentiment_model', ''))).name)}.",
        "",
        "## Limitations",
        "- Fill-mask answers mirror word statistics of the training text, including its stereotypes; "
        "they are not facts. Compare group words (man/woman, he/she) in the *Fill mask* tab.",
        "- Next-sentence probabilities judge topical fit, not truth or logic.",
        "- The sentiment classifier reads at most the model's maximum tokens (longer text is truncated) and "
        "is English-only; sarcasm, negation and domain shift fool it. Word attributions are approximate.",
        "- Small models make a fast demo, not a production system: run the *Bias audit* before relying on it.",
        "",
        "## Privacy",
        "- What you type or upload is used to compute your answer and is **not stored or logged**"
        + (" (the operator has turned on logging of user text for debugging)." if settings.log_user_text else "."),
        "- Files you download (CSV scores, audit reports) are written to a private folder for your session "
        "and deleted when you close the page.",
        "- The page loads nothing from other sites and sends no analytics.",
        "",
        "## Bias audit",
        "Use the **Bias audit** tab (or `/audit` in Chat, or `bertdemo audit` on the command line) to measure "
        "how the models treat group words, with a downloadable report (JSON, Markdown, HTML).",
    ]
    return "\n".join(lines)
