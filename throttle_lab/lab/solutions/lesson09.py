"""Lesson 09, a reference solution: a sliding-window log with a FIFO queue and one timer.

    from throttle_lab.lab.solutions.lesson09 import MyLimiter
    lesson09.check(MyLimiter, promise="window")

The promise: never more than ``max_requests`` grants in *any* ``window_seconds`` -- not per clock-aligned
window, any span at all.  So the limiter keeps a log of the grant times still inside the window.

* **Exact windows.**  A grant at ``t0`` leaves the window at ``t0 + window``.  Expiry is tested as
  ``t0 + window <= now`` -- the very expression the timer is armed with -- so a timer that fires at that
  instant always finds the grant expired (``t0 <= now - window`` can round the other way and spin).
* **FIFO, one timer.**  Waiters queue in arrival order.  Only the head matters: it can go when enough old
  grants have expired, which is one known instant, so one ``call_at`` is armed for it.  Nobody polls.
* **The impossible fails fast.**  A weight above ``max_requests`` can never fit: ``ValueError`` at once.
* **Cancellation-safe.**  A waiter cancelled in the queue is skipped; one cancelled right after its grant
  gives its log entries back, and the next waiter is looked at again.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque


class MyLimiter:
    """At most ``max_requests`` grants in any span of ``window_seconds``."""

    def __init__(self, max_requests: int, window_seconds: float) -> None:
        if isinstance(max_requests, bool) or not isinstance(max_requests, int) or max_requests < 1:
            raise ValueError(f"max_requests must be a whole number >= 1, got {max_requests!r}")
        if not (
            isinstance(window_seconds, int | float) and math.isfinite(window_seconds) and window_seconds > 0
        ):
            raise ValueError(f"window_seconds must be a positive number, got {window_seconds!r}")
        self.limit = max_requests
        self.window = float(window_seconds)
        self._log: deque[float] = deque()  # grant times still inside the window, oldest first
        # Waiters in arrival order: (weight, future resolved with the grant time).
        self._queue: deque[tuple[int, asyncio.Future[float]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    # -- the rule ------------------------------------------------------------------------------------
    def _expire(self, now: float) -> None:
        while self._log and self._log[0] + self.window <= now:
            self._log.popleft()

    def _ready_at(self, weight: int, now: float) -> float:
        """When ``weight`` more grants fit: now, or when the oldest entries in the way have expired."""
        self._expire(now)
        excess = len(self._log) + weight - self.limit
        return now if excess <= 0 else self._log[excess - 1] + self.window

    # -- waiting -------------------------------------------------------------------------------------
    async def acquire(self, weight: int = 1) -> None:
        if weight > self.limit:
            raise ValueError(f"a weight of {weight} can never fit in {self.limit} per {self.window:g} s")
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self._queue and self._ready_at(weight, now) <= now:
            self._log.extend([now] * weight)
            return
        future: asyncio.Future[float] = loop.create_future()
        self._queue.append((weight, future))
        self._serve(loop)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                # Granted, but cancelled before we could run: give the grants back.
                granted_at = future.result()
                for _ in range(weight):
                    self._log.remove(granted_at)
            self._serve(loop)
            raise

    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        """Grant to the head while it fits; then arm one timer for the moment the new head can go."""
        now = loop.time()
        while self._queue:
            weight, future = self._queue[0]
            if future.cancelled():
                self._queue.popleft()
                continue
            if self._ready_at(weight, now) > now:
                break
            self._queue.popleft()
            self._log.extend([now] * weight)
            future.set_result(now)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._queue:
            when = self._ready_at(self._queue[0][0], now)
            self._timer = loop.call_at(when, self._serve, loop)

    def __repr__(self) -> str:
        return (
            f"<MyLimiter {self.limit} per {self.window:g} s: {len(self._log)} in the log, "
            f"{len(self._queue)} waiting>"
        )
