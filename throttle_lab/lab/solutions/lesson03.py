"""Lesson 03, a reference solution: a token bucket with a FIFO queue and one timer.

    from throttle_lab.lab.solutions.lesson03 import MyBucket
    lesson03.check(MyBucket)

How it works, in three sentences.  The bucket remembers how many tokens it had at one moment
(``_tokens`` at ``_last``) and works out the level at any later moment from the rate.  A request that
finds the tokens there and nobody waiting takes them at once; otherwise it joins the back of a queue.
One timer is armed for the moment the request at the *head* of the queue will have its tokens; when it
fires, the head is served (and the next, and the next, while tokens last) and the timer is armed again.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque


class MyBucket:
    """``rate`` tokens per second, at most ``capacity`` in the bucket; starts full."""

    def __init__(self, rate: float, capacity: float) -> None:
        for name, value in (("rate", rate), ("capacity", capacity)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._tokens = self.capacity  # tokens at loop time `_last`
        self._last: float | None = None  # None until first used: the bucket is full then
        # Waiters in arrival order: (weight, future the waiter sleeps on).
        self._queue: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    # -- bookkeeping ---------------------------------------------------------------------------------
    def _refill(self, now: float) -> None:
        if self._last is not None:
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def _fits(self, weight: float) -> bool:
        # A timer armed for "when the tokens are there" can wake a rounding error early (e.g. 0.999...
        # tokens instead of 1).  Allow for that, or the head would wait for an extra, tiny timer.
        return self._tokens >= weight - 1e-9

    # -- the public surface --------------------------------------------------------------------------
    async def acquire(self, weight: float = 1) -> None:
        """Wait in line until ``weight`` tokens are there, then take them."""
        if not weight > 0:
            raise ValueError(f"weight must be positive, got {weight!r}")
        if weight > self.capacity:
            raise ValueError(f"weight {weight:g} can never fit a bucket of {self.capacity:g}")
        loop = asyncio.get_running_loop()
        self._refill(loop.time())
        if not self._queue and self._fits(weight):  # nobody ahead of us, and the tokens are there
            self._tokens -= weight
            return
        future: asyncio.Future[None] = loop.create_future()
        self._queue.append((weight, future))
        if len(self._queue) == 1:
            self._serve(loop)  # we are the head: arm the timer for us
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                # Granted, then cancelled before we could run: give the tokens back.
                self._refill(loop.time())
                self._tokens = min(self.capacity, self._tokens + weight)
            # A cancelled waiter stays in the queue and is skipped when it reaches the head; if it
            # was the head, the next one may be able to go now.
            self._serve(loop)
            raise

    # -- the one timer -------------------------------------------------------------------------------
    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        """Grant to the head while its tokens are there, then arm one timer for the new head."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._refill(loop.time())
        while self._queue:
            weight, future = self._queue[0]
            if future.done():  # its task was cancelled while it waited
                self._queue.popleft()
                continue
            if not self._fits(weight):
                wait = (weight - self._tokens) / self.rate
                self._timer = loop.call_at(loop.time() + wait, self._on_timer, loop)
                return
            self._queue.popleft()
            self._tokens -= weight
            future.set_result(None)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._serve(loop)

    def __repr__(self) -> str:
        return (
            f"<MyBucket rate={self.rate:g}/s capacity={self.capacity:g} tokens~{self._tokens:.2f} "
            f"waiting={len(self._queue)}>"
        )
