"""SlidingWindowCounter: a sliding window estimated from two fixed-window counters.

Keep the count of the current fixed window and of the previous one.  Assume the previous window's
requests were spread evenly, and weigh them by how much of that window still overlaps the sliding one::

    limit 10 per 60 s, now = 15 s into the current window
    previous window: 8 grants   current window: 4 grants
    estimate = 8 x (60 - 15)/60 + 4 = 8 x 0.75 + 4 = 10  -> full until the estimate drops

Two numbers instead of a log entry per grant, and no 2x burst at the boundary.  It is an *estimate*: if
the previous window's grants were bunched at its end, the true count in some 60 s span can exceed the
limit (by at most the previous window's count times the fraction elapsed).  Within each fixed window it
never grants more than ``max_requests``.  Compared with :class:`~throttle_lab.SlidingWindowLog` (exact,
memory per grant) and :class:`~throttle_lab.FixedWindow` (one counter, bursty at the edges).

>>> import asyncio
>>> from throttle_lab import SlidingWindowCounter, run
>>> async def main() -> list[float]:
...     limiter = SlidingWindowCounter(max_requests=4, window_seconds=10)
...     loop = asyncio.get_running_loop()
...     times = []
...     for _ in range(6):
...         await limiter.acquire()
...         times.append(loop.time())
...     return times
>>> run(main())
[0.0, 0.0, 0.0, 0.0, 12.5, 15.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..validation import check_positive
from ._base import Limiter, LimiterStatistics

__all__ = ["SlidingWindowCounter", "SlidingWindowCounterStatistics"]


@dataclass(frozen=True, slots=True)
class SlidingWindowCounterStatistics(LimiterStatistics):
    max_requests: float
    window_seconds: float
    estimate: float
    current: float
    previous: float


class SlidingWindowCounter(Limiter):
    """At most ``max_requests`` units per sliding ``window_seconds``, estimated from two counters.

    ``resolution``: seconds a queued grant may come late so that one wake-up grants several (default 0;
    see ``throttle_lab/core/waiting_room.py``).
    """

    level_name = "estimate"

    def __init__(
        self,
        max_requests: float = 60,
        window_seconds: float = 60.0,
        *,
        name: str | None = None,
        resolution: float = 0.0,
    ) -> None:
        super().__init__(name=name, resolution=resolution)
        self.max_requests = check_positive("max_requests", max_requests)
        self.window_seconds = check_positive("window_seconds", window_seconds)
        self._start = -math.inf  # when the current fixed window began
        self._current = 0.0
        self._previous = 0.0
        self._pending = 0.0  # granted to waiters that have not resumed yet

    @property
    def max_weight(self) -> float:
        return self.max_requests

    # -- the algorithm ------------------------------------------------------------------------------
    def _roll(self, now: float) -> None:
        w = self.window_seconds
        end = self._start + w
        if end <= now:
            # Moving on by exactly one window keeps the current count as "previous"; by more, both are 0.
            self._previous = self._current if end + w > now else 0.0
            # Grants whose callers have not started yet may start in this window: they count here too.
            self._current = self._pending
            start = math.floor(now / w) * w
            if start + w <= now:  # floor() of a value a hair under a boundary
                start += w
            self._start = start

    def _ready_at(self, weight: float, now: float) -> float:
        self._roll(now)
        w = self.window_seconds
        room = self.max_requests - self._current - weight  # what the previous window may still weigh
        if room < 0:
            return self._start + w  # even a forgotten previous window won't do: wait for the next one
        if self._previous <= room:
            return now
        # previous x (1 - (t - start)/w) <= room  <=>  t >= start + w x (1 - room/previous)
        due = self._start + w * (1.0 - room / self._previous)
        return min(max(due, now), self._start + w)

    def _take(self, weight: float, now: float) -> float:
        self._roll(now)
        self._current += weight
        return self._start

    def _take_pending(self, weight: float, now: float) -> float:
        receipt = self._take(weight, now)
        self._pending += weight
        return receipt

    def _settle(self, weight: float, receipt: Any, now: float) -> None:
        self._roll(now)  # a window that ended meanwhile carried this grant into the next one
        self._pending = max(0.0, self._pending - weight)

    def _refund(self, weight: float, receipt: Any, now: float) -> None:
        if receipt == self._start:
            self._current = max(0.0, self._current - weight)

    def _drain(self, now: float) -> None:
        # Full from now; as a previous window it then thins out evenly: room returns at the limit's pace.
        self._roll(now)
        self._current = max(self._current, self.max_requests)

    def _at_rest(self, now: float) -> bool:
        self._roll(now)
        return not self._n_waiting and not self._pending and not self._current and not self._previous

    def _estimate(self, now: float) -> float:
        self._roll(now)
        elapsed = (now - self._start) / self.window_seconds
        return self._previous * (1.0 - elapsed) + self._current

    def _level(self, now: float) -> float:
        return self._estimate(now)

    def _restart(self) -> None:
        self._start = -math.inf
        self._current = 0.0
        self._previous = 0.0
        self._pending = 0.0  # granted to waiters that have not resumed yet

    def statistics(self) -> SlidingWindowCounterStatistics:
        now = self._now_for_repr()
        estimate = self._current if now is None else self._estimate(now)
        return SlidingWindowCounterStatistics(
            **self._common_statistics(),
            max_requests=self.max_requests,
            window_seconds=self.window_seconds,
            estimate=estimate,
            current=self._current,
            previous=self._previous,
        )

    def __repr__(self) -> str:
        now = self._now_for_repr()
        estimate = self._current if now is None else self._estimate(now)
        return (
            f"<SlidingWindowCounter {self.name!r} ~{estimate:.2f}/{self.max_requests:g} per "
            f"{self.window_seconds:g}s (current {self._current:g}, previous {self._previous:g}) "
            f"waiting={self._n_waiting} granted={self._granted}>"
        )
