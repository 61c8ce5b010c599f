"""Admission: one visitor cannot block everyone, with audits or with a flood of any request.

Every queued request (any event) is refused at once ("busy", before it takes a queue place) when its
client address already has ``max_pending_per_address`` requests waiting or running: 70 maximum-length
Explain calls from one address would otherwise hold 66 of gradio's 64+ queue places and answer
everyone else "queue is full" (0 turns this off, e.g. behind a proxy that hides client addresses).

Every audit entry point (the Bias audit tab, the chat's ``/audit``, their API names) runs in one
gradio concurrency group, :data:`AUDIT_GROUP`, with limit 1: audits run one at a time. Before an
audit is queued (a gradio ``validator``, which runs when the request arrives), :class:`AuditAdmission`
refuses it when

- the same session already has an audit waiting or running (one per visitor),
- the same client address has ``audit_per_address`` audits waiting or running (0 turns this off,
  e.g. behind a proxy that hides client addresses),
- ``audit_max_waiting`` audits already wait (all visitors together).

Audits can therefore hold at most ``audit_max_waiting`` places of gradio's queue (``queue_max_size``);
the others are the fast endpoints' (fill mask, next sentence, sentiment, explain, chat), which have
their own concurrency groups. Audit requests pass gradio's ``push`` (validator, then enqueue) one at a
time, so two arriving together cannot both be admitted on the same count. The size of one audit
(group columns, work) is checked by :func:`bertdemo.ui.audit_adapter.prepare` at the same moment.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bertdemo.errors import BusyError

AUDIT_GROUP = "audit"  # gradio concurrency_id shared by every audit entry point
AUDIT_CONCURRENCY = 1  # audits run one at a time


def _host(request: Any) -> str | None:
    client = getattr(request, "client", None)
    return getattr(client, "host", None) if client is not None else None


class AuditAdmission:
    """Counts the audits waiting or running (from gradio's own queue) and admits or refuses one more."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.demo: Any = None
        self._push_lock: asyncio.Lock | None = None

    @property
    def max_waiting(self) -> int:
        """``audit_max_waiting``, but always leaving the fast endpoints at least one queue place."""
        return max(1, min(self.settings.audit_max_waiting, self.settings.queue_max_size - 1))

    def attach(self, demo: Any) -> None:
        """Read ``demo``'s queue; refuse a request whose address has too many pending; let one audit at a
        time through gradio's ``push`` (validator, then enqueue), so each admission sees every audit
        admitted before it already in the queue."""
        self.demo = demo
        queue = demo._queue
        push = queue.push

        async def push_one_audit_at_a_time(*args: Any, **kwargs: Any) -> Any:
            body = kwargs.get("body", args[0] if args else None)
            refused = self.flooding(_host(getattr(body, "request", None)))
            if refused:
                return False, refused, "queue_full"
            fn = demo.fns.get(getattr(body, "fn_index", None))
            if getattr(fn, "concurrency_id", None) != AUDIT_GROUP:
                return await push(*args, **kwargs)
            if self._push_lock is None:
                self._push_lock = asyncio.Lock()
            async with self._push_lock:
                return await push(*args, **kwargs)

        queue.push = push_one_audit_at_a_time

    def flooding(self, host: str | None) -> str | None:
        """Why a request from ``host`` may not be queued now (too many of its requests pending), or ``None``."""
        limit = getattr(self.settings, "max_pending_per_address", 0)
        queue = getattr(self.demo, "_queue", None)
        if not limit or host is None or queue is None:
            return None
        groups = getattr(queue, "event_queue_per_concurrency_id", {}).values()
        events = [e for g in list(groups) for e in list(getattr(g, "queue", None) or [])]
        events += [e for job in list(getattr(queue, "active_jobs", None) or []) if job for e in job]
        if sum(_host(getattr(e, "request", None)) == host for e in events) >= limit:
            return (f"Busy: too many requests from your network address are waiting or running (at most {limit}, "
                    "BERTDEMO_MAX_PENDING_PER_ADDRESS); wait for them to finish.")
        return None

    def _queued(self) -> tuple[int, list[tuple[str | None, str | None]]]:
        """(how many audits wait, (session, address) of every audit waiting or running) from gradio's queue."""
        queue = getattr(self.demo, "_queue", None)
        if queue is None:
            return 0, []
        group = getattr(queue, "event_queue_per_concurrency_id", {}).get(AUDIT_GROUP)
        waiting = list(getattr(group, "queue", None) or [])
        running = [e for job in list(getattr(queue, "active_jobs", None) or []) if job
                   for e in job if getattr(e, "concurrency_id", None) == AUDIT_GROUP]
        return len(waiting), [(getattr(e, "session_hash", None), _host(getattr(e, "request", None)))
                              for e in [*waiting, *running]]

    def check(self, request: Any) -> None:
        """Raise :class:`BusyError` (a message naming the limit) if this visitor may not queue an audit now."""
        session = getattr(request, "session_hash", None)
        host = _host(request)
        waiting, pending = self._queued()
        if session is not None and any(s == session for s, _ in pending):
            raise BusyError("You already have an audit waiting or running (one per visitor at a time); "
                            "its result appears when it is done.")
        per_address = self.settings.audit_per_address
        if per_address and host is not None and sum(h == host for _, h in pending) >= per_address:
            raise BusyError(f"An audit from your network address is already waiting or running (at most "
                            f"{per_address} per address, BERTDEMO_AUDIT_PER_ADDRESS); try again when it is done.")
        if waiting >= self.max_waiting:
            raise BusyError(f"{self.max_waiting} audits are already waiting (at most {self.max_waiting}, "
                            "BERTDEMO_AUDIT_MAX_WAITING; audits run one at a time); try again in a few minutes.")
