"""Giving a cancelled booking back, in the background, without holding up the cancellation.

A caller cancelled while sleeping on its booking asks Redis to give the booking back; whether that is
possible depends on the algorithm (each limiter's refund script says, and its module docstring explains).
A caller cancelled during the round trip itself cannot know whether its booking was made: that slot is
lost (a gap, never an excess).  So is a refund while Redis is down::

    caller sleeping on its booking ── cancelled ──> CancelledError raised at once
                                                    └─ in the background: refund script ─> refunded
                                                                                       └─> not_refunded
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any

from ..core.events import Kind, emit, is_recording

__all__ = ["BackgroundCalls", "Refunds"]


class BackgroundCalls:
    """A limiter's round trips sent in the background on the current loop (refunds, a throttler's pauses),
    so that a caller that cannot wait need not, and ``aclose`` can wait for all of them."""

    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        # The loop keeps only weak references to its tasks: without this set a call could be collected
        # half done.
        self._tasks: set[asyncio.Task[None]] = set()

    def bind(self) -> None:
        """A new event loop: tasks of the old one are not ours to wait for here."""
        self._tasks = set()

    def start(self, loop: asyncio.AbstractEventLoop, call: Coroutine[Any, Any, None]) -> None:
        task = loop.create_task(call)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait(self) -> None:
        """Wait until every call in flight has been answered (or given up on)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class Refunds:
    """One limiter's refunds, sent through its :class:`BackgroundCalls`, and how they went (counted over its
    life)."""

    __slots__ = ("_calls", "not_refunded", "refunded")

    def __init__(self, calls: BackgroundCalls) -> None:
        self._calls = calls
        self.refunded = 0  # cancelled bookings Redis gave back
        self.not_refunded = 0  # ... and those it could not (someone booked after them, or Redis was down)

    def start(
        self,
        loop: asyncio.AbstractEventLoop,
        give_back: Callable[[], Awaitable[bool]],
        source: str,
        weight: float,
        request: Hashable | None,
    ) -> None:
        """Run ``give_back`` (one refund round trip: did Redis give the booking back?) in the background."""

        async def refund() -> None:
            if not await give_back():
                self.not_refunded += 1
                return
            self.refunded += 1
            if is_recording():
                emit(loop.time(), Kind.RELEASED, source, request, weight, {"refunded": True})

        self._calls.start(loop, refund())
