"""Throttler: concurrency + requests per minute + tokens per minute, reserved as one, at send time.

An LLM API enforces several limits at once, and a request needs room under *all* of them::

                    ┌ concurrency: a free slot?          (max_concurrent)
    request ──────> ┼ requests:    one more this minute?  (rpm)          all yes -> take all three,
    (est. tokens)   └ tokens:      its tokens this minute? (tpm)          now, and send

Anthropic counts input and output tokens separately (ITPM, OTPM): give ``itpm=`` / ``otpm=`` and charge
each request a :class:`~throttle_lab.Tokens` (``Tokens(input=…, output=max_tokens)``); the reservation is
then all-or-nothing across requests, input tokens and output tokens (and ``tpm`` too, if given).

Taking them one after another goes wrong in a subtle way.  The article's design waits for the rate limit
first and *then* for a concurrency slot.  While it waits for the slot, the rate it booked ages: once the
slot frees, requests go out back to back, faster than the rate they were booked at, and the server --
which counts when requests *arrive* -- answers 429.  Here the three are one all-or-nothing reservation
made at the instant the request can go, and waiters are served strictly in arrival order across all
limits (a big TPM request at the head is not overtaken by small ones).

Tokens are an estimate (prompt + ``max_tokens``) until the response says what was really charged;
:meth:`Permit.reconcile` corrects the books.  A 429 anywhere should slow *everyone* down: :meth:`pause`
makes the whole throttler wait out the server's hint once, instead of every task retrying on its own --
and, since a 429 means the server's budget is spent, it empties the throttler's own buckets too.  A pause
that only delayed grants would let the buckets refill underneath it and end in a burst (35 requests at
once after ``pause(5)`` at 60 RPM), and a new round of 429s; a drained throttler resumes at the limit's
own pace.

>>> import asyncio
>>> from throttle_lab import Throttler, run
>>> async def main() -> list[float]:
...     throttler = Throttler(max_concurrent=2, rpm=60, tpm=1_000, burst_seconds=2.0)
...     loop = asyncio.get_running_loop()
...     sent = []
...     async def call(tokens: int) -> None:
...         async with throttler.slot(tokens=tokens):
...             sent.append(loop.time())
...             await asyncio.sleep(0.5)            # the API call
...     await asyncio.gather(*(call(10) for _ in range(5)))
...     return sent
>>> run(main())
[0.0, 0.0, 1.0, 2.0, 3.0]

With ``burst_seconds=2.0`` the RPM bucket holds 2 (two seconds' worth of 60 per minute, as a provider
enforcing "1 per second" would); two requests go at once, then one per second.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from .accounting import LimiterStatistics
from .events import Kind, _observers, emit
from .gate import RequestGate
from .limiters._base import Limiter
from .limiters.concurrency import ConcurrencyLimiter
from .limiters.token_bucket import TokenBucket
from .tokens import INPUT, ONE, OUTPUT, TOTAL, Tokens, check_parts, split_charge
from .tokens import units as _units  # (a local `units` names a count in the methods)
from .validation import check_non_negative, check_positive
from .waiting_room import _MUST_WAIT, _PLAIN, WaitingRoom, _thread_ident, finished

__all__ = ["Permit", "Throttler", "ThrottlerStatistics"]

INF = math.inf

_NOT_TAKEN: tuple[Any, ...] = ()  # the receipts of a slot's permit before its `async with` has taken it


class Permit:
    """What :meth:`Throttler.acquire` hands out: one request's reservation.

    Holds a concurrency slot (if the throttler has a concurrency limit) until :meth:`release`, and
    remembers the tokens charged so :meth:`reconcile` can correct them.
    """

    __slots__ = ("_receipts", "_released", "_throttler", "tokens")

    def __init__(self, throttler: Throttler, tokens: float, receipts: tuple[Any, ...]) -> None:
        self._throttler = throttler
        self.tokens = tokens
        self._receipts = receipts
        self._released = False

    @property
    def released(self) -> bool:
        return self._released

    def release(self) -> None:
        """Give the concurrency slot back (idempotent: a second call does nothing)."""
        if not self._released:
            self._released = True
            self._throttler._release_permit(self)

    def reconcile(self, actual_tokens: float) -> None:
        """Replace the estimated token charge by the real one (e.g. from the response's ``usage``).

        Over-estimates give tokens back to the budget; under-estimates are charged as debt.  Reconcile
        with what the *server* counted: a provider that charges prompt + ``max_tokens`` at admission
        does not refund unused completion tokens, so neither should you.

        A charge larger than the whole token budget is capped at the budget: no server admits more than
        that in one request, and a bogus ``usage`` (say ``2**31``) must not put the next request years
        away.

        A throttler with input and output budgets (``itpm`` / ``otpm``) is reconciled with a
        :class:`~throttle_lab.Tokens`: ``permit.reconcile(Tokens(input=usage.input_tokens,
        output=usage.output_tokens))`` -- Anthropic charges ``max_tokens`` against OTPM at admission and
        corrects it to the output really produced when the request ends.
        """
        check_non_negative("actual_tokens", actual_tokens)
        charged = self._throttler._capped_charge(actual_tokens)
        if charged != self.tokens or _input_of(charged) != _input_of(self.tokens):  # the total or the split
            self._throttler._adjust_tokens(self, charged)
            self.tokens = charged

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"<Permit tokens={self.tokens:g} {state}>"


class _PermitSlot(Permit):
    """What :meth:`Throttler.slot` returns: a permit not taken yet, taken on entry and released on exit
    (even when the body raises).

    A small class rather than ``@asynccontextmanager``, which builds and steps a generator for every
    request -- more than the reservation itself costs; and the permit itself rather than a wrapper
    around one: one object less per request.
    """

    __slots__ = ()

    def __init__(self, throttler: Throttler, tokens: float) -> None:
        self._throttler = throttler
        self.tokens = tokens
        self._receipts = _NOT_TAKEN
        self._released = True  # nothing to give back until `async with` has taken it

    async def __aenter__(self) -> Permit:
        # How every permit is taken (`Throttler.acquire` awaits this too): one coroutine on the path, with
        # `WaitingRoom._grant_now` inlined (keep the two the same).
        throttler, tokens = self._throttler, self.tokens
        if throttler._splits:
            self.tokens = tokens = throttler._split(tokens)
        if not (tokens.__class__ in _PLAIN and throttler._lightest <= tokens <= throttler._heaviest):
            throttler._check_weight(tokens, zero_ok=True)
        loop = throttler._loop
        if loop is None or throttler._thread != _thread_ident() or not loop.is_running():
            loop = throttler._bind()
        now = loop.time()
        if throttler._n_waiting or (receipts := throttler._take_now(tokens, now)) is _MUST_WAIT:
            receipts = await throttler._wait(loop, tokens, now)
        else:
            throttler._granted += 1
            if _observers():
                emit(now, Kind.GRANTED, throttler.name, None, tokens, throttler._grant_detail(0.0, now))
        self._receipts = receipts
        self._released = False
        return self

    def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> Awaitable[None]:
        # A plain method returning a finished future: no coroutine to create and run on the way out.
        throttler = self._throttler
        if not self._released:
            self._released = True
            throttler._release_permit(self)
        return throttler._exit_done


def _input_of(tokens: float) -> float | None:
    return tokens.input if isinstance(tokens, Tokens) else None


@dataclass(frozen=True, slots=True)
class ThrottlerStatistics(LimiterStatistics):
    in_flight: float
    paused_until: float
    requests_level: float | None
    tokens_level: float | None
    tokens_granted: float
    input_tokens_level: float | None = None
    output_tokens_level: float | None = None


class Throttler(WaitingRoom):
    """One reservation across concurrency, requests-per-minute and tokens-per-minute limits.

    Not a limiter itself but a composition of them: a :class:`~throttle_lab.ConcurrencyLimiter` and two
    rate *meters* (token buckets by default), asked together in one waiting room.  It hands out
    :class:`Permit` objects where a limiter hands out units, and is a
    :class:`~throttle_lab.core.gate.RequestGate` like every limiter (``admit(tokens)``).

    Args:
        max_concurrent: requests in flight at once (None: no limit).
        rpm: requests per minute (None: no limit).
        tpm: tokens per minute (None: no limit), charged each request's whole token estimate.
        itpm, otpm: input and output tokens per minute (None: no limit), Anthropic's split budgets.  With
            either, every request's charge is a :class:`~throttle_lab.Tokens` (``acquire(Tokens(input=…,
            output=…))``); a plain number is refused, since the throttler could not tell its parts.
        burst_seconds: how many seconds' worth of each per-minute limit may go at once.  Each limit becomes
            a token bucket holding ``limit x burst_seconds / 60`` and refilling at ``limit / 60`` per
            second -- the way providers enforce them.  60 (default) lets a fresh minute's whole budget go
            at once; use the server's own span (e.g. 1 s) to never burst above what it tolerates.  (Not a
            window in the sense of :class:`~throttle_lab.SlidingWindowLog`'s ``window_seconds``: the
            bucket refills continuously.  ``window=`` is the 0.1 spelling, still accepted.)
        requests, tokens, input_tokens, output_tokens: limiters to use instead of the default buckets (e.g. a
            ``SlidingWindowLog``).
            They serve as *meters*: the throttler asks them when a request fits and books it; their own
            queues stay empty.
        name: how events and ``repr`` call it.
        resolution: seconds a queued request may be granted late so that one wake-up grants several
            (default 0: each on the dot).  Grants are never early, so every limit still holds at the
            callers; the default minute-sized buckets hold far more than ``rate x resolution``, so they
            lose no rate to it.  See ``throttle_lab/core/waiting_room.py``.

    Invalid values raise ``ValueError``; ``acquire(tokens=...)`` larger than the TPM bucket can ever
    hold raises at once instead of waiting forever.
    """

    level_name = "in_flight"
    weighs_in_tokens = True  # acquire's weight is the request's tokens; zero is allowed

    def __init__(
        self,
        max_concurrent: int | None = None,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        itpm: float | None = None,
        otpm: float | None = None,
        burst_seconds: float | None = None,
        requests: Limiter | None = None,
        tokens: Limiter | None = None,
        input_tokens: Limiter | None = None,
        output_tokens: Limiter | None = None,
        name: str = "throttler",
        window: float | None = None,
        resolution: float = 0.0,
    ) -> None:
        super().__init__(name=name, resolution=resolution)
        if burst_seconds is not None and window is not None:
            raise ValueError("give burst_seconds= (window= is its old name), not both")
        span = burst_seconds if burst_seconds is not None else window if window is not None else 60.0
        self.burst_seconds = check_positive("burst_seconds" if window is None else "window", span)
        if rpm is not None and requests is not None:
            raise ValueError("give rpm= or requests=, not both")
        for label, limit, meter_given, meter_name in (
            ("tpm", tpm, tokens, "tokens"),
            ("itpm", itpm, input_tokens, "input_tokens"),
            ("otpm", otpm, output_tokens, "output_tokens"),
        ):
            if limit is not None and meter_given is not None:
                raise ValueError(f"give {label}= or {meter_name}=, not both")
        self.concurrency = (
            ConcurrencyLimiter(max_concurrent, name=f"{name}.concurrency")
            if max_concurrent is not None
            else None
        )
        self.requests = requests if requests is not None else self._bucket("rpm", rpm, f"{name}.requests")
        self.tokens = tokens if tokens is not None else self._bucket("tpm", tpm, f"{name}.tokens")
        self.input_tokens = (
            input_tokens if input_tokens is not None else self._bucket("itpm", itpm, f"{name}.input_tokens")
        )
        self.output_tokens = (
            output_tokens
            if output_tokens is not None
            else self._bucket("otpm", otpm, f"{name}.output_tokens")
        )
        meters_given = [
            m for m in (self.requests, self.tokens, self.input_tokens, self.output_tokens) if m is not None
        ]
        if len({id(m) for m in meters_given}) < len(meters_given):
            raise ValueError(
                "requests=, tokens=, input_tokens= and output_tokens= must be different limiters"
            )
        if self.requests is not None and self.requests.max_weight < 1:
            # Every request takes one unit: a bucket that holds less than one would never grant any.
            raise ValueError(
                f"the requests budget holds {self.requests.max_weight:g} of a request "
                "(rpm x burst_seconds / 60): raise burst_seconds to at least 60 / rpm seconds"
            )
        for meter in meters_given:
            if meter.holds_capacity:
                raise ValueError(
                    f"{meter.name} holds capacity until released; pass it as max_concurrent instead"
                )
            owner = meter._owner() if meter._owner is not None else None
            if owner is not None:
                # Each throttler restarts its meters when it binds to a loop and books them as if alone:
                # shared, the second would wipe the first's bookings and twice the limit would get through.
                raise ValueError(
                    f"{meter.name} already meters {getattr(owner, 'name', owner)!r}; give each throttler "
                    "its own meter (to share one budget, share the Throttler itself)"
                )
        for meter in meters_given:
            meter._owner = weakref.ref(self)  # weak: a meter outlives a throttler that is gone
        # (meter, what it is charged) for each limit this throttler has, built once: acquire walks it.
        # The receipts of a grant are a tuple in this same order.
        self._meters: tuple[tuple[Limiter, int], ...] = tuple(
            (meter, part)
            for meter, part in (
                (self.concurrency, ONE),
                (self.requests, ONE),
                (self.tokens, TOTAL),
                (self.input_tokens, INPUT),
                (self.output_tokens, OUTPUT),
            )
            if meter is not None
        )
        # For `_take_now`: each rate meter with "is it charged one per request?" (concurrency apart).
        self._rates = tuple(
            (meter, part == ONE) for meter, part in self._meters if meter is not self.concurrency
        )
        self._leading_rates = self._rates[:-1]
        self._splits = self.input_tokens is not None or self.output_tokens is not None
        self._quick = bool(self._meters) and not self._splits  # may `_take_now` take its short way?
        self._paused_until = -INF
        self._tokens_granted = 0.0

    def _bucket(self, what: str, limit: float | None, name: str) -> TokenBucket | None:
        if limit is None:
            return None
        check_positive(what, limit)
        return TokenBucket(per_minute=limit, capacity=limit * self.burst_seconds / 60.0, name=name)

    @property
    def window(self) -> float:
        """The 0.1 name of :attr:`burst_seconds`."""
        return self.burst_seconds

    # ------------------------------------------------------------------ public surface
    async def acquire(self, tokens: float = 0) -> Permit:
        """Wait in line until a slot, a request and ``tokens`` tokens are all available; take them together.

        Returns a :class:`Permit`; call ``permit.release()`` when the response is complete (or use
        :meth:`slot`, which does it for you).  With ``itpm`` / ``otpm``, ``tokens`` is a
        :class:`~throttle_lab.Tokens`.
        """
        return await _PermitSlot(self, tokens).__aenter__()  # the one way a permit is taken

    def try_acquire(self, tokens: float = 0) -> Permit | None:
        """A permit if one is available now without jumping the queue, else ``None``."""
        if self._splits:
            tokens = self._split(tokens)
        self._check_weight(tokens, zero_ok=True)
        loop = self._bind()
        now = loop.time()
        if self._n_waiting or self._ready_at(tokens, now) > now:
            return None
        receipts = self._take(tokens, now)
        self._granted += 1
        if _observers():
            emit(now, Kind.GRANTED, self.name, None, tokens, self._grant_detail(0.0, now))
        return Permit(self, tokens, receipts)

    def slot(self, tokens: float = 0) -> _PermitSlot:
        """``async with throttler.slot(tokens=est) as permit:`` -- released on exit, even on error."""
        return _PermitSlot(self, tokens)

    def admit(self, tokens: float = 0) -> _PermitSlot:
        """Room for one request of ``tokens`` (the :class:`~throttle_lab.core.gate.RequestGate` contract):
        the same as :meth:`slot`."""
        return _PermitSlot(self, tokens)

    def release(self, permit: Permit) -> None:
        """Same as ``permit.release()``."""
        permit.release()

    def pause(self, seconds: float, *, drain: bool = True) -> None:
        """A shared cool-down after a 429: hold every request for ``seconds`` from now.

        A 429 says the server's budget is spent, so by default the throttler's own meters are drained as
        well (buckets emptied, windows filled as if used at the limit's own pace): when the pause ends,
        requests go at the limit's pace instead of in one burst of everything the buckets earned during
        the pause.  ``drain=False`` only holds the requests (a pause for some other reason).

        Pauses only ever extend: a shorter pause than the one in force holds nothing longer (it still
        drains: the server has just said its budget is spent).

        >>> import asyncio
        >>> from throttle_lab import Throttler, run
        >>> async def main() -> list[float]:
        ...     throttler = Throttler(rpm=60)           # a full minute's budget: 60 at once
        ...     loop = asyncio.get_running_loop()
        ...     for _ in range(30):
        ...         await throttler.acquire()           # 30 left in our books...
        ...     throttler.pause(2)                      # ...but the server said 429, retry after 2 s
        ...     times = []
        ...     for _ in range(4):
        ...         await throttler.acquire()
        ...         times.append(loop.time())
        ...     return times
        >>> run(main())                                 # 2 earned during the pause, then one a second
        [2.0, 2.0, 3.0, 4.0]
        """
        check_non_negative("seconds", seconds)
        loop = self._bind()
        self.pause_until(loop.time() + seconds, drain=drain)

    def pause_until(self, when: float, *, drain: bool = True) -> None:
        """Hold every request until loop time ``when`` (see :meth:`pause`; a pause in force that ends
        later is kept)."""
        if isinstance(when, bool) or not isinstance(when, int | float) or math.isnan(when):
            raise ValueError(f"when must be a loop time, got {when!r}")
        loop = self._bind()
        now = loop.time()
        if drain:
            for meter, _ in self._meters:
                meter._drain(now)
        extends = when > self._paused_until
        if extends:
            self._paused_until = when
        if extends and _observers():
            emit(
                now,
                Kind.PAUSED,
                self.name,
                None,
                0,
                {"until": self._paused_until, "seconds": self._paused_until - now, "drained": drain},
            )
        self._wake()

    @property
    def paused_until(self) -> float:
        """Loop time until which requests are held (``-inf`` if never paused)."""
        return self._paused_until

    @property
    def in_flight(self) -> float:
        return self.concurrency.in_use if self.concurrency is not None else 0

    def set_limits(
        self,
        *,
        rpm: float | None = None,
        tpm: float | None = None,
        itpm: float | None = None,
        otpm: float | None = None,
    ) -> None:
        """Change the per-minute rates from now on (adaptive throttling uses this).

        Only the refill rate changes; the bucket sizes stay.  Works when the meters support ``set_rate``
        (the default buckets and :class:`~throttle_lab.GCRA` do).
        """
        # Check everything first, change nothing until all of it is valid: a half-applied change (rpm
        # changed, then an error for tpm) would leave limits nobody asked for.
        changes: list[tuple[Callable[[float], None], float]] = []
        for label, meter, limit in (
            ("rpm", self.requests, rpm),
            ("tpm", self.tokens, tpm),
            ("itpm", self.input_tokens, itpm),
            ("otpm", self.output_tokens, otpm),
        ):
            if limit is None:
                continue
            check_positive(label, limit)
            setter: Callable[[float], None] | None = getattr(meter, "set_rate", None)
            if setter is None:
                raise ValueError(f"{label}: this throttler has no adjustable {label} meter")
            changes.append((setter, limit / 60.0))
        for setter, rate in changes:
            setter(rate)
        self._wake()

    @property
    def max_weight(self) -> float:
        return self.tokens.max_weight if self.tokens is not None else INF

    # ------------------------------------------------------------------ charges with parts
    def _split(self, tokens: float) -> float:
        """The charge as :class:`Tokens` (a throttler with input/output meters needs both parts)."""
        return split_charge(tokens, self.name)

    def _check_weight(self, weight: float, *, zero_ok: bool = False) -> None:
        super()._check_weight(weight, zero_ok=zero_ok)
        if isinstance(weight, Tokens):
            budgets = (
                (part, meter.max_weight, f"what {meter.name} can ever grant") for meter, part in self._meters
            )
            try:
                check_parts(weight, budgets)
            except ValueError:
                self._rejected += 1
                raise

    def _capped_charge(self, actual: float) -> float:
        """``actual`` capped at what each budget can hold (see :meth:`Permit.reconcile`)."""
        if not self._splits:
            return min(actual, self.max_weight)
        if not isinstance(actual, Tokens):
            raise ValueError(
                f"{self.name} meters input and output tokens separately: reconcile with "
                f"Tokens(input=..., output=...), not {actual!r}"
            )
        cap_in = self.input_tokens.max_weight if self.input_tokens is not None else INF
        cap_out = self.output_tokens.max_weight if self.output_tokens is not None else INF
        spent_in, spent_out = min(actual.input, cap_in), min(actual.output, cap_out)
        total = spent_in + spent_out
        if total > self.max_weight:  # a tpm meter too: scale both parts down to fit it
            spent_in, spent_out = spent_in * self.max_weight / total, spent_out * self.max_weight / total
        return Tokens(spent_in, spent_out)

    # ------------------------------------------------------------------ the combined algorithm
    def _ready_at(self, weight: float, now: float) -> float:
        # All-or-nothing: the request can go when the last of its limits lets it (and no pause holds).
        ready = self._paused_until
        for meter, part in self._meters:
            # _units(weight, part), with its two common answers inline: the timer asks on every grant.
            units = 1 if part == ONE else weight if part == TOTAL else _units(weight, part)
            if units > 0:
                at = meter._ready_at(units, now)
                if at > ready:
                    ready = at
        return ready

    def _take_now(self, weight: float, now: float) -> Any:
        # The path of every uncontended request, all or nothing as `_ready_at` then `_take` are, in fewer
        # calls.  The concurrency slot is taken first, in one step: it is a count, so giving it back when a
        # rate refuses restores it exactly.  Then every rate meter but the last is asked, the last takes
        # its share in one step if it can (so no rate is booked yet if it cannot), and the others book
        # theirs.  Split meters: the general way.
        if not self._quick:
            return super()._take_now(weight, now)
        if self._paused_until > now:
            return _MUST_WAIT
        concurrency = self.concurrency
        if concurrency is not None and concurrency._take_now(1, now) is _MUST_WAIT:
            return _MUST_WAIT
        rates = self._rates
        if not rates:
            return (None,)  # concurrency alone
        leading = self._leading_rates
        for meter, per_request in leading:
            units = 1 if per_request else weight
            if units > 0 and meter._ready_at(units, now) > now:
                if concurrency is not None:
                    concurrency._refund(1, None, now)
                return _MUST_WAIT
        last, per_request = rates[-1]
        units = 1 if per_request else weight
        last_receipt = last._take_now(units, now) if units > 0 else None
        if last_receipt is _MUST_WAIT:
            if concurrency is not None:
                concurrency._refund(1, None, now)
            return _MUST_WAIT
        self._tokens_granted += weight
        # The receipts in meter order (concurrency's is None), built without a list.
        receipts: tuple[Any, ...] = () if concurrency is None else (None,)
        for meter, per_request in leading:
            units = 1 if per_request else weight
            receipts += (meter._take(units, now) if units > 0 else None,)
        return (*receipts, last_receipt)

    def _take(self, weight: float, now: float) -> tuple[Any, ...]:
        receipts = []
        for meter, part in self._meters:
            units = _units(weight, part)
            receipts.append(meter._take(units, now) if units > 0 else None)
        self._tokens_granted += weight
        return tuple(receipts)

    def _take_pending(self, weight: float, now: float) -> tuple[Any, ...]:
        receipts = []
        for meter, part in self._meters:
            units = 1 if part == ONE else weight if part == TOTAL else _units(weight, part)
            receipts.append(meter._take_pending(units, now) if units > 0 else None)
        self._tokens_granted += weight
        return tuple(receipts)

    def _settle(self, weight: float, receipt: Any, now: float) -> None:
        for (meter, part), booked in zip(self._meters, receipt, strict=True):
            units = 1 if part == ONE else weight if part == TOTAL else _units(weight, part)
            if units > 0:
                meter._settle(units, booked, now)

    def _at_rest(self, now: float) -> bool:
        return (
            not self._n_waiting
            and self._paused_until <= now
            and all(meter._at_rest(now) for meter, _ in self._meters)
        )

    def at_rest(self) -> bool:
        """True when nothing is waiting, in flight, paused or booked: a fresh throttler would behave the
        same, so forgetting this one breaks no promise (:class:`KeyedThrottler` relies on it)."""
        now = self._now_for_repr()
        return True if now is None else self._at_rest(now)

    def _refund(self, weight: float, receipt: Any, now: float) -> None:
        for (meter, part), booked in zip(self._meters, receipt, strict=True):
            units = _units(weight, part)
            if units > 0:
                meter._refund(units, booked, now)
        self._tokens_granted -= weight

    def _level(self, now: float) -> float:
        return self.in_flight

    def _bound_to(self, loop: asyncio.AbstractEventLoop) -> None:
        self._exit_done = finished(loop, None)  # what every `async with slot()` awaits on its way out
        for meter, _ in self._meters:
            meter._bound_to(loop)  # bound with the throttler (`_restart`), not through their own `_bind`

    def _restart(self) -> None:
        self._paused_until = -INF
        for meter, _ in self._meters:
            meter._loop = self._loop
            meter._restart()

    def _grant_detail(self, waited: float, now: float) -> dict[str, Any]:
        detail: dict[str, Any] = {"waited": waited, "in_flight": self.in_flight}
        if self.requests is not None:
            detail["requests_left"] = self.requests._level(now)
        for key, meter in (
            ("tokens_left", self.tokens),
            ("input_tokens_left", self.input_tokens),
            ("output_tokens_left", self.output_tokens),
        ):
            if meter is not None:
                detail[key] = meter._level(now)
        return detail

    def _release_permit(self, permit: Permit) -> None:
        loop = self._loop
        if self.concurrency is not None:
            self.concurrency._refund(1, None, 0.0)
        if loop is not None and _observers():
            emit(loop.time(), Kind.RELEASED, self.name, None, permit.tokens, {"in_flight": self.in_flight})
        # A freed slot matters only to someone waiting for one: a head with a timer set is waiting for a
        # rate (a full concurrency meter would have said "never", and no timer would be set).
        if self._n_waiting and self._timer_when == INF:
            self._wake()

    def _adjust_tokens(self, permit: Permit, charged: float) -> None:
        loop = self._loop
        if loop is None:
            return
        now = loop.time()
        detail: dict[str, Any] = {}
        for (meter, part), receipt in zip(self._meters, permit._receipts, strict=True):
            if part == ONE:
                continue
            booked = _units(permit.tokens, part)
            delta = _units(charged, part) - booked
            if not delta:
                pass
            elif receipt is None and booked == 0:
                # Nothing was booked at grant time (no estimate): charge the real usage now, as debt.
                meter._take(delta, now)
            else:
                meter._adjust(receipt, delta, now)
            key = (
                "tokens_left"
                if part == TOTAL
                else "input_tokens_left"
                if part == INPUT
                else "output_tokens_left"
            )
            detail[key] = meter._level(now)
        delta_total = charged - permit.tokens
        self._tokens_granted += delta_total
        if _observers() and detail:
            emit(now, Kind.ADJUSTED, self.name, None, delta_total, detail)
        self._wake()

    # ------------------------------------------------------------------ observation
    def statistics(self) -> ThrottlerStatistics:
        now = self._now_for_repr()
        return ThrottlerStatistics(
            **self._common_statistics(),
            in_flight=self.in_flight,
            paused_until=self._paused_until,
            requests_level=None if self.requests is None or now is None else self.requests._level(now),
            tokens_level=None if self.tokens is None or now is None else self.tokens._level(now),
            tokens_granted=self._tokens_granted,
            input_tokens_level=None
            if self.input_tokens is None or now is None
            else self.input_tokens._level(now),
            output_tokens_level=None
            if self.output_tokens is None or now is None
            else self.output_tokens._level(now),
        )

    def __repr__(self) -> str:
        now = self._now_for_repr()
        parts = [f"<Throttler {self.name!r}"]
        if self.concurrency is not None:
            parts.append(f"in_flight={self.in_flight:g}/{self.concurrency.max_concurrent}")
        for label, meter in (
            ("requests", self.requests),
            ("tokens", self.tokens),
            ("input_tokens", self.input_tokens),
            ("output_tokens", self.output_tokens),
        ):
            if meter is not None:
                level = "?" if now is None else f"{meter._level(now):.1f}"
                parts.append(f"{label}={level}")
        if now is not None and self._paused_until > now:
            parts.append(f"paused {self._paused_until - now:.2f}s more")
        parts.append(f"waiting={self._n_waiting} granted={self._granted}>")
        return " ".join(parts)


def _keeps_the_gate_contract(limiter: Limiter, throttler: Throttler) -> tuple[RequestGate, RequestGate]:
    """Never called: mypy checks here that a limiter and a throttler both fit :class:`RequestGate`."""
    return limiter, throttler
