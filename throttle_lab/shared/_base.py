"""What every shared limiter has in common: a reservation per request, one round trip, a fault policy.

An in-process limiter keeps its state in memory, so N worker processes with one each send N times the
limit.  A shared limiter keeps the state in Redis and decides there, in one atomic Lua script::

    worker 1 ──┐   EVALSHA reserve(weight)      ┌───────── Redis ──────────┐
    worker 2 ──┼──────────────────────────────> │ TIME -> now              │
    worker 3 ──┘   <── {wait: 0.35 s, at: ...}  │ book the slot, store it  │  (one script, atomic)
        │                                       └──────────────────────────┘
        └─ sleep until `at` on its own loop's clock, then go

The script *books* the slot and answers how long to wait, so nobody polls: one round trip per request,
and requests are served in the order they reached Redis.  Redis's clock decides; a worker's own clock only
has to find that instant on its own timeline, so hosts whose clocks disagree still share one timeline.

Where the promise is kept: at the callers.  A limit is kept when callers *proceed* (when ``acquire``
returns), not when Redis books them, and a caller never proceeds exactly at its booked start::

    Redis books   a ─────────────────────── a + window      (exact, on Redis's clock)
    caller runs     a + 0.4 ms               a + window + 0 ms
                    (the reply's trip back,  (woke on time)
                     a busy loop, its
                     neighbours' CPU work)

Two bookings exactly one window apart can start *less* than a window apart at the callers, and the window
between them then holds one too many.  (Four processes of fifty callers on a 20-per-second log: 23-24 in
one second of the callers' clocks, with the bookings exact.)  So every booking leaves a **margin**
(seconds; default :data:`DEFAULT_MARGIN`): the script counts each booking as though its caller might start
anywhere from its booked start to ``margin`` later, checking it at the earliest instant and passing on
only what is left at the latest.  As long as no caller proceeds more than ``margin`` after its booked
start, the limit holds at the callers exactly.  What it costs, per algorithm, is in each class's docstring
(a sliding log: ``margin / (window + margin)`` of its throughput; a GCRA: ``rate x margin`` of its burst).

Two things keep callers inside the margin.  A caller sleeps until its booked start *as placed on its own
clock* (see :class:`RedisClock`: every round trip brackets where Redis's clock sits on the loop's, and the
caller wakes at the bracket's latest end -- never early, and after one quick round trip only a fraction of
a millisecond late), instead of "wait seconds from when the reply arrived", which made it late by however
long the reply took, differently for every caller.  And a limiter keeps few round trips in flight (see
``_MAX_CONNECTIONS``), so a caller granted at once is not kept waiting for its reply behind a whole burst.

A caller later than the margin.  Each grant measures how late its caller proceeded (an upper bound):
``Reservation.lateness``, the ``late`` detail of ``granted`` events, and ``statistics().overdue`` (grants
later than the margin; their events say ``overdue: True``).  The callers that proceed within their margin
keep the limit exactly, so a window (a span) at the callers can hold more than the limit only by the
weight of overdue callers in it, never more.  ``overdue`` above zero says the margin is too small for the
load: a caller that burns CPU right after ``acquire`` makes everyone behind it in its process late, and so
does a machine with more busy processes than cores.  Raise the margin to cover it.

Why a margin, when the in-process limiters are exact?  They can stamp a grant at the instant its caller
resumes and compute the next grant from that.  A shared booking cannot be moved: by the time its caller
resumes, other workers have booked after it, computed from where it was.

Faults.  When Redis cannot be reached (down, restarting, a timeout), ``on_error`` decides:

* ``"fail_closed"`` (default): raise :class:`SharedLimitUnavailable` at once -- nothing is sent without a
  booking, so the limit is never exceeded;
* ``"fail_open"``: proceed *unthrottled*; the grant's event says ``unthrottled: True`` and a warning is
  logged once per outage (logger ``throttle_lab.shared``).

For ``recheck`` seconds after a failure, calls apply the policy without waiting on Redis again; then the
next call tries again.  Nothing needs restarting: the client reconnects by itself, and scripts the server
forgot (a restart, ``SCRIPT FLUSH``) are loaded again on the ``NOSCRIPT`` answer.

Cancellation.  A caller cancelled while sleeping on its booking asks Redis, in the background, to give the
booking back; whether that is possible depends on the algorithm (see each class).  A caller cancelled
during the round trip itself cannot know whether its booking was made: that slot is lost (a gap, never an
excess).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Hashable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

try:
    import redis.asyncio as aioredis
    from redis import exceptions as redis_errors
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "throttle_lab's shared limiters need the redis package: pip install 'throttle-lab[redis]'"
    ) from exc

from ..core.events import Kind, current_request, emit, is_recording
from ..core.limiters._base import LimiterStatistics, check_positive
from .scripts import LuaScript

__all__ = [
    "DEFAULT_MARGIN",
    "OnError",
    "RedisClock",
    "Reservation",
    "SharedLimitUnavailable",
    "SharedLimiter",
    "SharedLimiterStatistics",
]

OnError = Literal["fail_closed", "fail_open"]

logger = logging.getLogger("throttle_lab.shared")

# What "Redis cannot be reached" looks like.  Anything else (a script error, WRONGTYPE because the key is
# used by something else) is a bug to see, not an outage to ride out, and is raised as it is.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,  # refused, reset, closed; also BusyLoadingError (still loading its data)
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # we are talking to a replica (failover in progress)
    redis_errors.ClusterDownError,  # also MasterDownError
    OSError,  # includes the builtin TimeoutError
)


# What ends a clock check quietly (it is best effort): an outage, or any error Redis answers.
_CHECK_ERRORS: tuple[type[BaseException], ...] = (*_UNAVAILABLE, redis_errors.RedisError)


# Connections per limiter and event loop (its own client's pool); more callers wait for a free one, in
# order.  Few on purpose: with fifty in flight, all fifty commands are written before the loop reads the
# first reply, so a caller granted at once by the first script proceeds only after the whole burst was sent
# (30 ms for fifty, here) -- later than any margin.  With eight, replies come back in step with the sends
# (the first after 2-4 ms) and a burst costs a quarter of the CPU (measured in benchmarks/README.md).
_MAX_CONNECTIONS = 8

# A client's own pool running out of connections is not an outage: raise that as it is.
_NOT_AN_OUTAGE: tuple[type[BaseException], ...] = tuple(
    error for error in (getattr(redis_errors, "MaxConnectionsError", None),) if error is not None
)

#: Seconds each booking leaves for its caller to proceed late.  Measured on this project's 2-core machine,
#: busy with other work: four worker processes of fifty callers at once, no margin, nine runs -- callers
#: proceeded at most 16 ms after their booked starts (p99.9 8-16 ms; the latest are the ones granted at
#: once in the opening burst, whose replies wait behind the others').  Saturating both cores (four
#: processes of 1,000 callers at 2,000/s, benchmarks/bench_shared.py) gives p99 12-25 ms: a few grants
#: overdue, which the limiters count.  Callers that burn CPU after acquire need more: see the docstring.
DEFAULT_MARGIN = 0.020

# How fast two hosts' clocks may drift apart (500 ppm: the fastest NTP slews a clock).  On one host Redis's
# clock and the loop's tick together (Linux slews both alike); across hosts this keeps an old round trip from
# placing Redis's clock too early on ours.
_DRIFT = 500e-6

# A clock bracket narrower than this share of the margin (or than _FINE s) is not worth a look at Redis's
# clock before waking: its width is lateness the caller pays.
_FINE_SHARE = 0.1
_FINE = 0.000_25  # a quiet loopback round trip takes ~0.1-0.3 ms
# At most one clock check per this many seconds (a loaded machine makes checks slow, and slow checks do
# not narrow the bracket: don't let each sleeper send another).
_CHECK_EVERY = 0.02


class SharedLimitUnavailable(RuntimeError):
    """Redis could not be reached and the limiter fails closed: the request was refused, not sent."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a shared limiter's ``acquire`` returns: one granted request.

    Attributes:
        weight: what was booked (1 for a request, the token count for TPM).
        waited: loop seconds from the call to the grant (the round trip plus the sleep).
        at_us: the booked start, in microseconds of **Redis** time (``None`` when unthrottled).  Every
            worker's bookings share this clock, so these are the timestamps to check a limit against.
        booked_at_us: Redis time when the script ran (``None`` when unthrottled).
        unthrottled: granted without Redis (``on_error="fail_open"`` during an outage).
        lateness: how long after its booked start this caller proceeded, at most (seconds, on its loop's
            clock; ``None`` when unthrottled).  Above the limiter's ``margin`` the caller is *overdue*.
    """

    weight: float
    waited: float
    at_us: int | None
    booked_at_us: int | None
    unthrottled: bool = False
    lateness: float | None = None

    @property
    def at(self) -> float | None:
        """The booked start in seconds of Redis time (Unix epoch)."""
        return None if self.at_us is None else self.at_us / 1e6

    @property
    def booked_at(self) -> float | None:
        return None if self.booked_at_us is None else self.booked_at_us / 1e6


@dataclass(frozen=True, slots=True)
class SharedLimiterStatistics(LimiterStatistics):
    """:class:`~throttle_lab.LimiterStatistics` (counted in *this* process) plus the Redis side.

    Attributes:
        key: the Redis key (or key prefix) the limit lives under.
        on_error: the fault policy.
        round_trips: script calls answered by Redis.
        round_trip_mean: their mean duration, seconds.
        script_loads: ``SCRIPT LOAD`` calls (1 per script, plus one after each server restart).
        errors: calls that failed because Redis could not be reached.
        unthrottled: requests let through without Redis (fail-open).
        refunded: cancelled bookings Redis gave back.
        not_refunded: cancelled bookings it could not give back (someone booked after them, or Redis was
            down).
        margin: seconds each booking leaves for its caller to proceed late.
        overdue: grants whose caller proceeded later than ``margin`` after its booked start (as far as this
            process can tell: it counts every one that might have been).  Each can add its weight to a
            window it lands in; anything above 0 says the margin is too small for this load.
        max_lateness: the latest any caller here proceeded after its booked start, seconds (at most).
    """

    key: str
    on_error: str
    round_trips: int
    round_trip_mean: float
    script_loads: int
    errors: int
    unthrottled: int
    refunded: int
    not_refunded: int
    margin: float
    overdue: int
    max_lateness: float


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


@dataclass(frozen=True, slots=True)
class _Decision:
    """One script's answer, parsed."""

    booked: bool
    wait_us: int
    now_us: int
    receipt: Any  # what a refund of this booking needs
    levels: dict[str, float]


