"""What every tab shares: the error wrapper, form-value parsing, and the per-session file area.

No model loading or tensor code lives in the UI: callbacks validate the form, call the shared
service and format its typed result (:mod:`bertdemo.ui.format`). Every callback is wrapped by
:func:`user_facing`, so a visitor sees a one-line message (escaped, no traceback, no file path) for
any failure, naming the field by the label of the box the visitor typed in (``fields``). With
``in_place=True`` the page shows that message in the result area it belongs to instead of a toast
(:func:`show_errors_in_place` wires the event's ``.failure``); API callers get the same message as
an error either way. Files offered for download are written only into a per-session folder under the
app's own output directory.
"""

from __future__ import annotations

import copy
import functools
import html
import logging
import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from bertdemo.config import Settings
from bertdemo.csvfile import CsvData, read_csv
from bertdemo.errors import BertDemoError, InputError
from bertdemo.ui.files import FileKeeper
from bertdemo.ui.format import esc

log = logging.getLogger(__name__)

INTERNAL_ERROR = "Something went wrong inside the app. Please try again; if it keeps happening, report it."
UNREADABLE = object()  # what a validator gets for an input gradio cannot read (the handler then says why)


ERROR_SECONDS = 8  # a toast closes itself after this long, so toasts never pile up
_MAX_REMEMBERED = 2000
_last_errors: OrderedDict[tuple[str, str], str] = OrderedDict()
_errors_lock = threading.Lock()


def _session() -> str | None:
    # gradio sets the current request in a context variable while it runs an event's function
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    return getattr(request, "session_hash", None)


def _remember(key: str, message: str) -> None:
    session = _session()
    if session is None:
        return
    with _errors_lock:
        _last_errors[(session, key)] = message
        while len(_last_errors) > _MAX_REMEMBERED:
            _last_errors.popitem(last=False)


def _recall(session: str | None, key: str) -> str | None:
    with _errors_lock:
        return _last_errors.pop((session or "", key), None)


def message_for(err: BaseException, fields: Mapping[str, str] | None = None) -> str:
    """The plain message a visitor reads for ``err`` (fields named as the page labels them)."""
    if isinstance(err, InputError) and fields:
        return err.shown(fields)
    return str(err)


def user_facing(fn: Callable[..., Any] | None = None, *, fields: Mapping[str, str] | None = None,
                in_place: bool = False) -> Any:
    """Turn every failure into a ``gr.Error`` with a plain, escaped message and no traceback.

    ``fields`` maps the service's field names to the labels on the page (see
    :meth:`~bertdemo.errors.InputError.shown`). ``in_place``: the page shows the message in the
    result area (:func:`show_errors_in_place`) rather than as a toast.
    """
    if fn is None:
        return functools.partial(user_facing, fields=fields, in_place=in_place)

    def fail(message: str) -> gr.Error:
        if in_place:
            _remember(fn.__qualname__, message)
        return gr.Error(html.escape(message, quote=False), duration=ERROR_SECONDS, visible=not in_place,
                        print_exception=False)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except BertDemoError as err:
            raise fail(message_for(err, fields)) from None
        except Exception as err:  # a bug: log the type only (the message may hold user text)
            log.error("internal error in %s: %s", fn.__name__, type(err).__name__)
            log.debug("traceback", exc_info=True)
            raise fail(INTERNAL_ERROR) from None

    wrapper.error_key = fn.__qualname__  # type: ignore[attr-defined]
    return wrapper


def error_markdown(message: str) -> str:
    return f"**Error:** {esc(message)}"


def show_errors_in_place(event: Any, fn: Callable[..., Any], outputs: Sequence[Any], blanks: Sequence[Any],
                         note: Any) -> None:
    """When ``event`` (running ``fn``, wrapped with ``in_place=True``) fails, replace its result area.

    Every component in ``outputs`` gets its blank value from ``blanks`` and ``note`` (a Markdown in the
    same area, in ``outputs`` or not) gets the error message, so no stale result stays beside an error.
    """
    key = getattr(fn, "error_key", getattr(fn, "__qualname__", ""))
    targets = [*outputs] + ([] if any(o is note for o in outputs) else [note])

    def show(request: gr.Request) -> tuple[Any, ...]:
        message = _recall(getattr(request, "session_hash", None), key) or INTERNAL_ERROR
        # fresh copies every time: gradio consumes a gr.update dict it is given (pops its "value"), so a
        # shared blank would clear the result on the first error only
        values = [error_markdown(message) if o is note else copy.deepcopy(b) for o, b in zip(outputs, blanks, strict=True)]
        if len(targets) > len(outputs):
            values.append(error_markdown(message))
        return tuple(values)

    event.failure(show, None, targets, api_visibility="private", queue=False, show_progress="hidden")


def parse_targets(targets: Any) -> list[str] | None:
    """``"he, she"`` or ``"he she"`` -> ``["he", "she"]`` (targets are single words, as on the CLI); empty -> ``None``."""
    if targets is None:
        return None
    if isinstance(targets, (list, tuple)):
        words = [str(t).strip() for t in targets]
    elif isinstance(targets, str):
        words = targets.replace(",", " ").split()
    else:
        raise InputError("must be words separated by commas", field="targets")
    words = [w for w in words if w]
    return words or None


def number(value: Any, field: str, default: int) -> Any:
    """Pass numbers through (the service validates ranges); map blanks to the default."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, float) and math.isnan(value):
        raise InputError("must be a number", field=field)
    return value


def upload_path(upload: Any, field: str) -> Path:
    """The server-side path of a ``gr.File`` value, refusing anything that is not an uploaded file."""
    if upload is None or upload == "":
        raise InputError("is missing; upload a .csv file", field=field)
    path = Path(getattr(upload, "name", None) or getattr(upload, "path", None) or str(upload))
    if not path.is_file():
        raise InputError("could not be read; upload a .csv file", field=field)
    return path


class AppContext:
    """The service, the settings and the session file area every tab works with."""

    def __init__(self, service: Any, settings: Settings, files: FileKeeper | None = None) -> None:
        self.service = service
        self.settings = settings
        self.files = files or FileKeeper(settings.file_ttl_s, settings.output_dir)
        self.out_root = self.files.out_root

    def session_dir(self, request: gr.Request | None) -> Path:
        """A fresh folder for one result, inside this session's folder (never a user-chosen path)."""
        path = self.files.session_root(getattr(request, "session_hash", None)) / uuid.uuid4().hex[:12]
        path.mkdir(parents=True, exist_ok=True)
        return path

    def cleanup_session(self, request: gr.Request) -> None:
        """Delete this session's files when the visitor leaves (``demo.unload``): :mod:`bertdemo.ui.files`."""
        self.files.end_session(getattr(request, "session_hash", None))

    def read_upload(self, upload: Any, field: str = "file") -> CsvData:
        """An uploaded CSV, checked by the project's one CSV reader against the upload limits."""
        return read_csv(upload_path(upload, field), field, self.settings.max_upload_bytes, self.settings.max_upload_rows)
