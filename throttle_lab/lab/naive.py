"""The naive designs the lessons start from -- kept on purpose, flaws and all, so you can measure them.

These re-express the classes of the article throttle_lab grew from ("Semaphores and Rate Limiting:
Controlling Concurrent LLM API Requests"), instrumented like every other limiter.  They look reasonable and
mostly work, which is exactly why they are worth studying:

============================  ==================================================================
design                        flaw you can measure
============================  ==================================================================
:class:`PollingTokenBucket`   polls: every waiter wakes every ``1/rate`` s to re-check (CPU grows
                              with the crowd); order is whoever wins the lock, not who came first;
                              a request heavier than the bucket waits *forever*.
:class:`DequeSlidingWindow`   polls too, and its expiry test ``t0 <= now - window`` can disagree
                              with the sleep ``t0 + window - now`` by a rounding error.
:class:`RateThenSemaphore`    takes the *rate* slot first and the *concurrency* slot afterwards:
                              requests that waited for a slot go out in a burst, faster than the
                              rate they were booked at, and the server answers 429.
============================  ==================================================================

The fixed versions are :class:`~throttle_lab.TokenBucket`, :class:`~throttle_lab.SlidingWindowLog` and
:class:`~throttle_lab.Throttler`.  Do not use these in production.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ..core.events import _OBSERVERS, Kind, current_request, emit
from ..core.limiters._base import check_positive, resolve_rate

__all__ = ["DequeSlidingWindow", "NaiveStatistics", "PollingTokenBucket", "RateThenSemaphore"]


@dataclass(frozen=True, slots=True)
class NaiveStatistics:
    """What a naive limiter did.  ``polls`` is the number of times a waiter woke up to re-check."""

    name: str
    granted: int
    polls: int
    waiting: int


class _Instrumented:
    def __init__(self, name: str) -> None:
        self.name = name
        self.granted = 0
        self.polls = 0
        self.waiting = 0

    def _granted(self, now: float, waited: float, weight: float) -> None:
        self.granted += 1
        if _OBSERVERS.get():
            emit(now, Kind.GRANTED, self.name, None, weight, {"waited": waited})

    def _queued(self, now: float, weight: float) -> None:
        if _OBSERVERS.get():
            emit(now, Kind.QUEUED, self.name, current_request(), weight, {"ahead": self.waiting})

    def statistics(self) -> NaiveStatistics:
        return NaiveStatistics(self.name, self.granted, self.polls, self.waiting)


class PollingTokenBucket(_Instrumented):
    """The article's token bucket: refill under a lock; if short, sleep ``1/rate`` and try again.

    >>> import asyncio
    >>> from throttle_lab import run
    >>> from throttle_lab.lab.naive import PollingTokenBucket
    >>> async def main() -> str:
    ...     bucket = PollingTokenBucket(rate=1.0, capacity=5)
    ...     try:
    ...         await asyncio.wait_for(bucket.acquire(weight=6), timeout=3600)
    ...     except TimeoutError:
    ...         return f"still waiting after an hour, {bucket.polls} polls later"
    ...     return "granted"
    >>> run(main())
    'still waiting after an hour, 3600 polls later'
    """

    def __init__(
        self,
        rate: float | None = None,
        capacity: float = 1,
        *,
        per_minute: float | None = None,
        name: str = "PollingTokenBucket",
    ) -> None:
        super().__init__(name)
        self.rate = resolve_rate(rate, per_minute)
        self.capacity = check_positive("capacity", capacity)
        self.tokens = self.capacity
        self._last: float | None = None
        self._lock = asyncio.Lock()

    async def acquire(self, weight: float = 1) -> None:
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        queued = False
        while True:
            async with self._lock:
                now = loop.time()
                if self._last is None:
                    self._last = now
                self.tokens = min(self.capacity, self.tokens + (now - self._last) * self.rate)
                self._last = now
                if self.tokens >= weight:
                    self.tokens -= weight
                    if queued:
                        self.waiting -= 1
                    self._granted(now, now - arrived, weight)
                    return
            if not queued:
                queued = True
                self.waiting += 1
                self._queued(now, weight)
            # The flaw: no idea when capacity will be there, so guess, sleep, and check again.
            self.polls += 1
            await asyncio.sleep(1.0 / self.rate)

    @asynccontextmanager
    async def slot(self, weight: float = 1) -> AsyncIterator[None]:
        await self.acquire(weight)
        yield

    def __repr__(self) -> str:
        return (
            f"<PollingTokenBucket tokens={self.tokens:.2f}/{self.capacity:g} rate={self.rate:g}/s "
            f"polls={self.polls}>"
        )


class DequeSlidingWindow(_Instrumented):
    """The article's sliding window: a deque of timestamps under a lock; sleep until the oldest expires."""

    def __init__(
        self, max_requests: int = 60, window_seconds: float = 60.0, *, name: str = "DequeSlidingWindow"
    ) -> None:
        super().__init__(name)
        self.max_requests = int(check_positive("max_requests", max_requests, integer=True))
        self.window = check_positive("window_seconds", window_seconds)
        self.timestamps: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self, weight: float = 1) -> None:
        if weight != 1:
            raise ValueError("DequeSlidingWindow counts requests, not weights: weight must be 1")
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        queued = False
        while True:
            async with self._lock:
                now = loop.time()
                # Expiry tested by subtraction, while the sleep below adds: the two can round differently.
                while self.timestamps and self.timestamps[0] <= now - self.window:
                    self.timestamps.popleft()
                if len(self.timestamps) < self.max_requests:
                    self.timestamps.append(now)
                    if queued:
                        self.waiting -= 1
                    self._granted(now, now - arrived, 1)
                    return
                wait = self.timestamps[0] + self.window - now
            if not queued:
                queued = True
                self.waiting += 1
                self._queued(now, 1)
            self.polls += 1
            await asyncio.sleep(wait)

    @asynccontextmanager
    async def slot(self, weight: float = 1) -> AsyncIterator[None]:
        await self.acquire(weight)
        yield

    def __repr__(self) -> str:
        return (
            f"<DequeSlidingWindow {len(self.timestamps)}/{self.max_requests} per {self.window:g}s "
            f"polls={self.polls}>"
        )


