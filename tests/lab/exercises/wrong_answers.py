"""Wrong answers learners really write, shared by the lesson catalogues (03, 04 and 09 grade them all).

Each is written the way a learner would: it looks reasonable, passes a quick try, and breaks one promise.
"""

from __future__ import annotations

import asyncio
from collections import deque


class ReserveThenSleepBucket:
    """Take the tokens at once (the level may go below zero), then sleep until they have dripped in.

    FIFO and one sleep each -- but a waiter that gives up has already taken its tokens.
    """

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate, self.capacity = rate, capacity
        self.tokens, self.last = float(capacity), 0.0

    async def acquire(self, weight: float = 1) -> None:
        if weight > self.capacity:
            raise ValueError("too heavy")
        now = asyncio.get_running_loop().time()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        self.tokens -= weight
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / self.rate)


class RetryAtExpiryWindow:
    """Sleep until the oldest entry expires, then look again -- every waiter does, at the same moment."""

    def __init__(self, max_requests: float, window_seconds: float) -> None:
        self.limit, self.window = max_requests, window_seconds
        self.log: deque[float] = deque()

    async def acquire(self, weight: float = 1) -> None:
        if weight > self.limit:
            raise ValueError("too big")
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            while self.log and self.log[0] + self.window <= now:
                self.log.popleft()
            if len(self.log) + weight <= self.limit:
                self.log.extend([now] * int(weight))
                return
            await asyncio.sleep(self.log[0] + self.window - now)
