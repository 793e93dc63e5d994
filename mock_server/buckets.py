"""The continuously refilling bucket a provider uses, and Go-style durations for its headers.

Picture a water tank of ``capacity`` litres with a tap that refills it at ``rate`` litres per second and
never overflows. Each request scoops out its cost; a request that finds too little water is refused.
Unlike a fixed window ("60 per minute, counter reset at :00"), the tank never resets all at once: it is
always refilling, which is why OpenAI's headers say "limit 5000 RPM, 1 used → full again in ``12ms``"
(60 s / 5000).

We store one number instead of a level: ``full_at``, the loop time at which the tank will be full again
(the "theoretical arrival time" of GCRA). The level follows from it::

    level(now) = capacity - (full_at - now) * rate        (capped at capacity once full_at <= now)

Taking ``n`` pushes ``full_at`` later by ``n / rate``; refilling needs no bookkeeping at all. And the
question "may ``n`` go now?" becomes a deadline: ``n`` fits once ``full_at - (capacity - n) / rate <= now``.
"""

from __future__ import annotations

import math

from .validation import check_number

__all__ = ["TOLERANCE", "RefillingBucket", "ceil_ms", "format_duration"]

TOLERANCE = 1e-9
"""Seconds of slack when testing a deadline. A client that paces itself perfectly computes its send times
with different float arithmetic than ours; without a little slack, ``59.99999999999999`` vs ``60.0`` would
turn a perfectly paced request into a 429."""


class RefillingBucket:
    """A bucket of ``capacity`` units refilling continuously at ``rate`` units per second.

    Starts full at loop time ``now``. All methods take the current loop time explicitly, so the bucket
    itself never reads a clock — it works unchanged on real and on virtual time.
    """

    __slots__ = ("_full_at", "capacity", "rate")

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = check_number("capacity", capacity, above=True)
        self.rate = check_number("rate", rate, above=True)
        self._full_at = now

    def level(self, now: float) -> float:
        """Units available at ``now`` (negative while in debt)."""
        if self._full_at <= now:
            return self.capacity
        return self.capacity - (self._full_at - now) * self.rate

    def remaining(self, now: float) -> int:
        """Whole units available at ``now``, never negative (what ``x-ratelimit-remaining-*`` shows)."""
        return max(0, math.floor(self.level(now) + TOLERANCE))

    def used(self, now: float) -> float:
        """Units currently taken out and not yet refilled (may exceed ``capacity`` while in debt)."""
        return self.capacity - self.level(now)

    def time_until_full(self, now: float) -> float:
        """Seconds until the bucket is full again (``x-ratelimit-reset-*``)."""
        return max(0.0, self._full_at - now)

    def _due(self, amount: float) -> float:
        # The loop time at which ``amount`` fits: the level then is exactly ``amount``.
        return self._full_at - (self.capacity - amount) / self.rate

    def fits(self, amount: float, now: float) -> bool:
        """Whether ``amount`` can be taken at ``now`` without going below zero."""
        return self._due(amount) <= now + TOLERANCE

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds from ``now`` until ``amount`` fits (0 if it fits already)."""
        due = self._due(amount)
        return 0.0 if due <= now + TOLERANCE else due - now

    def take(self, amount: float, now: float, *, floor: float = 0.0) -> None:
        """Take ``amount`` unconditionally, letting the level fall to ``floor`` at the lowest.

        Admission calls :meth:`fits` first and takes with the default floor of 0. Counting a refused
        request passes ``floor=-capacity``: debt is allowed, but bounded, so a client that hammers the
        endpoint is held off for at most two bucket-times, not forever.
        """
        start = self._full_at if self._full_at > now else now
        full_at = start + amount / self.rate
        latest = now + (self.capacity - floor) / self.rate
        self._full_at = full_at if full_at < latest else latest

    def give_back(self, amount: float, now: float) -> None:
        """Return ``amount`` units taken earlier (never filling past full): a charge reconciled down.

        Anthropic charges ``max_tokens`` against output tokens at admission and adjusts it at the end;
        giving back the unused part moves ``full_at`` earlier by ``amount / rate``.
        """
        if amount <= 0 or self._full_at <= now:
            return
        self._full_at = max(now, self._full_at - amount / self.rate)

    def resize(self, capacity: float, rate: float, now: float) -> None:
        """Change capacity and rate at ``now``, keeping the units currently used (a brownout).

        Usage carries over, so a bucket that was 100 % used under the old limit is still owed those units
        under the new one — possibly more than the new capacity, which is debt, bounded at ``-capacity``.
        """
        check_number("capacity", capacity, above=True)
        check_number("rate", rate, above=True)
        used = max(0.0, self.used(now))
        self.capacity = capacity
        self.rate = rate
        self._full_at = now + min(used, 2 * capacity) / rate

    def __repr__(self) -> str:
        return (
            f"RefillingBucket(capacity={self.capacity:g}, rate={self.rate:g}/s, full_at={self._full_at:.6f})"
        )


def ceil_ms(seconds: float) -> int:
    """Whole milliseconds, rounded up, after rounding away float noise below a microsecond.

    ``60 / 5000`` is ``0.012000000000000002`` in floating point; a plain ceiling would say 13 ms.
    """
    if seconds <= 0:
        return 0
    micros = round(seconds * 1_000_000)
    return -(-micros // 1000)


def format_duration(seconds: float) -> str:
    """Format a wait like Go's ``time.Duration.String()``, to the millisecond (rounded up).

    This is the format of OpenAI's ``x-ratelimit-reset-*`` headers:

    >>> [format_duration(s) for s in (0, 0.012, 1, 1.5, 360, 3723.5)]
    ['0s', '12ms', '1s', '1.5s', '6m0s', '1h2m3.5s']
    """
    ms = ceil_ms(seconds)
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, frac = divmod(rest, 1000)
    secs = f"{whole}.{frac:03d}".rstrip("0").rstrip(".") if frac else str(whole)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
