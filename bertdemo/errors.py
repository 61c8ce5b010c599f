"""Typed errors: every failure a user can cause or meet has a class and a plain message.

Faces (CLI, app, audit) catch :class:`BertDemoError` and show ``str(err)``; anything else is a bug.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_INDEXED = re.compile(r"(\w+)\[(\d+)\]")


class BertDemoError(Exception):
    """Base class; ``str()`` is a one-line message meant for a person, never a traceback."""


class InputError(BertDemoError, ValueError):
    """The user's input cannot be served (empty text, no mask, bad number, bad file...)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        self.message = message  # without the field name: faces put their own name for the field in front
        super().__init__(f"{field}: {message}" if field else message)

    def shown(self, names: Mapping[str, str], sep: str = ": ") -> str:
        """The message with the field named as the visitor sees it.

        ``names`` maps an internal field (``"text"``) or an indexed one (``"texts[]"`` or just the stem
        ``"texts"`` for ``"texts[0]"``) to the label of the box the visitor typed in; ``{n}`` in a label
        becomes the 1-based index (``"Candidates, line {n}"``). Fields not in ``names`` keep their own name.
        ``sep`` goes between the label and the message (``" "`` reads "Your message is empty").
        """
        field = self.field
        if not field:
            return self.message
        m = _INDEXED.fullmatch(field)
        label = names.get(field)
        if label is None and m:
            label = names.get(m.group(1) + "[]", names.get(m.group(1)))
        if label is None:
            return str(self)
        label = label.replace("{n}", str(int(m.group(2)) + 1) if m else "")
        return f"{label}{sep}{self.message}"


class LimitError(InputError):
    """The request asks for more work than a documented limit allows; the message names the limit."""


class ModelLoadError(BertDemoError, RuntimeError):
    """A model folder or id is missing, unreadable, or not a BERT of the needed kind."""


class BusyError(BertDemoError, RuntimeError):
    """The server is at capacity; the caller should retry later."""
