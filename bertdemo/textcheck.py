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
