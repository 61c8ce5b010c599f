"""Typed errors: every failure a user can cause or meet has a class and a plain message.

Faces (CLI, app, audit) catch :class:`BertDemoError` and show ``str(err)``; anything else is a bug.
"""

from __future__ import annotations


class BertDemoError(Exception):
    """Base class; ``str()`` is a one-line message meant for a person, never a traceback."""


class InputError(BertDemoError, ValueError):
    """The user's input cannot be served (empty text, no mask, bad number, bad file...)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class LimitError(InputError):
    """The request asks for more work than a documented limit allows; the message names the limit."""


class ModelLoadError(BertDemoError, RuntimeError):
    """A model folder or id is missing, unreadable, or not a BERT of the needed kind."""


class BusyError(BertDemoError, RuntimeError):
    """The server is at capacity; the caller should retry later."""