class _Down(Exception):
    """Internal: Redis could not be reached for this call."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _arg(value: float) -> str:
    """A number as script argument text that Lua's ``tonumber`` reads back exactly."""
    return repr(value) if isinstance(value, float) else str(value)


class SharedLimiter(ABC):
    """Base class of the Redis-backed limiters.  Subclasses supply the keys, the scripts and their reading.

    Args (common to every shared limiter):
        redis: a URL (``"redis://127.0.0.1:6379/0"``) -- the limiter then makes its own client on the
            running loop, with short timeouts and no retries of its own -- or a ``redis.asyncio.Redis``
            you configured (use it on one event loop only).
        key: the name the limit is shared under, e.g. the API key's id.  Every worker using the same Redis,
            ``key`` and ``prefix`` shares one limit; they must also agree on the limit's numbers.
        name: the ``source`` of this limiter's events (default: the class name).
        on_error: ``"fail_closed"`` or ``"fail_open"`` (see the module docstring).
        prefix: the first part of every Redis key this limiter writes.
        timeout: seconds to wait for Redis (connect and reply) before counting it unreachable.
        recheck: seconds after a failure during which calls apply ``on_error`` without trying Redis.
        margin: seconds each booking leaves for its caller to proceed late (see the module docstring);
            0 keeps the bookings exact in Redis but not at the callers.  Every worker must use the same.
    """

    #: What the ``granted`` events' level detail is called ("tokens", "booked", ...).
    level_name: ClassVar[str] = "level"
    _reserve_script: ClassVar[LuaScript]
    _refund_script: ClassVar[LuaScript]

    def __init__(
        self,
        redis: str | aioredis.Redis,
        key: str,
        *,
        name: str | None = None,
        on_error: OnError = "fail_closed",
        prefix: str = "throttle_lab",
        timeout: float = 2.0,
        recheck: float = 1.0,
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        if isinstance(redis, str):
            if not redis.startswith(("redis://", "rediss://", "unix://")):
                raise ValueError(f"redis must be a redis:// URL or a redis.asyncio.Redis, got {redis!r}")
            self._url: str | None = redis
            self._given: aioredis.Redis | None = None
        elif isinstance(redis, aioredis.Redis):
            self._url = None
            self._given = redis
        else:
            raise ValueError(f"redis must be a redis:// URL or a redis.asyncio.Redis, got {redis!r}")
        if not isinstance(key, str) or not key or "{" in key or "}" in key:
            # Braces would change the key's hash tag (Redis Cluster places keys by the part in braces).
            raise ValueError(f"key must be a non-empty string without braces, got {key!r}")
        if on_error not in ("fail_closed", "fail_open"):
            raise ValueError(f"on_error must be 'fail_closed' or 'fail_open', got {on_error!r}")
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"prefix must be a non-empty string, got {prefix!r}")
        check_positive("timeout", timeout)
        if isinstance(recheck, bool) or not isinstance(recheck, int | float) or not 0 <= recheck < math.inf:
            raise ValueError(f"recheck must be a non-negative number of seconds, got {recheck!r}")
        if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin < math.inf:
            raise ValueError(f"margin must be a non-negative number of seconds, got {margin!r}")
        self.key = key
        self.prefix = prefix
        self.name = name if name is not None else type(self).__name__
        self.on_error: OnError = on_error
        self.timeout = float(timeout)
        self.recheck = float(recheck)
        self.margin = float(margin)
        self._ids = f"{secrets.token_hex(4)}-"  # request ids unique across workers
        self._next_id = 0
        # loop-bound things, made afresh on each new event loop (see _bind)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: aioredis.Redis | None = None
        self._load_lock: asyncio.Lock | None = None
        self._refunds: set[asyncio.Task[None]] = set()
        self._loaded: set[str] = set()
        self._clock = RedisClock()
        self._check: asyncio.Task[None] | None = None  # the clock check in flight (see _sleep_until)
        self._checked_at = -math.inf
        self._down_until = -math.inf
        self._outage = False
        self._last_error: BaseException | None = None
        # what this process has seen
        self._n_waiting = 0
        self._granted = 0
        self._queued = 0
        self._cancelled = 0
        self._rejected = 0
        self._total_waited = 0.0
        self._max_waited = 0.0
        self._round_trips = 0
        self._round_trip_total = 0.0
        self._script_loads = 0
        self._errors = 0
        self._unthrottled = 0
        self._refunded = 0
        self._not_refunded = 0
        self._overdue = 0
        self._max_lateness = 0.0
        self._levels: dict[str, float] = {}  # from the latest reply
        self._levels_at: float | None = None  # loop time of that reply

    # ------------------------------------------------------------------ the algorithm (subclasses)
    @property
    @abstractmethod
    def max_weight(self) -> float:
        """The heaviest request this limit can ever grant; heavier ones fail at once, without a round trip."""

    @abstractmethod
    def redis_keys(self) -> list[str]:
        """The Redis keys holding this limit's state."""

    @abstractmethod
    def _args(self, mode: str, weight: float, request_id: str) -> list[str]:
        """ARGV of the reserve script."""

    @abstractmethod
    def _read(self, reply: Sequence[Any], weight: float) -> _Decision:
        """Parse the reserve script's reply."""

    @abstractmethod
    def _refund_args(self, receipt: Any) -> list[str]:
        """ARGV of the refund script for a booking's receipt."""

    @abstractmethod
    def _describe(self) -> str:
        """The limit's numbers, for ``repr``."""

    @property
    def margin_us(self) -> int:
        """The margin in whole microseconds (rounded up: never less than asked)."""
        return math.ceil(self.margin * 1e6)

    # ------------------------------------------------------------------ public surface
    async def acquire(self, weight: float = 1) -> Reservation:
        """Book ``weight`` units in Redis and sleep until the booked slot; return the :class:`Reservation`.

        The sleep ends at the booked start placed on this loop's clock (never before it; see
        :class:`RedisClock`), not ``wait`` seconds after the reply arrived.

        Raises ``ValueError`` at once (no round trip) if ``weight`` is not positive or exceeds
        :attr:`max_weight`, and :class:`SharedLimitUnavailable` if Redis cannot be reached and
        ``on_error="fail_closed"``.
        """
        self._validate(weight)
        loop = self._bind()
        start = loop.time()
        request = current_request()
        try:
            decision = await self._decide("reserve", weight)
        except _Down as down:
            return self._when_down(down.error, weight, start, request)
        except asyncio.CancelledError:
            # Cancelled during the round trip: the script may or may not have booked; we cannot know which
            # booking to give back.
            self._cancelled += 1
            if is_recording():
                emit(loop.time(), Kind.CANCELLED, self.name, request, weight, {"during": "round trip"})
            raise
        wait = decision.wait_us / 1e6
        at_us = decision.now_us + decision.wait_us
        if decision.wait_us > 0:
            self._n_waiting += 1
            if is_recording():
                emit(loop.time(), Kind.QUEUED, self.name, request, weight, {"wait": wait, "at": at_us / 1e6})
            try:
                await self._sleep_until(at_us)
            except asyncio.CancelledError:
                self._n_waiting -= 1
                self._cancelled += 1
                self._queued += 1
                if is_recording():
                    emit(loop.time(), Kind.CANCELLED, self.name, request, weight, {"after_grant": False})
                self._refund_later(decision.receipt, weight, request)
                raise
            self._n_waiting -= 1
            self._queued += 1
        now = loop.time()
        waited = now - start
        lateness = self._lateness(at_us, now)
        self._granted += 1
        self._total_waited += waited
        self._max_waited = max(self._max_waited, waited)
        if is_recording():
            detail = self._grant_detail(waited, at_us, decision, lateness)
            emit(now, Kind.GRANTED, self.name, request, weight, detail)
        return Reservation(weight, waited, at_us, decision.now_us, lateness=lateness)

    async def try_acquire(self, weight: float = 1) -> Reservation | None:
        """Book ``weight`` only if it can start right now; never sleeps.

        Unlike the in-process limiters' this is a coroutine: deciding takes a round trip.  Returns the
        :class:`Reservation` (truthy) or ``None``; nothing is booked when it says no.
        """
        self._validate(weight)
        loop = self._bind()
        start = loop.time()
        request = current_request()
        try:
            decision = await self._decide("try", weight)
        except _Down as down:
            return self._when_down(down.error, weight, start, request)
        if not decision.booked:
            return None
        now = loop.time()
        lateness = self._lateness(decision.now_us, now)
        self._granted += 1
        if is_recording():
            detail = self._grant_detail(0.0, decision.now_us, decision, lateness)
            emit(now, Kind.GRANTED, self.name, request, weight, detail)
        return Reservation(weight, now - start, decision.now_us, decision.now_us, lateness=lateness)

    @asynccontextmanager
    async def slot(self, weight: float = 1) -> AsyncIterator[Reservation]:
        """``async with limiter.slot(weight) as reservation:`` -- acquire on entry.  A rate is spent when
        granted, so there is nothing to release on exit."""
        yield await self.acquire(weight)

    async def peek(self, weight: float = 1) -> float:
        """Seconds a request of ``weight`` would wait if it were booked now (nothing is booked).

        Raises :class:`SharedLimitUnavailable` when Redis cannot be reached, whatever ``on_error`` says.
        """
        self._validate(weight)
        self._bind()
        try:
            decision = await self._decide("peek", weight)
        except _Down as down:
            raise self._unavailable(down.error) from down.error
        return decision.wait_us / 1e6

    async def reset(self) -> None:
        """Delete this limit's state in Redis: the next request starts from a fresh, full limit."""
        self._bind()
        await self._client_now().delete(*self.redis_keys())

    async def wait_refunds(self) -> None:
        """Wait until the background refunds of cancelled bookings have been answered."""
        while self._refunds:
            await asyncio.gather(*self._refunds, return_exceptions=True)

    async def aclose(self) -> None:
        """Wait for background refunds, then close the Redis client if this limiter made it."""
        await self.wait_refunds()
        if self._check is not None:
            self._check.cancel()
            await asyncio.gather(self._check, return_exceptions=True)
            self._check = None
        if self._client is not None and self._given is None:
            client, self._client = self._client, None
            await client.aclose()

    @property
    def waiting(self) -> int:
        """How many callers in this process are sleeping on a booking right now."""
        return self._n_waiting

    def statistics(self) -> SharedLimiterStatistics:
        """A frozen snapshot of what this process has seen (see :class:`SharedLimiterStatistics`)."""
        return SharedLimiterStatistics(**self._common_statistics())

    def __repr__(self) -> str:
        seen = ""
        if self._levels and self._levels_at is not None:
            levels = " ".join(f"{k}={v:.2f}" for k, v in self._levels.items())
            seen = f" last reply: {levels}"
        down = " REDIS DOWN" if self._outage else ""
        return (
            f"<{type(self).__name__} {self.name!r} key={self.key!r} {self._describe()}{seen} "
            f"waiting={self._n_waiting} granted={self._granted} on_error={self.on_error}{down}>"
        )

    # ------------------------------------------------------------------ machinery
    def _common_statistics(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "waiting": self._n_waiting,
            "granted": self._granted,
            "queued": self._queued,
            "cancelled": self._cancelled,
            "rejected": self._rejected,
            "total_waited": self._total_waited,
            "max_waited": self._max_waited,
            "key": self.redis_keys()[0],
            "on_error": self.on_error,
            "round_trips": self._round_trips,
            "round_trip_mean": self._round_trip_total / self._round_trips if self._round_trips else 0.0,
            "script_loads": self._script_loads,
            "errors": self._errors,
            "unthrottled": self._unthrottled,
            "refunded": self._refunded,
            "not_refunded": self._not_refunded,
            "margin": self.margin,
            "overdue": self._overdue,
            "max_lateness": self._max_lateness,
        }

    def _key(self, suffix: str) -> str:
        # The braces are a hash tag: in Redis Cluster all of one limit's keys land on the same node, which
        # a multi-key script needs.
        return f"{self.prefix}:{{{self.key}}}:{suffix}"

    def _validate(self, weight: float) -> None:
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight < math.inf:
            raise ValueError(f"weight must be a positive finite number, got {weight!r}")
        self._check_size(weight)

    def _check_size(self, weight: float) -> None:
        if weight > self.max_weight:
            self._rejected += 1
            loop = self._running_loop()
            if loop is not None and is_recording():
                emit(loop.time(), Kind.REJECTED, self.name, None, weight, {"reason": "oversize"})
            raise ValueError(self._oversize_message(weight))

    def _oversize_message(self, weight: float) -> str:
        return (
            f"weight {weight:g} exceeds what {self.name} can ever grant ({self.max_weight:g}); "
            "waiting for it would never end. Split the request or raise the limit."
        )

    def _grant_detail(
        self, waited: float, at_us: int, decision: _Decision, lateness: float
    ) -> dict[str, Any]:
        detail = {"waited": waited, "at": at_us / 1e6, "late": lateness, **decision.levels}
        if lateness > self.margin:
            detail["overdue"] = True
        return detail

    async def _sleep_until(self, at_us: int) -> None:
        """Sleep until Redis instant ``at_us`` has certainly come on this loop's clock.

        Not ``wait`` seconds from the reply: the reply took a while to arrive, and how long differs from
        caller to caller.  The latest the instant can be is where the clock bracket says.  A bracket made
        of slow round trips (a burst: fifty callers at once, all their replies queued) or grown old
        (``_DRIFT``) is wide, and waking at its latest end would make this caller late by its width.  So a
        sleeper whose bracket is wide wakes first at the *earliest* the instant can be, looks at Redis's
        clock once more (one bare ``TIME`` round trip, shared by every sleeper waking then: the burst is
        long over and it takes a fraction of a millisecond), and sleeps out the remainder of the narrowed
        bracket.  It waits for that look no longer than the wide bracket's latest end: never later than
        without it.
        """
        loop = self._loop
        assert loop is not None
        now = loop.time()
        earliest = self._clock.earliest(at_us, now)
        if earliest > now and self._clock.width(earliest) > self._fine_enough:
            await asyncio.sleep(earliest - now)
            check = self._check_clock()
            if check is not None:
                deadline = self._clock.latest(at_us, loop.time())
                # asyncio.wait, not wait_for: a sleeper that gives up (or is cancelled) leaves the shared
                # check running for the others.
                await asyncio.wait({check}, timeout=max(0.0, deadline - loop.time()))
        now = loop.time()
        latest = self._clock.latest(at_us, now)
        if latest > now:
            await asyncio.sleep(latest - now)

    @property
    def _fine_enough(self) -> float:
        """A clock bracket this narrow is not worth a look at Redis's clock (seconds)."""
        return max(_FINE, _FINE_SHARE * self.margin)

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
            seconds, micros = await self._client_now().time()
            self._clock.observe(sent, loop.time(), int(seconds) * 1_000_000 + int(micros))
        except _CHECK_ERRORS:
            pass
        finally:
            self._check = None

    def _lateness(self, at_us: int, now: float) -> float:
        """How long after booked start ``at_us`` a caller proceeding at loop time ``now`` is, at most; count
        it overdue if that is more than the margin.  (At most: the bracket's low end is the earliest the
        booked start can have been on our clock.)"""
        lateness = max(0.0, now - self._clock.earliest(at_us, now))
        self._max_lateness = max(self._max_lateness, lateness)
        if lateness > self.margin:
            self._overdue += 1
        return lateness

    @staticmethod
    def _running_loop() -> asyncio.AbstractEventLoop | None:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._n_waiting:
                raise RuntimeError(
                    f"{self.name} has callers waiting on another event loop; create a limiter inside the "
                    "coroutine that uses it (one limiter per run)."
                )
            # A client's connections belong to the loop that made them: a new loop gets a new client.
            self._loop = loop
            self._client = None
            self._load_lock = asyncio.Lock()
            self._refunds = set()
            self._clock = RedisClock()  # another loop, another clock
            self._check = None
            self._checked_at = -math.inf
            self._down_until = -math.inf
        return loop

    def _client_now(self) -> aioredis.Redis:
        if self._given is not None:
            return self._given
        if self._client is None:
            assert self._url is not None
            # A blocking pool: a thousand callers at once wait their turn for one of a few connections,
            # rather than failing with "Too many connections".
            pool = aioredis.BlockingConnectionPool.from_url(
                self._url,
                max_connections=_MAX_CONNECTIONS,
                timeout=self.timeout,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                # No retries underneath us: a retried EVALSHA could book twice, and an outage should reach
                # the fault policy now, not after a second of backoff.
                retry=Retry(NoBackoff(), 0),
            )
            self._client = aioredis.Redis.from_pool(pool)
        return self._client

    def _where(self) -> str:
        try:
            kwargs = self._client_now().connection_pool.connection_kwargs
        except Exception:  # pragma: no cover - an exotic client
            return "?"
        if "path" in kwargs:
            return str(kwargs["path"])
        return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"

    def _new_request_id(self) -> str:
        self._next_id += 1
        return f"{self._ids}{self._next_id}"

    async def _decide(self, mode: str, weight: float) -> _Decision:
        """One round trip: run the reserve script in ``mode``; raise ``_Down`` if Redis is unreachable."""
        loop = self._loop
        assert loop is not None
        if loop.time() < self._down_until and self._last_error is not None:
            raise _Down(self._last_error)  # it failed moments ago: don't wait on it again yet
        started = loop.time()
        try:
            reply = await self._call(self._reserve_script, self._args(mode, weight, self._new_request_id()))
        except _UNAVAILABLE as exc:
            if isinstance(exc, _NOT_AN_OUTAGE):
                raise
            self._on_failure(exc)
            await self._drop_idle_connections()
            raise _Down(exc) from exc
        finished = loop.time()
        self._round_trips += 1
        self._round_trip_total += finished - started
        if self._outage:
            self._outage = False
            logger.warning("%s: Redis at %s is reachable again", self.name, self._where())
        decision = self._read(reply, weight)
        self._clock.observe(started, finished, decision.now_us)  # the script read its clock in between
        self._levels = decision.levels
        self._levels_at = finished
        return decision

    def _on_failure(self, exc: BaseException) -> None:
        assert self._loop is not None
        self._errors += 1
        self._last_error = exc
        self._down_until = self._loop.time() + self.recheck
        self._loaded.clear()  # a server that comes back may have forgotten our scripts
        if not self._outage:
            self._outage = True
            action = (
                "proceeding UNTHROTTLED (on_error='fail_open')"
                if self.on_error == "fail_open"
                else "refusing requests (on_error='fail_closed')"
            )
            logger.warning("%s: Redis at %s unreachable (%s); %s", self.name, self._where(), exc, action)

    async def _drop_idle_connections(self) -> None:
        """After a failure, the pool's idle connections are most likely dead too (a restarted server closed
        them all): drop them, or each would fail one more request after Redis is back."""
        if self._given is None and self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.connection_pool.disconnect(inuse_connections=False)

    async def _call(self, script: LuaScript, args: list[str]) -> Any:
        """EVALSHA by SHA; load the script first if this limiter has not yet, and again on NOSCRIPT."""
        client = self._client_now()
        keys = self.redis_keys()
        if script.name not in self._loaded:
            await self._load(client, script)
        try:
            return await client.evalsha(script.sha, len(keys), *keys, *args)
        except redis_errors.NoScriptError:
            # The server restarted or its script cache was flushed: load again and retry once.
            self._loaded.discard(script.name)
            await self._load(client, script)
            return await client.evalsha(script.sha, len(keys), *keys, *args)

    async def _load(self, client: aioredis.Redis, script: LuaScript) -> None:
        assert self._load_lock is not None
        async with self._load_lock:  # many first callers at once: load once
            if script.name in self._loaded:
                return
            sha = _text(await client.script_load(script.source))
            if sha != script.sha:  # pragma: no cover - would mean a broken server
                raise RuntimeError(f"SCRIPT LOAD answered {sha}, expected {script.sha}")
            self._script_loads += 1
            self._loaded.add(script.name)

    def _unavailable(self, error: BaseException) -> SharedLimitUnavailable:
        return SharedLimitUnavailable(
            f"{self.name}: Redis at {self._where()} is unreachable ({type(error).__name__}: {error}). "
            "on_error='fail_closed' refuses requests while the shared limit cannot be checked, so the limit "
            f"is never exceeded; calls try Redis again {self.recheck:g} s after a failure. Pass "
            "on_error='fail_open' to proceed unthrottled instead."
        )

    def _when_down(
        self, error: BaseException, weight: float, start: float, request: Hashable | None
    ) -> Reservation:
        """Apply the fault policy: let the request through unthrottled, or refuse it."""
        assert self._loop is not None
        now = self._loop.time()
        reason = f"{type(error).__name__}: {error}"
        if self.on_error == "fail_open":
            self._granted += 1
            self._unthrottled += 1
            if is_recording():
                detail = {"waited": now - start, "unthrottled": True, "error": reason}
                emit(now, Kind.GRANTED, self.name, request, weight, detail)
            return Reservation(weight, now - start, None, None, unthrottled=True)
        self._rejected += 1
        if is_recording():
            detail = {"reason": "redis_unavailable", "error": reason}
            emit(now, Kind.REJECTED, self.name, request, weight, detail)
        raise self._unavailable(error) from error

    def _refund_later(self, receipt: Any, weight: float, request: Hashable | None) -> None:
        """Ask Redis to give a cancelled booking back, without holding up the cancellation."""
        assert self._loop is not None
        task = self._loop.create_task(self._refund(receipt, weight, request))
        self._refunds.add(task)
        task.add_done_callback(self._refunds.discard)

    async def _refund(self, receipt: Any, weight: float, request: Hashable | None) -> None:
        assert self._loop is not None
        if self._loop.time() < self._down_until:
            self._not_refunded += 1
            return
        try:
            done = await self._call(self._refund_script, self._refund_args(receipt))
        except _UNAVAILABLE as exc:
            self._on_failure(exc)
            self._not_refunded += 1
            return
        if not int(done):
            self._not_refunded += 1
            return
        self._refunded += 1
        if is_recording():
            emit(self._loop.time(), Kind.RELEASED, self.name, request, weight, {"refunded": True})
