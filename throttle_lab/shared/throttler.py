"""SharedThrottler: requests per minute and tokens per minute, booked together in Redis for every worker.

An LLM API key has two rate limits at once, and a request needs room under both.  Booking them one after
the other across processes goes wrong the same way it does in one process (a request holds its RPM slot
while it waits for tokens, or the other way round); here both are decided by **one** script
(``scripts.THROTTLER_RESERVE``), all or nothing::

    KEY  throttle_lab:{<key>}:throttler   a hash: 'rpm' and 'tpm' (two GCRA timestamps, µs of Redis time),
                                          'last' (latest booked start), 'seq' (bookings so far), and the
                                          three as they were before the latest booking ('rpm0', 'tpm0',
                                          'last0'); TTL: until both timestamps and 'last' have passed

    script: start = max(last, when RPM allows one more, when TPM allows `tokens` more)
            book both at `start` (each TAT goes on from start + margin);  answer start - now

Each limit behaves like :class:`throttle_lab.Throttler`'s buckets: a per-minute limit may burst up to
``limit × window / 60`` (``window=60``: a fresh minute's whole budget at once; the server's own window, e.g.
1 s, to never burst above what it tolerates).  Requests start in arrival order: a big TPM request at the
head is not overtaken by small ones behind it.

The promise, at the callers, per budget: in any span of T seconds, **at most** ``capacity + rate·T``
requests and ``capacity + rate·T`` tokens proceed (each budget's own capacity ``limit × window / 60`` and
rate ``limit / 60``), counted when ``acquire`` returns in every worker -- as long as no caller proceeds more
than ``margin`` after its booked start.  Each bucket leaves the margin as
:class:`~throttle_lab.shared.SharedGCRA` does (its TAT goes on from the latest its caller may start), so
the costs are the same: each budget's burst shrinks by ``rate × margin`` (500 RPM with the default 20 ms:
0.17 of a request; 200,000 TPM: 67 tokens), which costs no throughput while the capacity is at least one
request (or the largest request's tokens) more than that; a budget of one request (``rpm × window / 60
<= 1``) spaces back-to-back requests ``60/rpm + margin`` apart.  A caller later than the margin is counted
in ``statistics().overdue``.

Cancellation: a caller cancelled while sleeping undoes its booking -- both halves -- only if nobody booked
after it (the hash's ``seq`` is still its own); otherwise the slot is lost, never exceeded.

Not shared here: a concurrency cap (that needs leases that expire when a worker dies); combine with an
in-process :class:`throttle_lab.ConcurrencyLimiter` per worker if you need one.  Token estimates are not
reconciled with the response's ``usage`` afterwards.

Making one costs no round trip (the client connects on first use); the ``repr`` shows what this process
knows::

>>> throttler = SharedThrottler("redis://127.0.0.1:6379", "key-1", rpm=500, tpm=200_000, window=1)
>>> throttler  # doctest: +ELLIPSIS
<SharedThrottler 'SharedThrottler' key='key-1' rpm=500 tpm=200000 window=1s margin=20ms waiting=0 ...>
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.validation import check_positive
from ._base import DEFAULT_MARGIN, SharedLimiter
from .connection import _arg, _text
from .faults import OnError
from .reservation import Reservation, SharedLimiterStatistics, _Decision
from .scripts import THROTTLER_REFUND, THROTTLER_RESERVE

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["SharedThrottler", "SharedThrottlerStatistics"]

INF = float("inf")


@dataclass(frozen=True, slots=True)
class SharedThrottlerStatistics(SharedLimiterStatistics):
    rpm: float | None
    tpm: float | None
    window: float
    tokens_granted: float


class SharedThrottler(SharedLimiter):
    """One all-or-nothing booking of a request and its tokens, shared by every worker through Redis.

    Args:
        redis: a ``redis://`` URL or a ``redis.asyncio.Redis``.
        key: what the limits are shared under (the API key's id).
        rpm: requests per minute (None: no RPM limit).
        tpm: tokens per minute (None: no TPM limit).  At least one of the two.
        window: the span, in seconds, over which the per-minute limits may burst: each holds
            ``limit × window / 60`` (the requests one at least 1).
        margin: seconds each booking leaves for its caller to proceed late (default
            :data:`~throttle_lab.shared.DEFAULT_MARGIN`; see the module docstring).
        name, on_error, prefix, timeout, recheck: see :class:`~throttle_lab.shared.SharedLimiter`.

    ``acquire(tokens)`` larger than the TPM budget can ever hold (``tpm × window / 60``) raises
    ``ValueError`` at once, without a round trip.
    """

    level_name = "tokens_left"
    weighs_in_tokens = True  # acquire's weight is the request's tokens; zero (the request alone) is allowed
    _reserve_script = THROTTLER_RESERVE
    _refund_script = THROTTLER_REFUND

    def __init__(
        self,
        redis: str | aioredis.Redis,
        key: str,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        window: float = 60.0,
        name: str | None = None,
        on_error: OnError = "fail_closed",
        prefix: str = "throttle_lab",
        timeout: float = 2.0,
        recheck: float = 1.0,
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        if rpm is None and tpm is None:
            raise ValueError("give rpm=, tpm= or both")
        self.rpm = None if rpm is None else check_positive("rpm", rpm)
        self.tpm = None if tpm is None else check_positive("tpm", tpm)
        self.window = check_positive("window", window)
        self._tokens_granted = 0.0
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

    # ------------------------------------------------------------------ public surface
    async def acquire(self, tokens: float = 0) -> Reservation:
        """Wait, in arrival order at Redis, until one request and ``tokens`` tokens both fit; book both."""
        reservation = await super().acquire(tokens)
        self._tokens_granted += tokens
        return reservation

    async def try_acquire(self, tokens: float = 0) -> Reservation | None:
        """Book a request and ``tokens`` only if both fit right now; ``None`` (nothing booked) otherwise."""
        reservation = await super().try_acquire(tokens)
        if reservation is not None:
            self._tokens_granted += tokens
        return reservation

    def _request_weight(self, tokens: float) -> float:
        return tokens  # a throttler's weight is the request's tokens (zero: the request alone)

    @property
    def max_weight(self) -> float:
        return INF if self.tpm is None else self.tpm * self.window / 60.0

    # ------------------------------------------------------------------ the script's arguments
    def _limits(self) -> tuple[float, float, float, float]:
        """µs per request, request tolerance, µs per token, token tolerance (0, 0 for an absent limit)."""
        r_int = r_tol = t_int = t_tol = 0.0
        if self.rpm is not None:
            r_int = 60e6 / self.rpm
            r_tol = max(1.0, self.rpm * self.window / 60.0) * r_int  # a request bucket holds at least one
        if self.tpm is not None:
            t_int = 60e6 / self.tpm
            t_tol = self.window * 1e6  # (tpm * window / 60) tokens of t_int µs each
        return r_int, r_tol, t_int, t_tol

    def redis_keys(self) -> list[str]:
        return [self._key("throttler")]

    def _args(self, mode: str, weight: float, request_id: str) -> list[str]:
        return [*(_arg(x) for x in self._limits()), _arg(weight), mode, str(self.margin_us)]

    def _read(self, reply: Sequence[Any], weight: float) -> _Decision:
        booked, wait, now, seq, requests_left, tokens_left = reply
        levels: dict[str, float] = {}
        if self.rpm is not None:
            levels["requests_left"] = float(_text(requests_left))
        if self.tpm is not None:
            levels["tokens_left"] = float(_text(tokens_left))
        return _Decision(bool(int(booked)), int(wait), int(now), _text(seq), levels)

    def _refund_args(self, receipt: Any) -> list[str]:
        return [str(receipt)]

    def _describe(self) -> str:
        parts = []
        if self.rpm is not None:
            parts.append(f"rpm={self.rpm:g}")
        if self.tpm is not None:
            parts.append(f"tpm={self.tpm:g}")
        parts.append(f"window={self.window:g}s")
        parts.append(f"margin={self.margin * 1e3:g}ms")
        return " ".join(parts)

    def statistics(self) -> SharedThrottlerStatistics:
        return SharedThrottlerStatistics(
            **self._common_statistics(),
            rpm=self.rpm,
            tpm=self.tpm,
            window=self.window,
            tokens_granted=self._tokens_granted,
        )
