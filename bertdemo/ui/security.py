"""Security headers on every HTTP response of the app (pages, API, files), added by an ASGI middleware.

- ``Content-Security-Policy: frame-ancestors 'self' https://huggingface.co https://*.hf.space``: only
  the app itself and the Hugging Face Hub may embed it in a frame (a Space page frames its app), so
  another site cannot overlay it (clickjacking). Nothing else is restricted by this header: the Gradio
  page needs its inline styles and scripts, and reports carry their own, stricter policy.
- ``X-Content-Type-Options: nosniff``: a browser never guesses a type (an uploaded ``.csv`` is not run as HTML).
- ``Referrer-Policy: strict-origin-when-cross-origin``: other sites see at most the app's origin.

No ``X-Frame-Options``: it cannot name the Hub, so it would break embedding on a Space.

Request bodies over ``max_request_bytes`` are refused with 413 before they are read (by their
``Content-Length``, or while streaming when there is none), so a huge JSON body is never parsed. A JSON
body is also refused before it is parsed when it holds more than ``max_json_values`` values: 8 MB of
``[{},{},...]`` would otherwise become millions of Python objects (gigabytes, measured 3 GB for six such
bodies, kept by the allocator afterwards) and stall the server while parsed.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import anyio
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)

FRAME_ANCESTORS = "'self' https://huggingface.co https://*.hf.space"
HEADERS: dict[str, str] = {
    "Content-Security-Policy": f"frame-ancestors {FRAME_ANCESTORS}",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
_RAW = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in HEADERS.items()]


class SecurityHeaders:
    """Pure ASGI middleware (streams, server-sent events and websockets pass through untouched): adds
    :data:`HEADERS` to each HTTP response that does not set them itself."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in _RAW if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _SendWatch:
    """An ASGI ``send`` that remembers whether the response has started (an error after that can only end it)."""

    def __init__(self, send: Any) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: dict[str, Any]) -> None:
        self.started = self.started or message.get("type") == "http.response.start"
        await self.send(message)


async def _plain(send: Any, status: int, text: str, close: bool = False) -> None:
    """A whole plain-text response, with the security headers."""
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()), *_RAW]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def json_values(body: bytes) -> int:
    """How many values a JSON text holds, counted without parsing it (an upper bound for valid JSON): the
    commas and opening brackets outside strings, plus one. About 0.1 s for 8 MB."""
    bare = _JSON_STRING.sub(b"0", body)
    return bare.count(b",") + bare.count(b"[") + bare.count(b"{") + 1


class BodyLimit:
    """Pure ASGI middleware: refuse (413) any HTTP request whose body is larger than ``max_bytes``,
    before the app reads it. A declared ``Content-Length`` is checked up front; a body without one is
    counted as it streams in and cut off at the limit. A JSON body is read here first (it is at most
    ``max_bytes``) and refused when it holds more than ``max_json_values`` values, then handed on."""

    def __init__(self, app: Any, max_bytes: int, max_json_values: int = 100_000) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_json_values = max_json_values

    async def _refuse(self, send: Any, message: str = "") -> None:
        await _plain(send, 413, message or f"request body too large: at most {self.max_bytes} bytes", close=True)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = True
            if too_big:
                await self._refuse(send)
                return
        if b"json" in dict(scope.get("headers") or []).get(b"content-type", b"").lower():
            await self._json(scope, receive, send)
            return
        seen = 0
        watched = _SendWatch(send)

        async def counting_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(413, f"request body too large: at most {self.max_bytes} bytes")
            return message

        try:
            await self.app(scope, counting_receive, watched)
        except _TooLarge:
            if not watched.started:
                await self._refuse(send)


    async def _json(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Read a JSON body (bounded), count its values, then let the app read the same bytes."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message.get("type") != "http.request":
                return  # the client went away before sending its body
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if size > self.max_json_values:  # a shorter body cannot hold more values than it has bytes
            values = await anyio.to_thread.run_sync(json_values, body)
            if values > self.max_json_values:
                await self._refuse(send, f"request body has about {values} JSON values; at most "
                                         f"{self.max_json_values} are accepted")
                return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class QuietErrors:
    """Pure ASGI middleware: an error that escapes the app becomes a plain 500 ("internal error") and one log
    line with the error's type only. Starlette and uvicorn would log it with a traceback, which can quote
    what the visitor sent (a made-up API name in the path, a payload); logs carry no user-supplied values
    unless the operator turns on ``log_user_text``, which keeps the traceback."""

    def __init__(self, app: Any, log_user_text: bool = False) -> None:
        self.app = app
        self.log_user_text = log_user_text

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        watched = _SendWatch(send)
        try:
            await self.app(scope, receive, watched)
        except Exception as err:
            if isinstance(err, _TooLarge):
                raise
            log.error("internal error answering a request: %s", type(err).__name__,
                      exc_info=self.log_user_text)
            if not watched.started:  # otherwise the answer was under way: the connection just ends
                await _plain(send, 500, "internal error")


class _TooLarge(HTTPException):
    """A streamed body passed the limit, raised inside the app's ``receive``: an HTTP error, so the app's own
    handling answers 413 (FastAPI turns any other error while reading a body into 400)."""


# gradio routes this app does not use: a deep link (no DeepLinkButton here) writes a file of every component's
# state of a session (~280 KiB) into the upload folder on each GET, for anyone who knows a session hash
UNOFFERED_PATHS = ("/gradio_api/deep_link",)


class Unoffered:
    """Pure ASGI middleware: 404 for :data:`UNOFFERED_PATHS` (with or without a root path in front)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and str(scope.get("path", "")).rstrip("/").endswith(UNOFFERED_PATHS):
            await _plain(send, 404, "not found")
            return
        await self.app(scope, receive, send)


def app_kwargs(max_request_bytes: int, max_json_values: int = 100_000, log_user_text: bool = False) -> dict[str, Any]:
    """``launch(app_kwargs=...)``: the FastAPI app gradio builds gets :class:`QuietErrors` (outermost),
    :class:`Unoffered`, :class:`BodyLimit` and :class:`SecurityHeaders`."""
    from starlette.middleware import Middleware

    return {"middleware": [Middleware(QuietErrors, log_user_text=log_user_text), Middleware(Unoffered),
                           Middleware(BodyLimit, max_bytes=max_request_bytes, max_json_values=max_json_values),
                           Middleware(SecurityHeaders)]}
