"""TokenBucket: a steady rate with room for bursts.

A bucket holds up to ``capacity`` tokens and refills continuously at ``rate`` tokens per second.  A request
of weight ``w`` takes ``w`` tokens; if they are not there, it waits (in line) until they have dripped in::

    capacity 10 ┤▇▇▇▇▇▇▇▇▇▇            full: a burst of 10 goes at once
                │          ▁▂▃ ...      then one more every 1/rate seconds
       tokens 0 ┼──────────────────> t

Two numbers, two different promises:

* ``rate`` is the long-run average: over any stretch of ``T`` seconds at most ``capacity + rate * T``
  units are granted -- counted when the callers actually proceed, on a real loop too (tokens granted to a
  waiter that has not resumed yet do not start refilling until it runs; see ``limiters/_base.py``).
* ``capacity`` is the burst.  A bucket stated as "100 per second, burst 100" admits about **199** in its
  first second (100 at once, then 99 more as it refills).  If you need "never more than 100 in any
  second", use :class:`~throttle_lab.SlidingWindowLog`.

``initial_tokens`` says how full the bucket is the first time it is used (default: full, like a provider's
bucket at the start of a minute).  Providers' per-minute limits behave like a bucket whose capacity is the
per-minute limit, so ``TokenBucket(per_minute=60, capacity=60)`` mirrors "60 RPM".

Compared with :class:`~throttle_lab.GCRA`: the same admission rule, stated as "tokens in a bucket" instead
of "the next time a request is due".  Compared with the article's polling bucket
(:class:`throttle_lab.lab.naive.PollingTokenBucket`): no ``sleep`` loop, strict arrival order, and a request
heavier than the bucket raises instead of hanging forever.

>>> import asyncio
>>> from throttle_lab import TokenBucket, run
>>> async def main() -> list[float]:
...     bucket = TokenBucket(rate=2.0, capacity=3)       # 2 per second, bursts of 3
...     loop = asyncio.get_running_loop()
...     times = []
...     for _ in range(6):
...         await bucket.acquire()
...         times.append(loop.time())
...     return times
>>> run(main())
[0.0, 0.0, 0.0, 0.5, 1.0, 1.5]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..validation import check_positive, resolve_rate
from ._base import Limiter, LimiterStatistics

__all__ = ["TokenBucket", "TokenBucketStatistics"]


@dataclass(frozen=True, slots=True)
class TokenBucketStatistics(LimiterStatistics):
    rate: float
    capacity: float
    tokens: float


class TokenBucket(Limiter):
    """Tokens refill at ``rate`` per second (or ``per_minute``) up to ``capacity``; a grant spends them.

    Args:
        rate: tokens added per second.  Give this *or* ``per_minute``.
        capacity: the most tokens the bucket holds: the largest burst, and the heaviest single request.
        per_minute: tokens added per minute (``per_minute=60`` is ``rate=1.0``).
        initial_tokens: tokens in the bucket when first used (default ``capacity``: full).
        name: how events and ``repr`` call it.
        resolution: seconds a queued grant may come late so that one wake-up grants several (default 0:
            each on the dot; see ``throttle_lab/core/waiting_room.py``).
    """

    level_name = "tokens"

    def __init__(
        self,
        rate: float | None = None,
        capacity: float = 1,
        *,
        per_minute: float | None = None,
        initial_tokens: float | None = None,
        name: str | None = None,
        resolution: float = 0.0,
    ) -> None:
        super().__init__(name=name, resolution=resolution)
        self.rate = resolve_rate(rate, per_minute)
        self.capacity = check_positive("capacity", capacity)
        if initial_tokens is None:
            initial_tokens = self.capacity
        elif not (isinstance(initial_tokens, int | float) and 0 <= initial_tokens <= self.capacity):
            raise ValueError(
                f"initial_tokens must be between 0 and capacity ({self.capacity:g}), got {initial_tokens!r}"
            )
        self.initial_tokens = float(initial_tokens)
        self._tokens = self.initial_tokens
        self._last: float | None = None  # loop time of the last refill; None until first use
        self._pending = 0.0  # tokens granted to waiters that have not resumed yet

    @property
    def max_weight(self) -> float:
        return self.capacity

    def set_rate(self, rate: float) -> None:
        """Change the refill rate from now on.

        Tokens already earned are kept; adaptive throttles call this.
        """
        check_positive("rate", rate)
        loop = self._loop
        if loop is not None and self._last is not None:
            self._rebase(loop.time())
        self.rate = rate
        self._wake()

    def tokens(self) -> float:
        """Tokens in the bucket right now (refill included)."""
        now = self._now_for_repr()
        return self._tokens if now is None else self._tokens_at(now)

    # -- the algorithm ------------------------------------------------------------------------------
    # State: `_tokens` tokens at loop time `_last` (the anchor).  Reading the level is pure arithmetic on
    # the anchor; only taking, refunding and rate changes move it.  That keeps the moment a timer was
    # armed for and the moment the check passes the very same float.
    # Pending grants (waiters granted, not yet running) lower the ceiling the bucket refills to: their
    # tokens are spent, but the caller has not used them yet, so the bucket must not earn them back
    # early.  Proof sketch: the bucket then never holds more than a bucket charged at the callers' own
    # start times would, so the `capacity + rate * T` bound holds at the callers.
    def _tokens_at(self, now: float) -> float:
        if self._last is None or now <= self._last:
            return self._tokens
        return min(self.capacity - self._pending, self._tokens + (now - self._last) * self.rate)

    def _rebase(self, now: float) -> None:
        self._tokens = self._tokens_at(now)
        self._last = now

    def _ready_at(self, weight: float, now: float) -> float:
        if self._last is None:
            self._last = now  # first use: the bucket starts with `initial_tokens` now
        if self._tokens_at(now) >= weight:
            return now
        if weight > self.capacity - self._pending:
            return math.inf  # only a pending grant settling can make room: `_settle` wakes the queue
        # When the missing tokens will have dripped in, measured from the anchor.  At that moment
        # `_tokens_at` may still say a hair less than `weight` (rounding), but this expression gives the
        # same instant again, so the grant happens exactly then.
        return self._last + (weight - self._tokens) / self.rate

    def _take(self, weight: float, now: float) -> None:
        # Rebase and spend in one step (this runs on every grant).  Granted on time, rounding may leave the
        # balance a hair below zero; it refills from there.
        self._tokens = self._tokens_at(now) - weight
        self._last = now

    def _take_now(self, weight: float, now: float) -> Any:
        # The path of every uncontended request, in one step: enough tokens now -> spend them (what
        # `_ready_at` then `_take` would do).  Anything else -- first use, or too few tokens, where
        # `_ready_at` may still round to "now" -- goes the general way.
        last = self._last
        if last is not None:
            # `_tokens_at(now)`, spelled out (the same expression, so the same float).
            tokens = self._tokens
            if now > last:
                refilled = tokens + (now - last) * self.rate
                ceiling = self.capacity - self._pending
                tokens = refilled if refilled < ceiling else ceiling
            if tokens >= weight:
                self._tokens = tokens - weight
                self._last = now
                return None
        return super()._take_now(weight, now)

    def _take_pending(self, weight: float, now: float) -> None:
        self._take(weight, now)
        self._pending += weight

    def _settle(self, weight: float, receipt: Any, now: float) -> None:
        self._rebase(now)  # refill up to the lowered ceiling first, then lift it
        self._pending = max(0.0, self._pending - weight)

    def _refund(self, weight: float, receipt: Any, now: float) -> None:
        self._rebase(now)
        self._tokens = min(self.capacity - self._pending, self._tokens + weight)

    def _drain(self, now: float) -> None:
        self._rebase(now)
        self._tokens = min(self._tokens, 0.0)  # empty from now on (debt, if any, is kept)

    def _at_rest(self, now: float) -> bool:
        return not self._n_waiting and not self._pending and self._tokens_at(now) >= self.capacity

    def _level(self, now: float) -> float:
        return max(0.0, self._tokens_at(now))

    def _restart(self) -> None:
        self._tokens = self.initial_tokens
        self._last = None
        self._pending = 0.0

    def statistics(self) -> TokenBucketStatistics:
        return TokenBucketStatistics(
            **self._common_statistics(), rate=self.rate, capacity=self.capacity, tokens=self.tokens()
        )

    def __repr__(self) -> str:
        return (
            f"<TokenBucket {self.name!r} rate={self.rate:g}/s ({self.rate * 60:g}/min) "
            f"capacity={self.capacity:g} tokens={max(0.0, self.tokens()):.2f} "
            f"waiting={self._n_waiting} granted={self._granted}>"
        )
