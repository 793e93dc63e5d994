"""Where Redis's clock sits on this event loop's clock: a bracket that every round trip narrows.

A shared limiter books on Redis's clock (the script reads ``TIME``) and its callers sleep on their own
loop's clock.  :class:`RedisClock` is the translation between the two, and says how sure it is.  It needs
no Redis connection of its own: it learns only from round trips that happen anyway (see
:mod:`throttle_lab.shared.wakeup` for the one extra look it may take before a caller wakes).
"""

from __future__ import annotations

import math

__all__ = ["RedisClock"]

# How fast two hosts' clocks may drift apart (500 ppm: the fastest NTP slews a clock).  On one host Redis's
# clock and the loop's tick together (Linux slews both alike); across hosts this keeps an old round trip from
# placing Redis's clock too early on ours.
_DRIFT = 500e-6


class RedisClock:
    """Where Redis's clock sits on this event loop's clock, bracketed by round trips.

    The script reads Redis's clock (``now``) at some instant between sending the request (loop time
    ``sent``) and reading the reply (``received``), so ``loop time = Redis time + offset`` for an offset in
    ``[sent - now, received - now]``.  The offset is the same for every round trip (two clocks ticking at
    one rate), so each round trip narrows the bracket; one quick round trip pins it to within its length::

        round trip 1   [──────── offset somewhere in here ────────]      (a slow reply: 4 ms)
        round trip 2                [── here ──]                        (a quick one: 0.1 ms)
        bracket                     [──────────]                        both are true: the overlap

    A caller sleeps until its booked start placed at the bracket's **high** end: never before the true
    instant, and late only by the bracket's width.  "Wait seconds from the reply" instead places it at
    the high end of *its own* round trip -- late by however long that reply took, different for every
    caller.  The **low** end bounds how late a caller really was (``lateness``).

    Clocks drift (across hosts) or jump (Redis's ``TIME`` is its wall clock; an operator or NTP may step
    it).  The bracket widens by ``_DRIFT`` per second of age, so an old quick round trip never claims more
    than it can know, and a round trip that contradicts the bracket (no overlap: the clock jumped) starts
    it afresh from that round trip alone.
    """

    __slots__ = ("_high", "_low")

    def __init__(self) -> None:
        # The bracket at loop time t is [_low - _DRIFT * t, _high + _DRIFT * t]: widening at the drift
        # rate, stored without t so that intersecting two brackets is one max and one min.
        self._low = -math.inf
        self._high = math.inf

    def observe(self, sent: float, received: float, redis_now_us: int) -> None:
        """Narrow the bracket with one round trip: sent and received on the loop's clock, Redis's ``now``."""
        redis_now = redis_now_us / 1e6
        low = sent - redis_now + _DRIFT * sent
        high = received - redis_now - _DRIFT * received
        if max(low, self._low) - _DRIFT * received > min(high, self._high) + _DRIFT * received:
            self._low, self._high = low, high  # contradicts what we knew: the clock jumped
        else:
            self._low, self._high = max(low, self._low), min(high, self._high)

    def latest(self, redis_us: int, now: float) -> float:
        """The latest loop time that Redis instant ``redis_us`` can be (asked at loop time ``now``)."""
        return redis_us / 1e6 + self._high + _DRIFT * now

    def earliest(self, redis_us: int, now: float) -> float:
        """The earliest loop time that Redis instant ``redis_us`` can be (asked at loop time ``now``)."""
        return redis_us / 1e6 + self._low - _DRIFT * now

    def width(self, now: float) -> float:
        """How precisely the offset is known right now, seconds (``inf`` before the first round trip)."""
        return self._high - self._low + 2 * _DRIFT * now
