"""SlidingWindowLog: never more than ``max_requests`` in *any* window of ``window_seconds``.

The log remembers when each grant happened.  A new request may go when the grants of the last
``window_seconds`` plus this one stay within the limit; otherwise it waits until enough old entries have
slid out of the window::

    limit 3 per 10 s
    t:   0    2    4             10   12   14
         ●    ●    ●  (full)     ↑ the grant at t=0 leaves the window: the next may go at t=10
         └──────── 10 s ─────────┘

This is the strictest and most exact of the window limiters: at every instant, the weight whose callers
*started* in the last ``window_seconds`` is at most ``max_requests`` -- measured when each caller actually
proceeds, on a real loop too.  (A log stamped when its timer grants lets a crowd of slow-to-resume callers
start closer together than a window; here a grant to a waiter is logged with no expiry until its caller
runs, then stamped with that moment.  See ``limiters/_base.py``.)  The price is memory: one entry per
grant in the window.
Compared with :class:`~throttle_lab.FixedWindow` (which lets 2x the limit through across a boundary) and
:class:`~throttle_lab.SlidingWindowCounter` (two counters, an estimate).

>>> import asyncio
>>> from throttle_lab import SlidingWindowLog, run
>>> async def main() -> list[float]:
...     log = SlidingWindowLog(max_requests=3, window_seconds=10)
...     loop = asyncio.get_running_loop()
...     times = []
...     for _ in range(7):
...         await log.acquire()
...         times.append(loop.time())
...     return times
>>> run(main())
[0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 20.0]
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..validation import check_positive
from ._base import Limiter, LimiterStatistics

__all__ = ["SlidingWindowLog", "SlidingWindowLogStatistics"]


class _Entry:
    """One grant in the log.  Mutable so a refund can shrink exactly the grant it belongs to."""

    __slots__ = ("expires", "weight")

    def __init__(self, expires: float, weight: float) -> None:
        self.expires = expires
        self.weight = weight


@dataclass(frozen=True, slots=True)
class SlidingWindowLogStatistics(LimiterStatistics):
    max_requests: float
    window_seconds: float
    in_window: float


class SlidingWindowLog(Limiter):
    """At most ``max_requests`` units granted in any span of ``window_seconds`` (default: a minute).

    Args:
        max_requests: the limit per window (with weights: units per window, e.g. tokens).
        window_seconds: the window's length.
        name: how events and ``repr`` call it.
        resolution: seconds a queued grant may come late so that one wake-up grants several (default 0:
            each on the dot; see ``throttle_lab/core/waiting_room.py``).
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
        self._log: deque[_Entry] = deque()  # grants in time order, oldest first
        self._used = 0.0  # total weight of the entries in the log

    @property
    def max_weight(self) -> float:
        return self.max_requests

    # -- the algorithm ------------------------------------------------------------------------------
    # Each entry stores its *expiry* (start + window), computed once.  Expiry is tested as
    # `expires <= now`, and the timer is armed for `expires`: the same float both times, so the window
    # limiter never wakes a hair too early and re-arms for the same instant forever.
    # A pending entry (granted, caller not yet running) expires at infinity until it is settled.  Callers
    # usually resume in grant order, so the log stays sorted by expiry; when one resumes out of turn the
    # log is merely conservative: eviction stops at the first live entry, and `_ready_at` waits for the
    # latest expiry among the entries it needs.
    def _evict(self, now: float) -> None:
        log = self._log
        while log and log[0].expires <= now:
            self._used -= log.popleft().weight
        if not log:
            self._used = 0.0  # drop accumulated rounding once the log is empty

    def _ready_at(self, weight: float, now: float) -> float:
        self._evict(now)
        excess = self._used + weight - self.max_requests
        if excess <= 0:
            return now
        # Walk from the oldest entry until enough weight will have expired to make room.  (infinity: a
        # pending entry is in the way; settling it wakes the queue.)
        freed = 0.0
        latest = now
        for entry in self._log:
            freed += entry.weight
            if entry.expires > latest:
                latest = entry.expires
            if freed >= excess:
                return latest
        return math.inf  # unreachable for weight <= max_requests; kept for safety

    def _take_now(self, weight: float, now: float) -> Any:
        # The path of every uncontended request, in one step: room in the window now -> log the grant
        # (`_ready_at` then `_take`, evicting once instead of twice).
        self._evict(now)
        if self._used + weight - self.max_requests <= 0:
            entry = _Entry(now + self.window_seconds, weight)
            self._log.append(entry)
            self._used += weight
            return entry
        return super()._take_now(weight, now)

    def _take(self, weight: float, now: float) -> _Entry:
        return self._book(weight, now + self.window_seconds, now)

    def _take_pending(self, weight: float, now: float) -> _Entry:
        return self._book(weight, math.inf, now)

    def _settle(self, weight: float, receipt: Any, now: float) -> None:
        entry: _Entry = receipt
        if entry.expires == math.inf:
            entry.expires = now + self.window_seconds

    def _book(self, weight: float, expires: float, now: float) -> _Entry:
        self._evict(now)
        entry = _Entry(expires, weight)
        self._log.append(entry)
        self._used += weight
        return entry

    def _drain(self, now: float) -> None:
        # "The budget is spent": fill the window up to the limit as if it had been used at the limit's own
        # pace over the last window -- room comes back evenly from now on, not all at once a window later.
        self._evict(now)
        missing = self.max_requests - self._used
        if missing <= 0:
            return
        pieces = max(1, min(64, math.ceil(missing)))
        step = self.window_seconds / pieces
        filler = [_Entry(now + step * (i + 1), missing / pieces) for i in range(pieces)]
        self._log = deque(sorted([*self._log, *filler], key=lambda entry: entry.expires))
        self._used += missing

    def _at_rest(self, now: float) -> bool:
        self._evict(now)
        return not self._log and not self._n_waiting

    def _refund(self, weight: float, receipt: Any, now: float) -> None:
        entry: _Entry = receipt
        if entry.expires > now:  # still in the window: shrink exactly this grant
            give_back = min(weight, entry.weight)
            entry.weight -= give_back
            self._used -= give_back

    def _adjust(self, receipt: Any, delta: float, now: float) -> None:
        # Book the correction on the grant it belongs to, so it leaves the window when that grant does.
        entry: _Entry = receipt
        if entry.expires > now:
            change = max(delta, -entry.weight)
            entry.weight += change
            self._used += change
        self._wake()

    def _level(self, now: float) -> float:
        self._evict(now)
        return self._used

    def _restart(self) -> None:
        self._log.clear()
        self._used = 0.0

    def in_window(self) -> float:
        """Weight granted within the last ``window_seconds``."""
        now = self._now_for_repr()
        if now is not None:
            self._evict(now)
        return self._used

    def statistics(self) -> SlidingWindowLogStatistics:
        return SlidingWindowLogStatistics(
            **self._common_statistics(),
            max_requests=self.max_requests,
            window_seconds=self.window_seconds,
            in_window=self.in_window(),
        )

    def __repr__(self) -> str:
        return (
            f"<SlidingWindowLog {self.name!r} {self.in_window():g}/{self.max_requests:g} in the last "
            f"{self.window_seconds:g}s waiting={self._n_waiting} granted={self._granted}>"
        )
