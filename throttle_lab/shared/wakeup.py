"""Sleeping until a booked start: wake when the booked Redis instant has certainly come on this loop's clock.

Not ``wait`` seconds from the reply: the reply took a while to arrive, and how long differs from caller to
caller.  The latest the instant can be is where the clock bracket (:class:`~throttle_lab.shared.RedisClock`)
says.  A bracket made of slow round trips (a burst: fifty callers at once, all their replies queued) or
grown old (``_DRIFT``) is wide, and waking at its latest end would make this caller late by its width.  So
a sleeper whose bracket is wide wakes first at the *earliest* the instant can be, looks at Redis's clock
once more, and sleeps out the remainder of the narrowed bracket::

    bracket for the booked start     [──────────── wide ────────────]
    sleeper                          wake ── TIME (0.2 ms) ── [─ narrow ─] wake, go

The look is one bare ``TIME`` round trip, shared by every sleeper waking then (the burst is long over and it
takes a fraction of a millisecond).  A sleeper waits for it no longer than the wide bracket's latest end:
never later than without it.

A caller later than the margin.  Each grant measures how late its caller proceeded (an upper bound):
``Reservation.lateness``, the ``late`` detail of ``granted`` events, and ``statistics().overdue`` (grants
later than the margin; their events say ``overdue: True``).  The callers that proceed within their margin
keep the limit exactly, so a window (a span) at the callers can hold more than the limit only by the
weight of overdue callers in it, never more.  ``overdue`` above zero says the margin is too small for the
load: a caller that burns CPU right after ``acquire`` makes everyone behind it in its process late, and so
does a machine with more busy processes than cores.  Raise the margin to cover it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

from .clock import RedisClock
from .faults import _CHECK_ERRORS

__all__ = ["Wakeup"]

# A clock bracket narrower than this share of the margin (or than _FINE s) is not worth a look at Redis's
# clock before waking: its width is lateness the caller pays.
_FINE_SHARE = 0.1
_FINE = 0.000_25  # a quiet loopback round trip takes ~0.1-0.3 ms
# At most one clock check per this many seconds (a loaded machine makes checks slow, and slow checks do
# not narrow the bracket: don't let each sleeper send another).
_CHECK_EVERY = 0.02


class Wakeup:
    """Where Redis's clock sits on one event loop's, how that loop's callers wake on it, how late they were.

    Args:
        read_time: one ``TIME`` round trip: Redis's clock in microseconds.
    """

    __slots__ = ("_check", "_checked_at", "_loop", "_read_time", "clock", "max_lateness", "overdue")

    def __init__(self, read_time: Callable[[], Awaitable[int]]) -> None:
        self._read_time = read_time
        self._loop: asyncio.AbstractEventLoop | None = None
        self.clock = RedisClock()  # every round trip narrows it (see RedisClock.observe)
        self._check: asyncio.Task[None] | None = None  # the clock check in flight
        self._checked_at = -math.inf
        # how late callers proceeded, over the limiter's life (every loop)
        self.overdue = 0  # later than the margin
        self.max_lateness = 0.0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Another loop, another clock: start afresh."""
        self._loop = loop
        self.clock = RedisClock()
        self._check = None
        self._checked_at = -math.inf

    async def sleep_until(self, at_us: int, margin: float) -> None:
        """Sleep until Redis instant ``at_us`` has certainly come on this loop's clock (see the module
        docstring); a bracket narrower than a tenth of ``margin`` is not worth a look at Redis's clock."""
        loop = self._loop
        assert loop is not None
        now = loop.time()
        earliest = self.clock.earliest(at_us, now)
        if earliest > now and self.clock.width(earliest) > max(_FINE, _FINE_SHARE * margin):
            await asyncio.sleep(earliest - now)
            check = self._check_clock()
            if check is not None:
                deadline = self.clock.latest(at_us, loop.time())
                # asyncio.wait, not wait_for: a sleeper that gives up (or is cancelled) leaves the shared
                # check running for the others.
                await asyncio.wait({check}, timeout=max(0.0, deadline - loop.time()))
        now = loop.time()
        latest = self.clock.latest(at_us, now)
        if latest > now:
            await asyncio.sleep(latest - now)

    def lateness(self, at_us: int, now: float, margin: float) -> float:
        """How long after booked start ``at_us`` a caller proceeding at loop time ``now`` is, at most; count
        it overdue if that is more than ``margin``.  (At most: the bracket's low end is the earliest the
        booked start can have been on our clock.)"""
        lateness = max(0.0, now - self.clock.earliest(at_us, now))
        self.max_lateness = max(self.max_lateness, lateness)
        if lateness > margin:
            self.overdue += 1
        return lateness

    def _check_clock(self) -> asyncio.Task[None] | None:
        """The clock check in flight, or a new one; ``None`` if one ran moments ago (see ``_CHECK_EVERY``)."""
        assert self._loop is not None
        if self._check is None and self._loop.time() - self._checked_at >= _CHECK_EVERY:
            self._checked_at = self._loop.time()
            self._check = self._loop.create_task(self._time_round_trip())
        return self._check

    async def _time_round_trip(self) -> None:
        """One bare ``TIME`` round trip into the clock bracket.  Best effort: an error just ends it (the
        next booking meets the same error and applies the fault policy)."""
        loop = self._loop
        assert loop is not None
        try:
            sent = loop.time()
            redis_now_us = await self._read_time()
            self.clock.observe(sent, loop.time(), redis_now_us)
        except _CHECK_ERRORS:
            pass
        finally:
            self._check = None

    async def aclose(self) -> None:
        """Stop a clock check still in flight."""
        if self._check is not None:
            self._check.cancel()
            await asyncio.gather(self._check, return_exceptions=True)
            self._check = None
