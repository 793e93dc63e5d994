"""FixedWindow: a counter that resets on the clock -- simple, cheap, and bursty at the edges.

Time is cut into windows ``[0, W), [W, 2W), ...`` of the loop's clock.  Each window admits up to
``max_requests``; a request that does not fit waits for the next window to begin::

    limit 3 per 10 s
    window:   [0 ─────────── 10)[10 ────────── 20)
    grants:            ●●●      ●●●
                       ↑ t=9    ↑ t=10: 6 grants within 1 second, though "3 per 10 s"

That is the *boundary burst*: across the edge between two windows, up to twice the limit can pass within
a very short span.  :class:`~throttle_lab.SlidingWindowLog` forbids it exactly (with memory per grant);
:class:`~throttle_lab.SlidingWindowCounter` mostly forbids it (with two counters).

>>> import asyncio
>>> from throttle_lab import FixedWindow, run
>>> async def main() -> list[float]:
...     limiter = FixedWindow(max_requests=2, window_seconds=10)
...     loop = asyncio.get_running_loop()
...     await asyncio.sleep(9)
...     times = []
...     for _ in range(5):
...         await limiter.acquire()
...         times.append(loop.time())
...     return times
>>> run(main())
[9.0, 9.0, 10.0, 10.0, 20.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..validation import check_positive
from ._base import Limiter, LimiterStatistics

__all__ = ["FixedWindow", "FixedWindowStatistics"]


@dataclass(frozen=True, slots=True)
class FixedWindowStatistics(LimiterStatistics):
    max_requests: float
    window_seconds: float
    in_window: float
    window_ends: float


class FixedWindow(Limiter):
    """At most ``max_requests`` units per clock-aligned window of ``window_seconds``.

    Windows are aligned to multiples of ``window_seconds`` on the loop's clock (on a virtual loop, which
    starts at 0, a 60 s window is every whole minute).

    ``resolution``: seconds a queued grant may come late so that one wake-up grants several (default 0;
    see ``throttle_lab/core/waiting_room.py``).
    """

    level_name = "in_window"

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
        self._window_end = -math.inf  # when the current window closes
        self._count = 0.0  # weight granted in the current window
        self._pending = 0.0  # granted to waiters that have not resumed yet

    @property
    def max_weight(self) -> float:
        return self.max_requests

    # -- the algorithm ------------------------------------------------------------------------------
    def _roll(self, now: float) -> None:
        # The timer is armed for `_window_end` and the roll tests `_window_end <= now`: the same float.
        if self._window_end <= now:
            end = (math.floor(now / self.window_seconds) + 1) * self.window_seconds
            if end <= now:  # floor() of a value a hair under a boundary
                end += self.window_seconds
            self._window_end = end
            # Grants whose callers have not started yet may start in this window: they count here too.
            self._count = self._pending

    def _ready_at(self, weight: float, now: float) -> float:
        self._roll(now)
        if self._count + weight <= self.max_requests:
            return now
        return self._window_end

    def _take(self, weight: float, now: float) -> float:
        self._roll(now)
        self._count += weight
        return self._window_end  # the receipt: which window was charged

    def _take_pending(self, weight: float, now: float) -> float:
        receipt = self._take(weight, now)
        self._pending += weight
        return receipt

    def _settle(self, weight: float, receipt: Any, now: float) -> None:
        self._roll(now)  # a window that ended meanwhile carried this grant into the next one
        self._pending = max(0.0, self._pending - weight)

    def _refund(self, weight: float, receipt: Any, now: float) -> None:
        if receipt == self._window_end:  # a past window's count is gone already
            self._count = max(0.0, self._count - weight)

    def _drain(self, now: float) -> None:
        self._roll(now)
        self._count = max(self._count, self.max_requests)

    def _at_rest(self, now: float) -> bool:
        self._roll(now)
        return not self._n_waiting and not self._pending and not self._count

    def _level(self, now: float) -> float:
        self._roll(now)
        return self._count

    def _restart(self) -> None:
        self._window_end = -math.inf
        self._count = 0.0
        self._pending = 0.0

    def statistics(self) -> FixedWindowStatistics:
        now = self._now_for_repr()
        if now is not None:
            self._roll(now)
        return FixedWindowStatistics(
            **self._common_statistics(),
            max_requests=self.max_requests,
            window_seconds=self.window_seconds,
            in_window=self._count,
            window_ends=self._window_end,
        )

    def __repr__(self) -> str:
        now = self._now_for_repr()
        if now is not None:
            self._roll(now)
        return (
            f"<FixedWindow {self.name!r} {self._count:g}/{self.max_requests:g} this window "
            f"(ends {self._window_end:g}) waiting={self._n_waiting} granted={self._granted}>"
        )
