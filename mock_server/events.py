"""What the server saw: event records, kept in a list, numbered, trimmed and shown to an observer.

An event record is a plain dict (JSON-friendly, so any trace model can adopt it), one per step of a
request's life::

    {"t": 12.5, "kind": "limited", "source": "server", "request": "req-7", "weight": 0,
     "detail": {"status": 429, "limit_type": "requests", "retry_after_ms": 334, ...}}

``t`` is loop time; ``request`` is the request's ``x-request-id`` header, or the server's own id
(``req_`` + 32 hex digits, fixed by seed and arrival number: what the response's ``x-request-id`` says) when
it has none; ``weight`` is the tokens charged (0 when nothing was charged). The kinds a chat or embeddings
request goes through:

============  ===========================================================================================
``arrived``   the request's headers arrived (detail: ``seq``)
``rejected``  bad input or a missing/wrong API key, answered 4xx (``status``, ``code``, ``param``)
``limited``   answered 429 (``status``, ``limit_type`` = requests/tokens/concurrency/quota, ``code``,
              ``retry_after_ms`` (None when no hint), ``requested_tokens``, ``remaining_*``, ...)
``accepted``  admitted and charged (``latency`` planned, ``remaining_requests``, ``remaining_tokens``,
              ``model``, ``prompt_tokens``; chat: ``max_tokens``, ``stream``, ``n`` when not 1;
              embeddings: ``inputs``, ``dimensions``, ``encoding_format``)
``completed`` the last byte of a 200 was sent (adds ``status``, ``completion_tokens``, ``total_tokens``,
              ``finish_reason``)
``failed``    an injected 5xx (``status``, ``code``) or a cut stream (``code`` = ``stream_cut``,
              ``chunks_sent``); status 499 if the client left before sending its body
============  ===========================================================================================

A ``/v1/messages`` request (Anthropic's dialect) goes through the same kinds; its details add ``dialect``
(``"anthropic"``) and ``path``, its input and output as ``input_tokens`` / ``output_tokens`` beside the
OpenAI names (``prompt_tokens``, ``completion_tokens``, ``finish_reason``: one trace reads alike),
``remaining_input_tokens`` / ``remaining_output_tokens``, ``stop_reason``, ``output_given_back`` (the unused
``max_tokens`` returned to the output budget when the reply ends), and ``limit_type`` values
``input_tokens`` / ``output_tokens``.

Every detail has ``request_id`` (the server's ``req_…`` id, even when the client named the request),
``attempt`` (the ``x-stainless-retry-count`` header as an int, else None) and, with
``per_key``, ``key`` (a short hash of the API key, never the key). ``remaining_*`` are the header values at
admission. Only rate-limited routes record events; ``/health``, ``/stats`` and the like do not.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["EventLog", "EventRecord", "Observer"]

EventRecord = dict[str, Any]
Observer = Callable[[EventRecord], None]

log = logging.getLogger("mock_server")


class EventLog:
    """The records so far, oldest first, numbered from 0 since the last :meth:`clear`.

    With ``max_events`` set, only about the newest that many are kept, so a long-running server's memory
    stays flat; the numbering goes on counting the trimmed ones (``dropped``), so a poller that asks for
    "everything from N on" can tell that it missed some.
    """

    __slots__ = ("by_kind", "dropped", "max_events", "observer", "records")

    def __init__(self, max_events: int | None) -> None:
        self.records: list[EventRecord] = []
        self.max_events = max_events
        self.observer: Observer | None = None
        """Called with each record as it is appended (e.g. a live plot)."""
        self.by_kind: collections.Counter[str] = collections.Counter()
        """Records appended per kind, trimmed ones included."""
        self.dropped = 0
        """Records trimmed off the front of ``records``."""

    def __len__(self) -> int:
        return len(self.records)

    def emit(self, kind: str, t: float, request: str, weight: int, detail: dict[str, Any]) -> None:
        """Append one record, trim if over the cap, then show it to the observer."""
        record: EventRecord = {
            "t": t,
            "kind": kind,
            "source": "server",
            "request": request,
            "weight": weight,
            "detail": detail,
        }
        self.by_kind[kind] += 1
        records = self.records
        records.append(record)
        cap = self.max_events
        # Trim in batches (a quarter of the cap at a time) so trimming costs O(1) per event on average.
        if cap is not None and len(records) > cap + (cap >> 2):
            self.dropped += len(records) - cap
            del records[: len(records) - cap]
        observer = self.observer
        if observer is not None:
            try:
                observer(record)
            except Exception:
                # An observer is someone else's code: its bug must not turn a reply into a 500.
                log.exception("mock_server on_event observer raised; event kept, observer ignored")

    def since(self, since: int = 0) -> dict[str, Any]:
        """Records numbered ``since`` and later, as ``{"events": [...], "next": N, "dropped": D}``.

        Pass ``next`` back as ``since`` to get only what is new; ``dropped`` counts records already trimmed.
        """
        first = max(0, since - self.dropped)
        return {
            "events": self.records[first:],
            "next": self.dropped + len(self.records),
            "dropped": self.dropped,
        }

    def clear(self) -> None:
        """Forget every record, the counts and the numbering (the observer stays)."""
        self.records.clear()  # in place: whoever holds ``app.events`` sees it emptied
        self.by_kind.clear()
        self.dropped = 0
