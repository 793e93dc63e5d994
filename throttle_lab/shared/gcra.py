"""SharedGCRA: the GCRA (a token bucket stored as one timestamp), shared by every worker through Redis.

The same rule as :class:`throttle_lab.GCRA` -- requests spaced ``1/rate`` seconds apart on an ideal
timeline, up to ``burst`` ahead of it -- but the timestamp (the TAT) lives in one Redis key and each request
is one atomic script (``scripts.GCRA_RESERVE``)::

    KEY  throttle_lab:{<key>}:gcra   the TAT in µs of Redis time; TTL: until the TAT passes (then the key
                                     would mean "full burst", exactly like no key)

    script: tat = max(TAT, now);  start = max(now, tat + weight/rate - burst/rate)
            TAT = max(tat, start + margin) + weight/rate;  answer start - now

Because the script books the slot on the ideal timeline, the next caller's slot follows it exactly, however
late the first caller's wake-up is: no drift across workers either.

The promise, at the callers: **at most burst + rate·T units proceed in any span of T seconds**, counted
when ``acquire`` returns in every worker -- as long as no caller proceeds more than ``margin`` after its
booked start (a booked start is whole µs, rounded up; the bound holds to that µs).  Each booking is checked
at its booked start but passes on to later bookings only what is left at start + margin, its latest::

    margin 0:   TAT = max(TAT, now) + 1/rate           the next booking may start 1/rate after this one
                                                       -- and if this caller runs late, closer than that
    margin m:   TAT = max(TAT, start + m) + 1/rate     spaced from the latest this caller may start

What it costs:

* the burst shrinks by ``rate × margin`` (600/min with the default 20 ms: by 0.2 of a request);
* with ``burst >= 1 + rate × margin`` that is all: while a queue keeps the TAT ahead of start + margin,
  the sustained rate is kept exactly;
* below that the bookings space out: back to back they are ``1/rate + margin - (burst - 1)/rate`` apart.
  At ``burst=1`` that is a cost of ``margin / (1/rate + margin)`` of the rate (600/min: 17 %), and at a
  burst shorter than the margin it is worse (2,000/s with a burst of 10 -- 5 ms of requests -- keeps 3 %).
  Some of that is unavoidable: bookings within one margin of each other may all start at the same instant,
  so at most ``burst`` of them may be booked that close.  Raise the burst to ``1 + rate × margin`` or more,
  or lower the margin.

A caller that proceeds later than ``margin`` is counted in ``statistics().overdue`` and can add its own
weight to the spans it lands in, no more.  The in-process :class:`throttle_lab.GCRA` needs no margin: it
can stamp a grant when its caller resumes; a booking in Redis cannot move once others booked after it.

The level in ``granted`` events and in the ``repr`` (``tokens``) is what a token bucket would hold right
after the booking, as of the latest reply; below zero it counts the units already booked ahead (a queue).

Cancellation: a caller cancelled while sleeping gives its booking back **only if nobody booked after it**
(the stored TAT is still the one its booking left).  Otherwise the slot is lost -- a gap in the schedule,
never an excess: moving the TAT back under later bookings would let a newcomer share their instant.

Usage (each worker process; the same key and numbers in all of them)::

    limiter = SharedGCRA("redis://127.0.0.1:6379", "api-key-1", per_minute=600, burst=10)
    async with limiter.slot():
        await call_the_api()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.validation import check_positive, resolve_rate
from ._base import DEFAULT_MARGIN, SharedLimiter
from .connection import _arg, _text
from .faults import OnError
from .reservation import SharedLimiterStatistics, _Decision
from .scripts import GCRA_REFUND, GCRA_RESERVE

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["SharedGCRA", "SharedGCRAStatistics"]


@dataclass(frozen=True, slots=True)
class SharedGCRAStatistics(SharedLimiterStatistics):
    rate: float
    burst: float


class SharedGCRA(SharedLimiter):
    """Requests spaced ``1/rate`` s apart on one ideal timeline shared through Redis, up to ``burst`` ahead.

    Args:
        redis: a ``redis://`` URL or a ``redis.asyncio.Redis``.
        key: what the limit is shared under (e.g. the API key's id).
        rate: units per second (or ``per_minute``).
        burst: units that may go back to back, also the heaviest single request (default 1).
        per_minute: units per minute.
        margin: seconds each booking leaves for its caller to proceed late (default
            :data:`~throttle_lab.shared.DEFAULT_MARGIN`; see the module docstring for what it costs).
        name, on_error, prefix, timeout, recheck: see :class:`~throttle_lab.shared.SharedLimiter`.
    """

    level_name = "tokens"
    _reserve_script = GCRA_RESERVE
    _refund_script = GCRA_REFUND

    def __init__(
        self,
        redis: str | aioredis.Redis,
        key: str,
        rate: float | None = None,
        burst: float = 1,
        *,
        per_minute: float | None = None,
        name: str | None = None,
        on_error: OnError = "fail_closed",
        prefix: str = "throttle_lab",
        timeout: float = 2.0,
        recheck: float = 1.0,
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        self.rate = resolve_rate(rate, per_minute)
        self.burst = check_positive("burst", burst)
        super().__init__(
            redis,
            key,
            name=name,
            on_error=on_error,
            prefix=prefix,
            timeout=timeout,
            recheck=recheck,
            margin=margin,
        )

    @property
    def interval_us(self) -> float:
        """Microseconds between two units at the sustained rate."""
        return 1e6 / self.rate

    @property
    def max_weight(self) -> float:
        return self.burst

    def redis_keys(self) -> list[str]:
        return [self._key("gcra")]

    def _args(self, mode: str, weight: float, request_id: str) -> list[str]:
        interval = self.interval_us
        return [_arg(interval), _arg(self.burst * interval), _arg(weight), mode, str(self.margin_us)]

    def _read(self, reply: Sequence[Any], weight: float) -> _Decision:
        booked, wait, now, tat, available, before = reply
        # The receipt: the TAT this booking left (a refund checks it is still the latest) and the one it
        # found (what a refund puts back).
        receipt = (_text(tat), _text(before))
        return _Decision(bool(int(booked)), int(wait), int(now), receipt, {"tokens": float(_text(available))})

    def _refund_args(self, receipt: Any) -> list[str]:
        tat, before = receipt
        return [tat, before]

    def _describe(self) -> str:
        rate = f"rate={self.rate:g}/s ({self.rate * 60:g}/min)"
        return f"{rate} burst={self.burst:g} margin={self.margin * 1e3:g}ms"

    def statistics(self) -> SharedGCRAStatistics:
        return SharedGCRAStatistics(**self._common_statistics(), rate=self.rate, burst=self.burst)
