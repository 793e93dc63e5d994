"""ConcurrencyLimiter: at most N requests in flight at once -- a semaphore that queues fairly.

Picture a sofa with ``max_concurrent`` seats.  Whoever arrives sits down if a seat is free; otherwise they
queue by the door, in order, and the first in line takes the next seat that frees up::

    in flight:  [req1][req2][req3]          max_concurrent = 3
    waiting:    req4 -> req5 -> req6         (req4 sits down the moment anyone stands up)

Concurrency is not rate.  Three seats and requests that take 2 s each give 90 requests a minute; the same
three seats with 0.2 s requests give 900.  Little's law: ``in flight = rate x latency``.  If the API limits
*requests per minute*, you need a rate limiter too (see :class:`~throttle_lab.Throttler`).

Differences from ``asyncio.Semaphore``: weighted slots (``acquire(2)`` takes two seats, and a heavy
request at the head is not overtaken), a ``ValueError`` for a request that can never fit, release checks,
statistics and events.

>>> import asyncio
>>> from throttle_lab import ConcurrencyLimiter, run
>>> async def main() -> list[float]:
...     limiter = ConcurrencyLimiter(max_concurrent=2)
...     loop = asyncio.get_running_loop()
...     starts = []
...     async def call() -> None:
...         async with limiter.slot():
...             starts.append(loop.time())
...             await asyncio.sleep(1.0)          # the "API call"
...     await asyncio.gather(*(call() for _ in range(5)))
...     return starts
>>> run(main())
[0.0, 0.0, 1.0, 1.0, 2.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..events import Kind, _observers, emit
from ..validation import check_positive
from ..waiting_room import _MUST_WAIT
from ._base import Limiter, LimiterStatistics

__all__ = ["ConcurrencyLimiter", "ConcurrencyStatistics"]


@dataclass(frozen=True, slots=True)
class ConcurrencyStatistics(LimiterStatistics):
    max_concurrent: float
    in_use: float


class ConcurrencyLimiter(Limiter):
    """At most ``max_concurrent`` units held at once; ``release()`` (or leaving ``slot()``) frees them."""

    holds_capacity = True
    level_name = "in_use"

    def __init__(self, max_concurrent: int = 10, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.max_concurrent = int(check_positive("max_concurrent", max_concurrent, integer=True))
        self._in_use: float = 0

    @property
    def max_weight(self) -> float:
        return self.max_concurrent

    @property
    def in_use(self) -> float:
        """Units held right now."""
        return self._in_use

    def release(self, weight: float = 1) -> None:
        """Give back ``weight`` units taken by ``acquire``; the next waiter in line may take them at once."""
        if not weight > 0 or weight > self._in_use:
            raise ValueError(
                f"cannot release {weight!r} from {self.name}: only {self._in_use:g} in use "
                "(released more than was acquired?)"
            )
        self._in_use -= weight
        loop = self._loop
        if loop is not None and _observers():
            now = loop.time()
            emit(now, Kind.RELEASED, self.name, None, weight, {"level": self._in_use})
        self._wake()

    # -- the algorithm: a counter -------------------------------------------------------------------
    def _ready_at(self, weight: float, now: float) -> float:
        # Nothing but a release can make room, so "when" is "never, unless someone releases".
        return now if self._in_use + weight <= self.max_concurrent else math.inf

    def _take(self, weight: float, now: float) -> None:
        self._in_use += weight

    def _take_now(self, weight: float, now: float) -> Any:
        # `_ready_at` and `_take` in one step (the path of every uncontended request).  Exactly undone by
        # `_refund`: a whole number of units added and taken away again.
        in_use = self._in_use + weight
        if in_use > self.max_concurrent:
            return _MUST_WAIT
        self._in_use = in_use
        return None

    def _refund(self, weight: float, receipt: Any, now: float) -> None:
        self._in_use -= weight

    def _level(self, now: float) -> float:
        return self._in_use

    def _at_rest(self, now: float) -> bool:
        return not self._n_waiting and not self._in_use

    def _restart(self) -> None:
        # Slots held on a loop that is gone can never be released.
        self._in_use = 0

    def statistics(self) -> ConcurrencyStatistics:
        return ConcurrencyStatistics(
            **self._common_statistics(), max_concurrent=self.max_concurrent, in_use=self._in_use
        )

    def __repr__(self) -> str:
        return (
            f"<ConcurrencyLimiter {self.name!r} in_use={self._in_use:g}/{self.max_concurrent:g} "
            f"waiting={self._n_waiting} granted={self._granted}>"
        )
