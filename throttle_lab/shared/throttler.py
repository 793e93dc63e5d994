"""SharedThrottler: requests and tokens per minute, booked together in Redis for every worker.

An LLM API key has two rate limits at once, and a request needs room under both.  Booking them one after
the other across processes goes wrong the same way it does in one process (a request holds its RPM slot
while it waits for tokens, or the other way round); here both are decided by **one** script
(``scripts.THROTTLER_RESERVE``), all or nothing::

    KEY  throttle_lab:{<key>}:throttler   a hash: one GCRA timestamp (µs of Redis time) per budget --
                                          'rpm', 'tpm', and Anthropic's 'itpm' / 'otpm' when given --,
                                          'last' (latest booked start), 'seq' (bookings so far), and each
                                          as it was before the latest booking ('rpm0', ..., 'last0');
                                          TTL: until every timestamp and 'last' have passed

    script: start = max(last, when each budget allows this request's units)
            book them all at `start` (each TAT goes on from start + margin);  answer start - now

With ``itpm=`` / ``otpm=`` (Anthropic's input and output tokens per minute), charge each request a
:class:`~throttle_lab.Tokens` (``acquire(Tokens(input=…, output=…))``), as with the in-process
:class:`~throttle_lab.Throttler`: its input part books the ITPM budget, its output part the OTPM budget,
its total the TPM budget, all in the same script.

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

A 429 anywhere should slow every worker down: :meth:`~SharedThrottler.pause` sends one script that holds
every booking made after it until the pause ends and drains every budget (as
:meth:`throttle_lab.Throttler.pause` does in one process), so :class:`~throttle_lab.ThrottledTransport`
cools all the workers down at once.

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

from ..core.events import Kind, emit, is_recording
from ..core.tokens import INPUT, ONE, OUTPUT, TOTAL, Tokens, check_parts, split_charge
from ..core.tokens import units as _units  # (a local `units` names a count in the methods)
from ..core.validation import check_non_negative, check_positive
from ._base import DEFAULT_MARGIN, SharedLimiter
from .connection import _arg, _text
from .faults import OnError
from .reservation import Reservation, SharedLimiterStatistics, _Decision
from .scripts import THROTTLER_PAUSE, THROTTLER_REFUND, THROTTLER_RESERVE

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["SharedThrottler", "SharedThrottlerStatistics"]

INF = float("inf")

# What each budget's level is called in events and the repr (the names the in-process Throttler uses).
_LEVELS = {
    "rpm": "requests_left",
    "tpm": "tokens_left",
    "itpm": "input_tokens_left",
    "otpm": "output_tokens_left",
}


@dataclass(frozen=True, slots=True)
class SharedThrottlerStatistics(SharedLimiterStatistics):
    rpm: float | None
    tpm: float | None
    window: float
    tokens_granted: float
    itpm: float | None = None
    otpm: float | None = None


class SharedThrottler(SharedLimiter):
    """One all-or-nothing booking of a request and its tokens, shared by every worker through Redis.

    Args:
        redis: a ``redis://`` URL or a ``redis.asyncio.Redis``.
        key: what the limits are shared under (the API key's id).
        rpm: requests per minute (None: no RPM limit).
        tpm: tokens per minute (None: no TPM limit).
        itpm, otpm: input and output tokens per minute (None: no limit); with either, every charge is a
            :class:`~throttle_lab.Tokens`.  At least one of the four limits.
        window: the span, in seconds, over which the per-minute limits may burst: each holds
            ``limit × window / 60`` (the requests one at least 1).
        margin: seconds each booking leaves for its caller to proceed late (default
            :data:`~throttle_lab.shared.DEFAULT_MARGIN`; see the module docstring).
        name, on_error, prefix, timeout, recheck: see :class:`~throttle_lab.shared.SharedLimiter`.

    ``acquire(tokens)`` larger than the TPM budget can ever hold (``tpm × window / 60``) -- or with a part
    larger than its ITPM/OTPM budget -- raises ``ValueError`` at once, without a round trip.
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
        itpm: float | None = None,
        otpm: float | None = None,
        window: float = 60.0,
        name: str | None = None,
        on_error: OnError = "fail_closed",
        prefix: str = "throttle_lab",
        timeout: float = 2.0,
        recheck: float = 1.0,
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        if rpm is None and tpm is None and itpm is None and otpm is None:
            raise ValueError("give at least one of rpm=, tpm=, itpm= and otpm=")
        self.rpm = None if rpm is None else check_positive("rpm", rpm)
        self.tpm = None if tpm is None else check_positive("tpm", tpm)
        self.itpm = None if itpm is None else check_positive("itpm", itpm)
        self.otpm = None if otpm is None else check_positive("otpm", otpm)
        self.window = check_positive("window", window)
        self._splits = self.itpm is not None or self.otpm is not None
        # (name in the hash, per-minute limit, what a request is charged) for each limited budget, in the
        # order the script takes them and answers what is left of them.
        self._budgets: tuple[tuple[str, float, int], ...] = tuple(
            (field, limit, part)
            for field, limit, part in (
                ("rpm", self.rpm, ONE),
                ("tpm", self.tpm, TOTAL),
                ("itpm", self.itpm, INPUT),
                ("otpm", self.otpm, OUTPUT),
            )
            if limit is not None
        )
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
        if self._splits:
            tokens = self._split(tokens)
        reservation = await super().acquire(tokens)
        self._tokens_granted += tokens
        return reservation

    async def try_acquire(self, tokens: float = 0) -> Reservation | None:
        """Book a request and ``tokens`` only if both fit right now; ``None`` (nothing booked) otherwise."""
        if self._splits:
            tokens = self._split(tokens)
        reservation = await super().try_acquire(tokens)
        if reservation is not None:
            self._tokens_granted += tokens
        return reservation

    def pause(self, seconds: float, *, drain: bool = True) -> None:
        """A shared cool-down after a 429: hold every worker's next bookings for ``seconds`` from now.

        One script, sent in the background (the transport calls this from code that cannot wait): no
        booking that reaches Redis after it starts before the pause ends -- whichever worker makes it --
        and, unless ``drain=False``, every budget is emptied as if just used at its own pace, so requests
        resume at the limit's pace rather than in a burst.  Bookings made before it keep their starts.
        While Redis is unreachable the pause is lost (nothing can hold the other workers then); await
        :meth:`wait_pauses` to know it has landed.
        """
        check_non_negative("seconds", seconds)
        loop = self._bind()
        args = [str(round(seconds * 1e6)), "1" if drain else "0", str(len(self._budgets))]
        for field, limit, part in self._budgets:
            args += [field, _arg(self._limit(limit, part)[1])]
        if is_recording():
            emit(loop.time(), Kind.PAUSED, self.name, None, 0, {"seconds": seconds, "drained": drain})

        async def send() -> None:
            await self._faults.call_if_up(self.name, lambda: self._call(THROTTLER_PAUSE, args))

        self._background.start(loop, send())  # with the refunds: `aclose` waits for it too

    async def wait_pauses(self) -> None:
        """Wait until every pause sent from here has been answered by Redis (or given up on)."""
        await self._background.wait()

    async def peek(self, tokens: float = 0) -> float:
        """Seconds a request of ``tokens`` would wait if it were booked now (nothing is booked)."""
        return await super().peek(self._split(tokens) if self._splits else tokens)

    def _request_weight(self, tokens: float) -> float:
        return tokens  # a throttler's weight is the request's tokens (zero: the request alone)

    def _split(self, tokens: float) -> float:
        return split_charge(tokens, self.name)

    def _check_weight(self, weight: float, *, zero_ok: bool = False) -> None:
        super()._check_weight(weight, zero_ok=zero_ok)
        if isinstance(weight, Tokens):
            budgets = (
                (part, limit * self.window / 60.0, f"the {field} budget")
                for field, limit, part in self._budgets
            )
            try:
                check_parts(weight, budgets)
            except ValueError:
                self._rejected += 1
                raise

    @property
    def max_weight(self) -> float:
        return INF if self.tpm is None else self.tpm * self.window / 60.0

    # ------------------------------------------------------------------ the script's arguments
    def _limit(self, limit: float, part: int) -> tuple[float, float]:
        """µs per unit and the tolerance of one budget."""
        interval = 60e6 / limit
        if part == ONE:
            return interval, max(1.0, limit * self.window / 60.0) * interval  # holds at least one request
        return interval, self.window * 1e6  # (limit * window / 60) tokens of `interval` µs each

    def redis_keys(self) -> list[str]:
        return [self._key("throttler")]

    def _args(self, mode: str, weight: float, request_id: str) -> list[str]:
        args = [mode, str(self.margin_us), str(len(self._budgets))]
        for field, limit, part in self._budgets:
            interval, tolerance = self._limit(limit, part)
            args += [field, _arg(interval), _arg(tolerance), _arg(_units(weight, part))]
        return args

    def _read(self, reply: Sequence[Any], weight: float) -> _Decision:
        booked, wait, now, seq, *left = reply
        levels = {
            _LEVELS[field]: float(_text(value))
            for (field, _, _), value in zip(self._budgets, left, strict=True)
        }
        return _Decision(bool(int(booked)), int(wait), int(now), _text(seq), levels)

    def _refund_args(self, receipt: Any) -> list[str]:
        return [str(receipt), *(field for field, _, _ in self._budgets)]

    def _describe(self) -> str:
        parts = []
        for field, limit, _ in self._budgets:
            parts.append(f"{field}={limit:g}")
        parts.append(f"window={self.window:g}s")
        parts.append(f"margin={self.margin * 1e3:g}ms")
        return " ".join(parts)

    def statistics(self) -> SharedThrottlerStatistics:
        return SharedThrottlerStatistics(
            **self._common_statistics(),
            rpm=self.rpm,
            tpm=self.tpm,
            window=self.window,
            itpm=self.itpm,
            otpm=self.otpm,
            tokens_granted=self._tokens_granted,
        )
