"""A light HTTP client for gradio apps: the documented two-request REST API, nothing else.

Why: on a 2-core machine the clients share the cores with the server, and ``gradio_client`` spends
60-70 ms of CPU per request in the client process (job threads, its own SSE stream, file handling),
more than the app's server side costs per answer. A load test with it measures mostly the client.
This client does what ``curl`` does in gradio's "Querying Gradio Apps with Curl" guide:

    POST /gradio_api/call/<api_name>      {"data": [...]}  -> {"event_id": "..."}
    GET  /gradio_api/call/<api_name>/<event_id>            -> SSE: ``event: complete`` + ``data: [...]``

over one keep-alive connection per client (``http.client``), so the server does the same work as for
any caller (queue, validators, admission, the event's function) and the client adds about a
millisecond. Like ``gradio_client`` and a browser tab, each client keeps one session (``session_hash``)
for all its calls; a call without one makes gradio build a new session each time. Errors the app
raises come back as :class:`CallError` (its message, as gradio sends it).
"""

from __future__ import annotations

import http.client
import json
import secrets
from typing import Any
from urllib.parse import urlsplit


class CallError(RuntimeError):
    """The app answered the call with an error (``event: error``) or an HTTP error status."""


class RestClient:
    """One keep-alive connection to a gradio app; ``predict(*args, api_name="/x")`` returns the outputs."""

    def __init__(self, url: str, timeout: float = 120.0) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._prefix = parts.path.rstrip("/") + "/gradio_api/call"
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self.session_hash = secrets.token_hex(6)  # one session for all calls, as gradio_client keeps

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        for attempt in (0, 1):  # a keep-alive connection the server closed is reopened once
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            try:
                headers = {"Content-Type": "application/json"} if body is not None else {}
                self._conn.request(method, path, body=body, headers=headers)
                resp = self._conn.getresponse()
                return resp.status, resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()  # the server closed an idle keep-alive connection: one new try
                if attempt:
                    raise
            except BaseException:
                self.close()  # a timeout or a broken answer: the next call starts on a new connection
                raise
        raise AssertionError("unreachable")

    def predict(self, *args: Any, api_name: str) -> Any:
        name = api_name.lstrip("/")
        body = json.dumps({"data": list(args), "session_hash": self.session_hash}).encode()
        status, raw = self._request("POST", f"{self._prefix}/{name}", body)
        if status != 200:
            raise CallError(f"HTTP {status}: {raw[:300].decode(errors='replace')}")
        event_id = json.loads(raw)["event_id"]
        status, raw = self._request("GET", f"{self._prefix}/{name}/{event_id}")
        if status != 200:
            raise CallError(f"HTTP {status}: {raw[:300].decode(errors='replace')}")
        return _outcome(raw.decode("utf-8", errors="replace"))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _outcome(stream: str) -> Any:
    """The data of the final ``complete`` event of an SSE body; :class:`CallError` for ``error``."""
    event = None
    for line in stream.splitlines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:") and event in ("complete", "error"):
            data = json.loads(line[5:].strip() or "null")
            if event == "error":
                raise CallError(str(data) if data is not None else "the app raised an error")
            return data
    raise CallError(f"no answer in the event stream: {stream[:200]!r}")
