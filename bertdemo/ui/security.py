"""Security headers on every HTTP response of the app (pages, API, files), added by an ASGI middleware.

- ``Content-Security-Policy: frame-ancestors 'self' https://huggingface.co https://*.hf.space``: only
  the app itself and the Hugging Face Hub may embed it in a frame (a Space page frames its app), so
  another site cannot overlay it (clickjacking). Nothing else is restricted by this header: the Gradio
  page needs its inline styles and scripts, and reports carry their own, stricter policy.
- ``X-Content-Type-Options: nosniff``: a browser never guesses a type (an uploaded ``.csv`` is not run as HTML).
- ``Referrer-Policy: strict-origin-when-cross-origin``: other sites see at most the app's origin.

No ``X-Frame-Options``: it cannot name the Hub, so it would break embedding on a Space.

Request bodies over ``max_request_bytes`` are refused with 413 before they are read (by their
``Content-Length``, or while streaming when there is none), so a huge JSON body is never parsed.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException

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


class BodyLimit:
    """Pure ASGI middleware: refuse (413) any HTTP request whose body is larger than ``max_bytes``,
    before the app reads it. A declared ``Content-Length`` is checked up front; a body without one is
    counted as it streams in and cut off at the limit."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send: Any) -> None:
        body = f"request body too large: at most {self.max_bytes} bytes".encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close"), *_RAW]})
        await send({"type": "http.response.body", "body": body})

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
        seen = 0
        started = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(413, f"request body too large: at most {self.max_bytes} bytes")
            return message

        async def watching_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message.get("type") == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)


class _TooLarge(HTTPException):
    """A streamed body passed the limit, raised inside the app's ``receive``: an HTTP error, so the app's own
    handling answers 413 (FastAPI turns any other error while reading a body into 400)."""


def app_kwargs(max_request_bytes: int) -> dict[str, Any]:
    """``launch(app_kwargs=...)``: the FastAPI app gradio builds gets :class:`BodyLimit` (outermost)
    and :class:`SecurityHeaders`."""
    from starlette.middleware import Middleware

    return {"middleware": [Middleware(BodyLimit, max_bytes=max_request_bytes), Middleware(SecurityHeaders)]}
