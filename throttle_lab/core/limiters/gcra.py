"""GCRA: the Generic Cell Rate Algorithm -- a token bucket that stores one number.

GCRA keeps a single timestamp, the *theoretical arrival time* (TAT): when the next request would be due
if everyone so far had arrived perfectly spaced, one every ``emission_interval = 1 / rate`` seconds.
A request may go early by at most ``burst`` intervals::

    emission interval T = 1/rate             burst = 3  ->  may run up to 3·T ahead of schedule
    TAT ──────────────────────────────┐
    t:  0    T    2T   3T   4T   5T   │
        ├────┼────┼────┼────┼────┤    │      a request of weight w is allowed at `now` if
        ●●●  ·    ●    ●    ●         │          TAT + w·T - burst·T <= now
        burst then one per T          │      and then TAT = max(TAT, now) + w·T

Because the next due time is computed from the *ideal timeline* (the TAT) and not from "now + interval",
timer jitter never compounds: a grant that fires 3 ms late does not push every later grant 3 ms back.

Two refinements keep the promise honest outside a perfect world.  A grant to a waiter whose caller has not
resumed yet is *pending*: the TAT may not fall behind ``now`` by its share, so its unused credit does not
pile up before the caller runs (the bound ``burst + rate * T`` holds at the callers).  And a rate change
rescales the backlog: the TAT stores *seconds* of backlog, ``(TAT - now) * rate`` of them are *units*, and
it is the units that must survive the change -- otherwise cutting 10/s to 1/s right after a burst of 10 at
10/s would let 9 more through at once, and raising 1/s to 10/s would stall the next grant for 9 s.

It admits exactly what :class:`~throttle_lab.TokenBucket` with the same rate and ``capacity=burst``
admits -- the two are the same rule in different clothes -- but needs no refill arithmetic, which is why
Redis-based limiters and many API gateways use it.

>>> import asyncio
>>> from throttle_lab import GCRA, run
>>> async def main() -> list[float]:
...     limiter = GCRA(rate=4.0, burst=2)
...     loop = asyncio.get_running_loop()
...     times = []
...     for _ in range(5):
...         await limiter.acquire()
...         times.append(loop.time())
...     return times
>>> run(main())
[0.0, 0.0, 0.25, 0.5, 0.75]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..validation import check_positive, resolve_rate
from ..waiting_room import _MUST_WAIT
from ._base import Limiter, LimiterStatistics

__all__ = ["GCRA", "GCRAStatistics"]


@dataclass(frozen=True, slots=True)
class GCRAStatistics(LimiterStatistics):
    rate: float
    burst: float
    theoretical_arrival: float


class GCRA(Limiter):
    """Requests spaced ``1/rate`` seconds apart on an ideal timeline, up to ``burst`` ahead of it.

    Args:
        rate: units per second.  Give this *or* ``per_minute``.
        burst: how many units may go back to back (also the heaviest single request).  Default 1: no
            burst, perfectly even spacing.
        per_minute: units per minute.
        name: how events and ``repr`` call it.
        resolution: seconds a queued grant may come late so that one wake-up grants several (default 0:
            each on the dot; see ``throttle_lab/core/waiting_room.py``).
    """

    level_name = "tokens"

    def __init__(
        self,
        rate: float | None = None,
        burst: float = 1,
        *,
        per_minute: float | None = None,
        name: str | None = None,
        resolution: float = 0.0,
    ) -> None:
        super().__init__(name=name, resolution=resolution)
        self.rate = resolve_rate(rate, per_minute)
        self.burst = check_positive("burst", burst)
        self._tat = -math.inf  # theoretical arrival time; -inf: nothing sent yet, a full burst is free
        self._pending = 0.0  # units granted to waiters that have not resumed yet

    @property
    def emission_interval(self) -> float:
        """Seconds between two units at the sustained rate."""
        return 1.0 / self.rate

    @property
    def max_weight(self) -> float:
        return self.burst

    def set_rate(self, rate: float) -> None:
        """Change the rate from now on, keeping the backlog in *units*: a limiter that was empty stays empty
        and refills at the new rate, one that had room keeps that room."""
        rate = check_positive("rate", rate)
        loop = self._loop
        if loop is not None and self._tat != -math.inf:
            now = loop.time()
            tat = self._effective_tat(now)
            if tat > now:
                self._tat = now + (tat - now) * self.rate / rate
        self.rate = rate
        self._wake()

    # -- the algorithm: one timestamp ---------------------------------------------------------------
    # A pending grant keeps the TAT at least `pending / rate` ahead of now: read the TAT through
    # `_effective_tat` (a plain max while nothing is pending).
    def _effective_tat(self, now: float) -> float:
        return max(self._tat, now + self._pending / self.rate) if self._pending else self._tat

    def _ready_at(self, weight: float, now: float) -> float:
        # The earliest moment this request fits within the burst tolerance.
        if self._pending + weight > self.burst:
            return math.inf  # pending grants fill the tolerance: settling one wakes the queue
        return self._tat + (weight - self.burst) / self.rate

    def _take(self, weight: float, now: float) -> None:
        # max(effective TAT, now) + w·T, spelled out: this runs on every grant, and a call to
        # `_effective_tat` and to `max` cost more than the arithmetic.
        tat = self._tat if not self._pending else self._effective_tat(now)
        self._tat = (tat if tat > now else now) + weight / self.rate

    def _take_now(self, weight: float, now: float) -> Any:
        # `_ready_at` and `_take` in one step, with their very expressions: the path of every uncontended
        # request.  With grants pending, the general way.
        tat = self._tat
        if self._pending:
            return super()._take_now(weight, now)
        if tat + (weight - self.burst) / self.rate > now:
            return _MUST_WAIT
        self._tat = (tat if tat > now else now) + weight / self.rate
        return None

    def _take_pending(self, weight: float, now: float) -> None:
        self._take(weight, now)
        self._pending += weight

    def _settle(self, weight: float, receipt: Any, now: float) -> None:
        self._tat = self._effective_tat(now)  # the credit the pending grant held back is gone for good
        self._pending = max(0.0, self._pending - weight)

    def _refund(self, weight: float, receipt: Any, now: float) -> None:
        # Un-book the units.  If the TAT falls into the past, max(TAT, now) at the next take means no
        # extra burst appears from nowhere.
        self._tat -= weight / self.rate

    def _drain(self, now: float) -> None:
        # Empty: the whole burst tolerance is used as of now.
        self._tat = max(self._effective_tat(now), now + self.burst / self.rate)

    def _at_rest(self, now: float) -> bool:
        return not self._n_waiting and not self._pending and self._tat <= now

    def _level(self, now: float) -> float:
        # Expressed as a token bucket would say it: units that could go right now.
        return max(0.0, min(self.burst, self.burst - (self._effective_tat(now) - now) * self.rate))

    def _restart(self) -> None:
        self._tat = -math.inf
        self._pending = 0.0

    def statistics(self) -> GCRAStatistics:
        return GCRAStatistics(
            **self._common_statistics(), rate=self.rate, burst=self.burst, theoretical_arrival=self._tat
        )

    def __repr__(self) -> str:
        now = self._now_for_repr()
        level = self.burst if now is None else self._level(now)
        tat = "none yet" if self._tat == -math.inf else f"{self._tat:.3f}"
        return (
            f"<GCRA {self.name!r} rate={self.rate:g}/s ({self.rate * 60:g}/min) burst={self.burst:g} "
            f"available={level:.2f} tat={tat} waiting={self._n_waiting} granted={self._granted}>"
        )
