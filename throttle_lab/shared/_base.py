"""What every shared limiter has in common: a reservation per request, one round trip, a margin.

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
clock* (see :mod:`~throttle_lab.shared.clock` and :mod:`~throttle_lab.shared.wakeup`: every round trip
brackets where Redis's clock sits on the loop's, and the caller wakes at the bracket's latest end -- never
early, and after one quick round trip only a fraction of a millisecond late), instead of "wait seconds from
when the reply arrived", which made it late by however long the reply took, differently for every caller.
And a limiter keeps few round trips in flight (see :mod:`~throttle_lab.shared.connection`), so a caller
granted at once is not kept waiting for its reply behind a whole burst.

A caller later than the margin is counted (``statistics().overdue``; how, and what it means, in
:mod:`~throttle_lab.shared.wakeup`): it can add its own weight to a window it lands in, never more.

Why a margin, when the in-process limiters are exact?  They can stamp a grant at the instant its caller
resumes and compute the next grant from that.  A shared booking cannot be moved: by the time its caller
resumes, other workers have booked after it, computed from where it was.

This module puts the pieces together, one module each: a booking's types (``reservation``), the bracket on
Redis's clock (``clock``), sleeping until a booked start (``wakeup``), the client and its scripts
(``connection``), ``on_error`` when Redis cannot be reached (``faults``), cancelled bookings given back
(``refunds``), and the counters and weight checks every limiter keeps (:mod:`throttle_lab.core.accounting`).
"""

from __future__ import annotations

import asyncio
import math
import secrets
from abc import abstractmethod
from collections.abc import AsyncIterator, Hashable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, ClassVar

from ..core.accounting import Accounting
from ..core.events import Kind, current_request, emit, is_recording
from ..core.gate import UNMETERED, Admission, RequestGate
from ..core.validation import check_non_negative
from ._redis import aioredis
from .connection import RedisConnection
from .faults import FaultPolicy, OnError, _Down
from .refunds import BackgroundCalls, Refunds
from .reservation import Reservation, SharedLimiterStatistics, _Decision
from .scripts import LuaScript
from .wakeup import Wakeup

__all__ = ["DEFAULT_MARGIN", "SharedLimiter"]

#: Seconds each booking leaves for its caller to proceed late.  Measured on this project's 2-core machine,
#: busy with other work: four worker processes of fifty callers at once, no margin, nine runs -- callers
#: proceeded at most 16 ms after their booked starts (p99.9 8-16 ms; the latest are the ones granted at
#: once in the opening burst, whose replies wait behind the others').  Saturating both cores (four
#: processes of 1,000 callers at 2,000/s, benchmarks/bench_shared.py) gives p99 12-25 ms: a few grants
#: overdue, which the limiters count.  Callers that burn CPU after acquire need more: see the docstring.
DEFAULT_MARGIN = 0.020


