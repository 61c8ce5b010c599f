"""Security headers on every HTTP response of the app (pages, API, files), added by an ASGI middleware.

- ``Content-Security-Policy: frame-ancestors 'self' https://huggingface.co https://*.hf.space``: only
  the app itself and the Hugging Face Hub may embed it in a frame (a Space page frames its app), so
  another site cannot overlay it (clickjacking). Nothing else is restricted by this header: the Gradio
  page needs its inline styles and scripts, and reports carry their own, stricter policy.
- ``X-Content-Type-Options: nosniff``: a browser never guesses a type (an uploaded ``.csv`` is not run as HTML).
- ``Referrer-Policy: strict-origin-when-cross-origin``: other sites see at most the app's origin.

No ``X-Frame-Options``: it cannot name the Hub, so it would break embedding on a Space.
"""

from __future__ import annotations

from typing import Any

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


def app_kwargs() -> dict[str, Any]:
    """``launch(app_kwargs=...)``: the FastAPI app gradio builds gets :class:`SecurityHeaders`."""
    from starlette.middleware import Middleware

    return {"middleware": [Middleware(SecurityHeaders)]}
