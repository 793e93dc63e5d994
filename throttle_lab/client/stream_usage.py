"""Reading ``usage`` out of a streamed answer as it passes, so a streamed request is reconciled too.

A JSON answer states its ``usage`` in the body; a stream states it in one or two of its events, and each
dialect puts it somewhere else::

    chat completions   data: {"choices": [], "usage": {"prompt_tokens": …}}       (with include_usage)
    Responses          data: {"type": "response.completed", "response": {"usage": {"input_tokens": …}}}
    Anthropic          data: {"type": "message_start", "message": {"usage": {"input_tokens": …}}}
                       data: {"type": "message_delta", "usage": {"output_tokens": …}}

:class:`StreamUsage` watches the raw bytes go by (the caller still gets every byte, untouched), keeps the
usage it finds, and when the stream ends reconciles the permit exactly as a JSON answer would be
(:func:`~throttle_lab.client.transport.server_charge`).  That matters most for Anthropic, where the output
budget booked at admission (``max_tokens``) comes back as soon as the reply turns out shorter.

Only lines that mention ``"usage"`` are parsed, so a long stream of text deltas costs a substring search
per line.  A stream that breaks off is not reconciled: what the server charged for it is unknown.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from ..core.gate import Admission
from ..core.tokens import Tokens

__all__ = ["StreamUsage"]

Charge = Callable[[Mapping[str, Any]], Tokens | None]
"""What the server charged, given a response-like mapping ``{"usage": {...}}`` (``None``: unknown)."""


class StreamUsage:
    """Collects ``usage`` from a text/event-stream body and reconciles ``permit`` when the body ends."""

    __slots__ = ("_charge", "_partial", "_permit", "usage")

    def __init__(self, permit: Admission, charge: Charge) -> None:
        self._permit = permit
        self._charge = charge
        self._partial = b""  # the unfinished last line of the bytes seen so far
        self.usage: dict[str, Any] = {}

    def feed(self, chunk: bytes) -> None:
        if b"usage" not in chunk and b"\n" not in chunk:
            self._partial += chunk
            return
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if line.startswith(b"data:") and b'"usage"' in line:
                self._read(line[5:])

    def finish(self) -> None:
        if self._partial.startswith(b"data:") and b'"usage"' in self._partial:
            self._read(self._partial[5:])
        self._partial = b""
        if self.usage:
            charged = self._charge({"usage": self.usage})
            if charged is not None:
                self._permit.reconcile(charged)

    def _read(self, data: bytes) -> None:
        try:
            event = json.loads(data)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        # Anthropic's message_start and Responses' completed event nest it one level down.
        for holder in (event, event.get("message"), event.get("response")):
            usage = holder.get("usage") if isinstance(holder, dict) else None
            if isinstance(usage, dict):
                self.usage.update(usage)  # message_delta's output_tokens joins message_start's input
