"""Validation of user input shared by every entry point (service, CLI, app, uploads).

Each check raises :class:`InputError` naming the field and what is allowed, so every face shows
the same message for the same mistake.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

from bertdemo.errors import InputError

MASK = "[MASK]"
# Spellings people type for BERT's mask token; all are served as [MASK].
_MASK_SPELLINGS = re.compile(r"\[\s*mask\s*\]|<\s*mask\s*>", re.IGNORECASE)


def clean_text(text: Any, field: str = "text", max_chars: int = 5000) -> str:
    """Return ``text`` with control characters removed and spaces trimmed, or raise.

    Control characters (NUL, escape codes...) are replaced by spaces rather than refused: they
    are invisible to a person and meaningless to the tokenizer.
    """
    if text is None:
        raise InputError("is missing; type some text", field=field)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("is not valid UTF-8 text", field=field) from None
    if not isinstance(text, str):
        raise InputError(f"must be text, not {type(text).__name__}", field=field)
    if len(text) > max_chars:
        raise InputError(f"is {len(text):,} characters long; at most {max_chars:,} are allowed", field=field)
    cleaned = "".join(
        " " if unicodedata.category(ch) in {"Cc", "Cs", "Co"} and ch not in "\t\n" else ch for ch in text
    )
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise InputError("is empty; type some text", field=field)
    return cleaned


def normalize_masks(text: str, mask_token: str = MASK) -> str:
    """Accept ``[mask]``, ``[ MASK ]`` and ``<mask>`` as the model's mask token."""
    return _MASK_SPELLINGS.sub(mask_token, text)


def check_int(value: Any, field: str, low: int, high: int) -> int:
    """An integer in ``[low, high]``; accepts integral floats and numeric strings from forms."""
    if isinstance(value, bool) or value is None:
        raise InputError(f"must be a whole number from {low} to {high}", field=field)
    if isinstance(value, str):
        value = value.strip()
        try:
            value = float(value)
        except ValueError:
            raise InputError(f"must be a whole number from {low} to {high}, not {value[:20]!r}", field=field) from None
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value) or value != int(value):
            raise InputError(f"must be a whole number from {low} to {high}", field=field)
        value = int(value)
    if not isinstance(value, int):
        raise InputError(f"must be a whole number from {low} to {high}", field=field)
    if not low <= value <= high:
        raise InputError(f"must be from {low} to {high}, got {value}", field=field)
    return value


def check_text_list(texts: Any, field: str, max_items: int, max_chars: int) -> list[str]:
    """A non-empty list of texts (a single string counts as a list of one)."""
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, (list, tuple)):
        raise InputError("must be a list of texts", field=field)
    if not texts:
        raise InputError("is empty; give at least one text", field=field)
    if len(texts) > max_items:
        raise InputError(f"has {len(texts):,} texts; at most {max_items:,} per call", field=field)
    return [clean_text(t, field=f"{field}[{i}]", max_chars=max_chars) for i, t in enumerate(texts)]


# ---- is it English? (the bundled models read English only) -------------------------------------
# A cheap check, no model: the share of letters that are ASCII, then for Latin-script text a count
# of common function words. It says "probably not English"; it never refuses the text.
_EN_WORDS = frozenset(
    "the a an and is are was were be been of to in it its this that these i you he she we they me my your our "
    "his her their for on with not no at by from as but or so very what do does did have has had will would "
    "can could just all there here about if then than too".split())
_OTHER_WORDS = frozenset(
    # French, Spanish, Portuguese, Italian, German, Dutch function words that are not English words
    "le la les des est et une du je tu il nous vous ce cette pas très avec pour dans sur qui que mais ne suis "
    "el los las es y una muy con para por pero del se su esta este está estoy yo mi tiene "
    "os é não um uma muito em da do isso eu você "
    "gli è di che molto sono questo questa mi ho "
    "der das und ist nicht ich ein eine sehr mit für auf dem zu sie wir auch sich ja "
    "het een niet ik zeer voor ook maar".split())
_WORD_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    first = name.split(" ")[0] if name else ""
    return {"CJK": "Chinese or Japanese", "HIRAGANA": "Japanese", "KATAKANA": "Japanese", "HANGUL": "Korean",
            "CYRILLIC": "Cyrillic", "ARABIC": "Arabic", "HEBREW": "Hebrew", "GREEK": "Greek",
            "DEVANAGARI": "Devanagari", "THAI": "Thai"}.get(first, "non-Latin")


def non_english_reason(text: str) -> str | None:
    """Why ``text`` is probably not English (``"it is written in Cyrillic script"``), or ``None``.

    Mask tokens are ignored. Text with fewer than three letters is not judged.
    """
    body = _MASK_SPELLINGS.sub(" ", text)
    letters = [ch for ch in body if ch.isalpha()]
    if len(letters) < 3:
        return None
    other = [ch for ch in letters if not ("a" <= ch.lower() <= "z")]
    if len(other) > 0.4 * len(letters):
        non_latin = [ch for ch in other if not unicodedata.name(ch, "").startswith("LATIN")]
        if len(non_latin) > 0.4 * len(letters):
            scripts: dict[str, int] = {}
            for ch in non_latin:
                scripts[_script(ch)] = scripts.get(_script(ch), 0) + 1
            return f"it is written in {max(scripts, key=scripts.__getitem__)} script"
        return "most of its letters are accented"
    words = [w.lower() for w in _WORD_RE.findall(body)]
    if len(words) < 3:
        return None
    en = sum(w in _EN_WORDS for w in words)
    foreign = sum(w in _OTHER_WORDS for w in words)
    if foreign >= 2 and foreign > 2 * en:
        return "its common words are not English ones"
    return None


def english_only_warning(text: str) -> str | None:
    """A plain sentence for the visitor when ``text`` is probably not English, else ``None``."""
    reason = non_english_reason(text) if isinstance(text, str) else None
    if reason is None:
        return None
    return (f"This does not look like English ({reason}). The models here read English only, "
            "so treat the answer as unreliable.")