class SharedLimiter(Accounting):
    """Base class of the Redis-backed limiters.  Subclasses supply the keys, the scripts and their reading.

    Args (common to every shared limiter):
        redis: a URL (``"redis://127.0.0.1:6379/0"``) -- the limiter then makes its own client on the
            running loop, with short timeouts and no retries of its own -- or a ``redis.asyncio.Redis``
            you configured (use it on one event loop only).
        key: the name the limit is shared under, e.g. the API key's id.  Every worker using the same Redis,
            ``key`` and ``prefix`` shares one limit; they must also agree on the limit's numbers.
        name: the ``source`` of this limiter's events (default: the class name).
        on_error: ``"fail_closed"`` or ``"fail_open"`` (see :mod:`throttle_lab.shared.faults`).
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
        self._redis = RedisConnection(redis, timeout)
        if not isinstance(key, str) or not key or "{" in key or "}" in key:
            # Braces would change the key's hash tag (Redis Cluster places keys by the part in braces).
            raise ValueError(f"key must be a non-empty string without braces, got {key!r}")
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"prefix must be a non-empty string, got {prefix!r}")
        self._faults = FaultPolicy(self._redis, on_error, recheck)
        self.margin = check_non_negative("margin", margin)
        self.key = key
        self.prefix = prefix
        self._init_accounting(name if name is not None else type(self).__name__)
        self._ids = f"{secrets.token_hex(4)}-"  # request ids unique across workers
        self._next_id = 0
        # loop-bound things, made afresh on each new event loop (see _bind)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup = Wakeup(self._redis.time_us)
        self._background = BackgroundCalls()  # refunds, and whatever else is sent without waiting
        self._refunds = Refunds(self._background)
        # what this process has seen, besides the counters every limiter keeps (Accounting)
        self._round_trips = 0
        self._round_trip_total = 0.0
        self._levels: dict[str, float] = {}  # from the latest reply
        self._levels_at: float | None = None  # loop time of that reply

    # ------------------------------------------------------------------ the algorithm (subclasses)
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

    # ------------------------------------------------------------------ configuration
    @property
    def on_error(self) -> OnError:
        """The fault policy: ``"fail_closed"`` or ``"fail_open"``."""
        return self._faults.on_error

    @property
    def recheck(self) -> float:
        """Seconds after a failure during which calls apply ``on_error`` without trying Redis."""
        return self._faults.recheck

    @property
    def timeout(self) -> float:
        """Seconds to wait for Redis (connect and reply) before counting it unreachable."""
        return self._redis.timeout

    @property
    def margin_us(self) -> int:
        """The margin in whole microseconds (rounded up: never less than asked)."""
        return math.ceil(self.margin * 1e6)

    # ------------------------------------------------------------------ public surface
    async def acquire(self, weight: float = 1) -> Reservation:
        """Book ``weight`` units in Redis and sleep until the booked slot; return the :class:`Reservation`.

        The sleep ends at the booked start placed on this loop's clock (never before it; see
        :class:`~throttle_lab.shared.RedisClock`), not ``wait`` seconds after the reply arrived.

        Raises ``ValueError`` at once (no round trip) if ``weight`` is not positive or exceeds
        :attr:`max_weight`, and :class:`~throttle_lab.shared.SharedLimitUnavailable` if Redis cannot be
        reached and ``on_error="fail_closed"``.
        """
        self._check_weight(weight, zero_ok=self.weighs_in_tokens)
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
                await self._wakeup.sleep_until(at_us, self.margin)
            except asyncio.CancelledError:
                self._n_waiting -= 1
                self._cancelled += 1
                self._queued += 1
                if is_recording():
                    emit(loop.time(), Kind.CANCELLED, self.name, request, weight, {"after_grant": False})
                give_back = partial(self._give_back, decision.receipt)
                self._refunds.start(loop, give_back, self.name, weight, request)
                raise
            self._n_waiting -= 1
            self._queued += 1
        now = loop.time()
        waited = now - start
        self._note_wait(waited)
        lateness = self._grant(now, at_us, decision, weight, request, waited)
        return Reservation(weight, waited, at_us, decision.now_us, lateness=lateness)

    async def try_acquire(self, weight: float = 1) -> Reservation | None:
        """Book ``weight`` only if it can start right now; never sleeps.

        Unlike the in-process limiters' this is a coroutine: deciding takes a round trip.  Returns the
        :class:`Reservation` (truthy) or ``None``; nothing is booked when it says no.
        """
        self._check_weight(weight, zero_ok=self.weighs_in_tokens)
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
        lateness = self._grant(now, decision.now_us, decision, weight, request, 0.0)
        return Reservation(weight, now - start, decision.now_us, decision.now_us, lateness=lateness)

    @asynccontextmanager
    async def slot(self, weight: float = 1) -> AsyncIterator[Reservation]:
        """``async with limiter.slot(weight) as reservation:`` -- acquire on entry.  A rate is spent when
        granted, so there is nothing to release on exit."""
        yield await self.acquire(weight)

    @asynccontextmanager
    async def admit(self, tokens: float = 0) -> AsyncIterator[Admission]:
        """Room for one request (the :class:`~throttle_lab.core.gate.RequestGate` contract): what one
        request weighs here (:meth:`_request_weight`); a booking in Redis is not reconciled afterwards."""
        await self.acquire(self._request_weight(tokens))
        yield UNMETERED

    def _request_weight(self, tokens: float) -> float:
        """A request counts one unit (a :class:`SharedThrottler` charges its tokens instead)."""
        return 1

    async def peek(self, weight: float = 1) -> float:
        """Seconds a request of ``weight`` would wait if it were booked now (nothing is booked).

        Raises :class:`~throttle_lab.shared.SharedLimitUnavailable` when Redis cannot be reached, whatever
        ``on_error`` says.
        """
        self._check_weight(weight, zero_ok=self.weighs_in_tokens)
        self._bind()
        try:
            decision = await self._decide("peek", weight)
        except _Down as down:
            raise self._faults.unavailable(self.name, down.error) from down.error
        return decision.wait_us / 1e6

    async def reset(self) -> None:
        """Delete this limit's state in Redis: the next request starts from a fresh, full limit."""
        self._bind()
        await self._redis.client().delete(*self.redis_keys())

    async def wait_refunds(self) -> None:
        """Wait until the background refunds of cancelled bookings (and every other call sent in the
        background) have been answered."""
        await self._background.wait()

    async def aclose(self) -> None:
        """Wait for background refunds, then close the Redis client if this limiter made it."""
        await self.wait_refunds()
        await self._wakeup.aclose()
        await self._redis.aclose()

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
        down = " REDIS DOWN" if self._faults.outage else ""
        return (
            f"<{type(self).__name__} {self.name!r} key={self.key!r} {self._describe()}{seen} "
            f"waiting={self._n_waiting} granted={self._granted} on_error={self.on_error}{down}>"
        )

    # ------------------------------------------------------------------ machinery
    def _common_statistics(self) -> dict[str, Any]:
        """Every limiter's statistics fields (see ``Accounting``), plus the Redis side's."""
        return {
            **super()._common_statistics(),
            "key": self.redis_keys()[0],
            "on_error": self.on_error,
            "round_trips": self._round_trips,
            "round_trip_mean": self._round_trip_total / self._round_trips if self._round_trips else 0.0,
            "script_loads": self._redis.script_loads,
            "errors": self._faults.errors,
            "unthrottled": self._faults.unthrottled,
            "refunded": self._refunds.refunded,
            "not_refunded": self._refunds.not_refunded,
            "margin": self.margin,
            "overdue": self._wakeup.overdue,
            "max_lateness": self._wakeup.max_lateness,
        }

    def _key(self, suffix: str) -> str:
        # The braces are a hash tag: in Redis Cluster all of one limit's keys land on the same node, which
        # a multi-key script needs.
        return f"{self.prefix}:{{{self.key}}}:{suffix}"

    def _grant(
        self,
        now: float,
        at_us: int,
        decision: _Decision,
        weight: float,
        request: Hashable | None,
        waited: float,
    ) -> float:
        """Count a grant at loop time ``now`` of a booking starting at ``at_us`` and report it; return how
        late its caller is (see :meth:`Wakeup.lateness <throttle_lab.shared.wakeup.Wakeup.lateness>`)."""
        lateness = self._wakeup.lateness(at_us, now, self.margin)
        self._granted += 1
        if is_recording():
            detail = {"waited": waited, "at": at_us / 1e6, "late": lateness, **decision.levels}
            if lateness > self.margin:
                detail["overdue"] = True
            emit(now, Kind.GRANTED, self.name, request, weight, detail)
        return lateness

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._n_waiting:
                raise RuntimeError(
                    f"{self.name} has callers waiting on another event loop; create a limiter inside the "
                    "coroutine that uses it (one limiter per run)."
                )
            # Everything bound to a loop starts afresh on the new one: the client (its connections belong
            # to the loop that made them), the refunds in flight, the clock bracket, the outage's timing.
            self._loop = loop
            self._redis.bind()
            self._background.bind()
            self._wakeup.bind(loop)
            self._faults.bind(loop)
        return loop

    def _new_request_id(self) -> str:
        self._next_id += 1
        return f"{self._ids}{self._next_id}"

    async def _decide(self, mode: str, weight: float) -> _Decision:
        """One round trip: run the reserve script in ``mode``; raise ``_Down`` if Redis is unreachable."""
        loop = self._loop
        assert loop is not None
        started = loop.time()
        # (the request id is taken only if the call is made: not while Redis is known to be down)
        reply = await self._faults.call(
            self.name,
            lambda: self._call(self._reserve_script, self._args(mode, weight, self._new_request_id())),
        )
        finished = loop.time()
        self._round_trips += 1
        self._round_trip_total += finished - started
        decision = self._read(reply, weight)
        self._wakeup.clock.observe(started, finished, decision.now_us)  # the script read its clock in between
        self._levels = decision.levels
        self._levels_at = finished
        return decision

    def _when_down(
        self, error: BaseException, weight: float, start: float, request: Hashable | None
    ) -> Reservation:
        """Apply the fault policy: let the request through unthrottled, or refuse it."""
        if self.on_error == "fail_open":
            self._granted += 1
            return self._faults.let_through(self.name, error, weight, start, request)
        self._rejected += 1
        raise self._faults.refusal(self.name, error, weight, request) from error

    async def _give_back(self, receipt: Any) -> bool:
        """One refund round trip for a cancelled booking: did Redis give it back?"""
        call = partial(self._call, self._refund_script, self._refund_args(receipt))
        done = await self._faults.call_if_up(self.name, call)
        return done is not None and bool(int(done))

    async def _call(self, script: LuaScript, args: list[str]) -> Any:
        """One script round trip on this limit's keys (every script call goes through here)."""
        return await self._redis.call(script, self.redis_keys(), args)


def _keeps_the_gate_contract(limiter: SharedLimiter) -> RequestGate:
    """Never called: mypy checks here that every shared limiter fits :class:`RequestGate`."""
    return limiter
