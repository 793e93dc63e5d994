"""Lesson 04, a reference solution: a sliding-window log with a FIFO queue and one timer.

    from throttle_lab.lab.solutions.lesson04 import MyWindow
    lesson04.check(MyWindow)

The log keeps one entry per grant: *when it leaves the window* (grant time + window) and its weight.
Computing that moment once, and then both testing ``expires <= now`` and sleeping until ``expires``, is
the whole trick against the float trap: the timer and the test use the very same number, so the window
can never wake up "a hair too early", find the entry still inside, and spin.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque


class MyWindow:
    """At most ``max_requests`` units granted in any span of ``window_seconds``."""

    def __init__(self, max_requests: float, window_seconds: float) -> None:
        for name, value in (("max_requests", max_requests), ("window_seconds", window_seconds)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        self.max_requests = float(max_requests)
        self.window = float(window_seconds)
        self._log: deque[tuple[float, float]] = deque()  # (expires, weight), oldest first
        self._used = 0.0  # total weight in the log
        self._queue: deque[tuple[float, asyncio.Future[None]]] = deque()  # waiters, in arrival order
        self._timer: asyncio.TimerHandle | None = None

    # -- the log ------------------------------------------------------------------------------------
    def _evict(self, now: float) -> None:
        while self._log and self._log[0][0] <= now:  # the same number the timer was armed for
            self._used -= self._log.popleft()[1]
        if not self._log:
            self._used = 0.0  # no rounding dust left behind

    def _ready_at(self, weight: float, now: float) -> float:
        """When ``weight`` more would fit: now, or when enough old entries have left the window."""
        self._evict(now)
        excess = self._used + weight - self.max_requests
        if excess <= 0:
            return now
        freed = 0.0
        for expires, entry_weight in self._log:
            freed += entry_weight
            if freed >= excess:
                return expires
        return self._log[-1][0]

    def _take(self, weight: float, now: float) -> None:
        self._log.append((now + self.window, weight))
        self._used += weight

    # -- the public surface -------------------------------------------------------------------------
    async def acquire(self, weight: float = 1) -> None:
        """Wait in line until ``weight`` more fits in the window, then take it."""
        if not weight > 0:
            raise ValueError(f"weight must be positive, got {weight!r}")
        if weight > self.max_requests:
            raise ValueError(f"weight {weight:g} can never fit {self.max_requests:g} per window")
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self._queue and self._ready_at(weight, now) <= now:
            self._take(weight, now)
            return
        future: asyncio.Future[None] = loop.create_future()
        self._queue.append((weight, future))
        if len(self._queue) == 1:
            self._serve(loop)  # we are the head: arm the timer for us
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._refund(weight)  # granted, then cancelled before we could run
            self._serve(loop)  # the head may have left: the next one may go now
            raise

    def _refund(self, weight: float) -> None:
        # Our entry is the newest one granted with this weight; shrink it (it is still in the window).
        for i in range(len(self._log) - 1, -1, -1):
            expires, entry_weight = self._log[i]
            if entry_weight >= weight:
                self._log[i] = (expires, entry_weight - weight)
                self._used -= weight
                return

    # -- the one timer ------------------------------------------------------------------------------
    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        """Grant to the head while it fits, then arm one timer for when the new head will fit."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = loop.time()
        while self._queue:
            weight, future = self._queue[0]
            if future.done():  # its task was cancelled while it waited
                self._queue.popleft()
                continue
            ready = self._ready_at(weight, now)
            if ready > now:
                self._timer = loop.call_at(ready, self._on_timer, loop)
                return
            self._queue.popleft()
            self._take(weight, now)
            future.set_result(None)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._serve(loop)

    def __repr__(self) -> str:
        return (
            f"<MyWindow {self._used:g}/{self.max_requests:g} per {self.window:g}s waiting={len(self._queue)}>"
        )