class RateThenSemaphore(_Instrumented):
    """The article's combined throttler: wait for the rate limit, *then* for a concurrency slot.

    The rate slot is booked at the moment the first wait ends, but the request is sent only after the
    second.  Under load, many requests book their rate slot, queue for the semaphore, and then leave
    back to back as slots free up: the server sees them arrive faster than the rate allows.
    """

    def __init__(
        self, max_concurrent: int = 10, max_per_minute: int = 60, *, name: str = "RateThenSemaphore"
    ) -> None:
        super().__init__(name)
        self.max_concurrent = int(check_positive("max_concurrent", max_concurrent, integer=True))
        self.rate_limiter = DequeSlidingWindow(max_per_minute, 60.0, name=f"{name}.rate")
        self.semaphore = asyncio.Semaphore(self.max_concurrent)

    @asynccontextmanager
    async def slot(self, tokens: float = 0) -> AsyncIterator[None]:
        """``tokens`` is accepted for a uniform interface and ignored: this design knows no TPM."""
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        await self.rate_limiter.acquire()  # 1. the rate timestamp is taken here...
        async with self.semaphore:  # 2. ...but the request may wait here much longer
            now = loop.time()
            self._granted(now, now - arrived, 1)
            yield

    def statistics(self) -> NaiveStatistics:
        return NaiveStatistics(self.name, self.granted, self.rate_limiter.polls, self.rate_limiter.waiting)

    def __repr__(self) -> str:
        return f"<RateThenSemaphore rate={self.rate_limiter!r} max_concurrent={self.max_concurrent}>"
