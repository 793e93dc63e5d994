"""SharedSlidingWindowLog: never more than ``max_requests`` starting in *any* window, across all workers.

The same promise as :class:`throttle_lab.SlidingWindowLog`, with the log in one Redis sorted set and every
request one atomic script (``scripts.SLIDING_LOG_RESERVE``)::

    KEY  throttle_lab:{<key>}:log   a sorted set, one member per booking: "<start µs>:<weight>:<id>",
                                    scored by the running total of weight booked so far (a prefix sum);
                                    TTL: until the latest booking leaves the window

    script: drop bookings whose window (+ margin) has passed;
            start = max(now, latest booked start)                       (first come, first served)
            if total + weight > limit: start = max(start, the start of the first booking whose running
                                               total reaches total + weight - limit) + window + margin
            book at start;  answer start - now

Keeping running totals as scores makes "how much starts within the window" a subtraction of two scores and
"when does enough leave it" one ``ZRANGEBYSCORE``: each request costs O(log n), however long the log.

The promise, at the callers: **never more than** ``max_requests`` **units proceed in any window**
``[t, t + window_seconds)``, counted when ``acquire`` returns in every worker -- as long as no caller
proceeds more than ``margin`` after its booked start.  That is why a booking occupies the log for
``window + margin``, not ``window``::

    booked            a                          a + window         a + window + margin
    caller of a       |<- may run anywhere ->|
                      a                      a + margin
    next caller, booked at a + window: if the first ran at a + margin, the two are a window - margin
    apart -- one window holds both.  Booked at a + window + margin, they never share one.

What it costs: while the limit binds, ``max_requests`` per ``window + margin`` instead of per ``window``,
a throughput cost of ``margin / (window + margin)``: 0.03 % of a 60 s window with the default 20 ms, 2 %
of a 1 s window, 17 % of a 100 ms one (a limit that short wants a smaller margin, or a GCRA).
Every window releases the whole limit at once, so callers that burn CPU right after ``acquire`` resume one
after another in each process: the margin must cover their work too (callers per process x CPU each).

A caller later than the margin is counted in ``statistics().overdue``; it can add its own weight to the
window it lands in, no more.  The in-process :class:`throttle_lab.SlidingWindowLog` needs no margin: it
can stamp an entry when its caller resumes; a booking in Redis cannot move once others booked after it.

Cancellation: a caller cancelled while sleeping has its booking taken out of the log (if it is still
there) -- always safe here: bookings made after it assumed it was present, and without it every window only
gets lighter.  The freed room goes to *later arrivals*; those already booked keep their slots.

Usage (each worker; the same key and numbers everywhere)::

    log = SharedSlidingWindowLog("redis://127.0.0.1:6379", "api-key-1", max_requests=100, window_seconds=60)
    async with log.slot():
        await call_the_api()
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.validation import check_positive
from ._base import DEFAULT_MARGIN, SharedLimiter
from .connection import _arg, _text
from .faults import OnError
from .reservation import SharedLimiterStatistics, _Decision
from .scripts import SLIDING_LOG_REFUND, SLIDING_LOG_RESERVE

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["SharedSlidingWindowLog", "SharedSlidingWindowLogStatistics"]


@dataclass(frozen=True, slots=True)
class SharedSlidingWindowLogStatistics(SharedLimiterStatistics):
    max_requests: float
    window_seconds: float


class SharedSlidingWindowLog(SharedLimiter):
    """At most ``max_requests`` units start in any ``window_seconds`` span, counted over every worker.

    Args:
        redis: a ``redis://`` URL or a ``redis.asyncio.Redis``.
        key: what the limit is shared under.
        max_requests: the limit per window (with weights: units per window, e.g. tokens).
        window_seconds: the window's length (whole microseconds; rounded up).
        margin: seconds each booking leaves for its caller to proceed late; a booking occupies the log for
            ``window_seconds + margin`` (default :data:`~throttle_lab.shared.DEFAULT_MARGIN`).
        name, on_error, prefix, timeout, recheck: see :class:`~throttle_lab.shared.SharedLimiter`.
    """

    level_name = "booked"
    _reserve_script = SLIDING_LOG_RESERVE
    _refund_script = SLIDING_LOG_REFUND

    def __init__(
        self,
        redis: str | aioredis.Redis,
        key: str,
        max_requests: float = 60,
        window_seconds: float = 60.0,
        *,
        name: str | None = None,
        on_error: OnError = "fail_closed",
        prefix: str = "throttle_lab",
        timeout: float = 2.0,
        recheck: float = 1.0,
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        self.max_requests = check_positive("max_requests", max_requests)
        self.window_seconds = check_positive("window_seconds", window_seconds)
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
    def window_us(self) -> int:
        """The window in whole microseconds (rounded up: never shorter than asked)."""
        return max(1, math.ceil(self.window_seconds * 1e6))

    @property
    def max_weight(self) -> float:
        return self.max_requests

    def redis_keys(self) -> list[str]:
        return [self._key("log")]

    def _args(self, mode: str, weight: float, request_id: str) -> list[str]:
        # The script books with the window each entry occupies: the limit's window plus the margin.
        occupied = self.window_us + self.margin_us
        return [str(occupied), _arg(self.max_requests), _arg(weight), mode, request_id]

    def _read(self, reply: Sequence[Any], weight: float) -> _Decision:
        booked, wait, now, member, in_log = reply
        # The receipt is the member itself: a refund removes exactly it.
        return _Decision(
            bool(int(booked)), int(wait), int(now), _text(member), {"booked": float(_text(in_log))}
        )

    def _refund_args(self, receipt: Any) -> list[str]:
        return [str(receipt)]

    def _describe(self) -> str:
        return f"{self.max_requests:g} per {self.window_seconds:g}s margin={self.margin * 1e3:g}ms"

    def statistics(self) -> SharedSlidingWindowLogStatistics:
        return SharedSlidingWindowLogStatistics(
            **self._common_statistics(), max_requests=self.max_requests, window_seconds=self.window_seconds
        )
