"""Lesson 09 -- capstone.  Design your own limiter, grade it alone, then race it against ours.

The exercise: write a limiter class -- a bucket or a window, your choice -- that takes its promise as
keyword arguments (``MyLimiter(rate=1.0, capacity=5)`` or ``MyLimiter(max_requests=5, window_seconds=5.0)``)
and has ``async def acquire(self, weight=1)``.  Then::

    lesson09.check(MyLimiter, promise="bucket")      # or promise="window", or your own numbers as a dict

grades it twice: alone, by :func:`throttle_lab.lab.grading.check_limiter` (the promise holds in every window,
first come first served, impossible requests fail fast, no polling, cancellation-safe), and in a race
against the mock server, by :func:`throttle_lab.lab.grading.check_trace` (no 429s, the limit used), next to
throttle_lab's own ``Throttler`` on the same traffic.  Once it passes alone, it is graded alone once more
at :data:`OTHER_PROMISES` (the same kind of promise, other numbers), so numbers typed into the class are
caught.

Stuck?  :func:`hint` prints a hint (the next, more concrete one on each call) and :func:`solution` the
reference solution (a sliding-window log).
"""

from __future__ import annotations

import asyncio
import contextvars
import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from mock_server import ServerConfig

from ...core.events import Event
from ...core.gate import UNMETERED, Admission
from ...core.runtime import VirtualTimeError, run
from ...core.trace import Trace
from ...core.validation import is_real
from ..experiments import ClientStack, Comparison, Design, Workload, compare, seeded_retry
from ..grading import CheckResult, Guide, Report, check_limiter, check_trace

__all__ = [
    "OTHER_PROMISES",
    "PROMISES",
    "RACE_WORKLOAD",
    "AcquireOnlyGate",
    "Gate",
    "check",
    "design_for",
    "hint",
    "promise_of",
    "race",
    "server_for",
    "solution",
    "trickle_arrivals",
]

PROMISES: Mapping[str, Mapping[str, float]] = {
    "bucket": {"rate": 1.0, "capacity": 5},
    "window": {"max_requests": 5, "window_seconds": 5.0},
}
"""The two standard promises: a bucket of 5 refilling 1 per second, or at most 5 in any 5 seconds."""
OTHER_PROMISES: Mapping[str, Mapping[str, float]] = {
    "bucket": {"rate": 0.5, "capacity": 3},
    "window": {"max_requests": 3, "window_seconds": 0.3},
}
"""The second promise of each kind ``check`` grades a limiter at (another one, if yours is this one)."""
RACE_WORKLOAD = Workload(requests=60)
"""The race's traffic: 60 requests, all at once."""

_TITLE = "lesson09.check"

_GUIDE = Guide(
    "lesson09",
    [
        "Pick a promise and keep only the state its rule needs: tokens at one moment in time (a bucket) or "
        "the grant times still inside the window (a window). Then give it the shape of lessons 03 and 04: "
        "a line of waiters, and one timer for the head of the line.",
        "In acquire: raise ValueError if weight can never fit; grant at once if nobody waits and it fits; "
        "otherwise append a future to a collections.deque and await it. Take capacity only when a waiter "
        "is granted, never before it waits (no reserve-then-sleep): a waiter that gives up must leave "
        "nothing behind.",
        "One _serve(loop) method: grant to the head while it fits (future.set_result), then arm one "
        "loop.call_at for the moment the new head can go -- computed with the same expression your "
        "expiry test uses (t0 + window <= now). On CancelledError in acquire: give back what a just-granted "
        "waiter took, call _serve again, re-raise. Read every number from the arguments: check grades a "
        "second promise too.",
    ],
    solution="throttle_lab.lab.solutions.lesson09",
)


def hint(level: int | None = None) -> None:
    """Print the next hint for the exercise (or hint number ``level``), one level more concrete each call."""
    _GUIDE.hint(level)


def solution() -> None:
    """Print the reference solution (read it, then close it and write your own)."""
    _GUIDE.solution()


T = TypeVar("T")


def _off_the_loop(fn: Callable[[], T]) -> T:
    """``fn()``, in a worker thread when this thread already runs an event loop (a notebook cell does).

    ``check_limiter`` drives an event loop of its own with ``run_until_complete``, which cannot start
    inside a running loop; a worker thread has none.  Context variables go along.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lesson09.check") as pool:
        return pool.submit(context.run, fn).result()


def promise_of(promise: str | Mapping[str, float]) -> dict[str, float]:
    """``"bucket"``/``"window"`` or a mapping -> the keyword arguments of the promise (checked)."""
    if isinstance(promise, str):
        if promise not in PROMISES:
            raise ValueError(f"promise must be one of {sorted(PROMISES)} or a dict, got {promise!r}")
        return dict(PROMISES[promise])
    chosen = dict(promise)
    if set(chosen) not in ({"rate", "capacity"}, {"max_requests", "window_seconds"}):
        raise ValueError(
            "a promise is {'rate': ..., 'capacity': ...} (a bucket) or "
            f"{{'max_requests': ..., 'window_seconds': ...}} (a window), got {sorted(chosen)}"
        )
    for name, value in chosen.items():
        ok = is_real(value)
        if not ok or value <= 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    server_for(chosen)  # the mock server must be able to enforce it
    return chosen


def server_for(promise: Mapping[str, float]) -> ServerConfig:
    """A mock server enforcing the same limit: ``limit`` per ``span`` seconds, refilling continuously.

    A bucket (``rate``, ``capacity``) is exactly the server's rule; a window of ``max_requests`` per
    ``window_seconds`` never lets more through than that bucket, so neither should meet a 429.
    """
    if "rate" in promise:
        per_second, span = float(promise["rate"]), float(promise["capacity"]) / float(promise["rate"])
    else:
        per_second = float(promise["max_requests"]) / float(promise["window_seconds"])
        span = float(promise["window_seconds"])
    rpm = per_second * 60.0
    if abs(rpm - round(rpm)) > 1e-9 or round(rpm) < 1:
        raise ValueError(f"the promise must come to a whole number of requests per minute, got {rpm:g}")
    return ServerConfig(rpm=round(rpm), window=span, ttft=0.2, per_token=0.0, jitter=0.0)


class AcquireOnlyGate:
    """Makes a learner's limiter that has only ``acquire()`` a :class:`~throttle_lab.RequestGate` for the
    transport: each request waits for one ``acquire()`` (a bucket or a window spends its capacity; there is
    nothing to release, and no tokens to reconcile)."""

    def __init__(self, limiter: Any) -> None:
        if not callable(getattr(limiter, "acquire", None)):
            raise ValueError(f"a limiter needs an async acquire() method, got {limiter!r}")
        self.limiter = limiter

    @asynccontextmanager
    async def admit(self, tokens: float = 0) -> AsyncIterator[Admission]:
        await self.limiter.acquire()
        yield UNMETERED

    @asynccontextmanager
    async def slot(self, weight: float = 1) -> AsyncIterator[None]:
        """The 0.1 contract (``slot(weight)``), kept for code written against it."""
        await self.limiter.acquire()
        yield None

    def __repr__(self) -> str:
        return f"<AcquireOnlyGate over {self.limiter!r}>"


#: The 0.1 name of :class:`AcquireOnlyGate`.
Gate = AcquireOnlyGate


def design_for(
    make: Callable[..., Any], promise: str | Mapping[str, float] = "bucket", name: str = "mine"
) -> Design:
    """A design that sends every request through ``make(**promise)`` (a fresh limiter per run).

    Retries use throttle_lab's default policy; a limiter that keeps its promise never needs them.
    """
    kwargs = promise_of(promise)
    return Design(
        name,
        lambda: ClientStack(limiter=AcquireOnlyGate(make(**kwargs)), retry=seeded_retry()),
        f"{getattr(make, '__name__', 'limiter')}({', '.join(f'{k}={v:g}' for k, v in kwargs.items())})",
    )


def race(make: Callable[..., Any], promise: str | Mapping[str, float] = "bucket") -> Comparison:
    """``make``'s design against ``"throttler"`` on :data:`RACE_WORKLOAD`, at the promise's server."""
    kwargs = promise_of(promise)
    return compare([design_for(make, kwargs), "throttler"], RACE_WORKLOAD, server_for(kwargs))


def check(make: Callable[..., Any] | None, promise: str | Mapping[str, float] = "bucket") -> Report:
    """Grade your limiter class (or factory) ``make``: alone, then in a race.  See the module docstring."""
    kwargs = promise_of(promise)
    if make is None:
        return Report(_TITLE, attempted=False, note="write your limiter, then run me again.")
    report = Report(_TITLE)
    try:
        make(**kwargs)
    except NotImplementedError:
        return Report(
            _TITLE,
            attempted=False,
            note="your limiter still raises NotImplementedError; fill it in and run me again.",
        )
    except Exception as exc:  # the learner's code: report, don't crash the notebook
        names = ", ".join(f"{k}=..." for k in kwargs)
        report.add(
            "it can be built",
            False,
            f"{type(exc).__name__}: {exc}",
            f"take the promise as MyLimiter({names})",
        )
        return report

    alone = _off_the_loop(lambda: check_limiter(lambda: make(**kwargs), **kwargs))
    if not alone.attempted:
        return Report(
            _TITLE, attempted=False, note=alone.note.replace("your limiter", "your limiter's acquire")
        )
    report.results.extend(_prefixed("alone: ", alone.results))
    report.add(*_trickle(make, kwargs))
    if report.passed:
        report.add(*_other_promise(make, kwargs))
    if not report.passed:
        report.note = "Make it pass on its own first; then it races against ours."
        return report

    comparison = race(make, kwargs)
    mine, ours = comparison.traces["mine"], comparison.traces["throttler"]
    server = server_for(kwargs)
    graded = check_trace(mine, rpm=server.rpm, max_429s=0, min_utilisation=0.9, window=server.window)
    report.results.extend(_prefixed("in the race: ", graded.results))
    yours, theirs = mine.summary(), ours.summary()
    report.add(
        "in the race: as fast as throttle_lab's Throttler",
        yours.completed == RACE_WORKLOAD.requests and yours.makespan <= theirs.makespan * 1.05 + 0.01,
        f"{yours.completed} done in {yours.makespan:.1f} s; the Throttler: {theirs.makespan:.1f} s",
        "requests waited longer than the limit needs: grant as soon as capacity is back",
    )
    return report


def trickle_arrivals(limit: float, span: float) -> list[float]:
    """Arrival times that straddle window boundaries: one early, then ``limit`` just before and just after
    each of the next two boundaries.  A fixed window lets almost twice its limit through here."""
    n = max(1, math.floor(limit))
    return [0.0] + [round(f * span, 9) for f in (0.9, 1.1, 1.95, 2.05) for _ in range(n)]


def _limit_and_span(kwargs: Mapping[str, float]) -> tuple[float, float]:
    if "rate" in kwargs:
        return float(kwargs["capacity"]), float(kwargs["capacity"]) / float(kwargs["rate"])
    return float(kwargs["max_requests"]), float(kwargs["window_seconds"])


def _grant_times(
    make: Callable[..., Any], kwargs: Mapping[str, float], arrivals: Sequence[float]
) -> list[float]:
    async def main() -> list[float]:
        limiter = make(**kwargs)
        loop = asyncio.get_running_loop()
        grants: list[float] = []

        async def caller(at: float) -> None:
            await asyncio.sleep(at)
            await limiter.acquire()
            grants.append(loop.time())

        horizon = 100.0 * (max(arrivals) + 1.0)
        await asyncio.wait_for(asyncio.gather(*(caller(at) for at in arrivals)), timeout=horizon)
        return grants

    return run(main())


def _trickle(make: Callable[..., Any], kwargs: Mapping[str, float]) -> tuple[str, bool, str, str]:
    name = "alone: the promise holds for traffic that trickles in"
    limit, span = _limit_and_span(kwargs)
    arrivals = trickle_arrivals(limit, span)
    try:
        grants = _grant_times(make, kwargs, arrivals)
    except (TimeoutError, VirtualTimeError) as exc:
        return name, False, type(exc).__name__, "not everyone got through: does every waiter get woken up?"
    except Exception as exc:  # the learner's code
        return name, False, f"{type(exc).__name__}: {exc}", "acquire() raised"
    trace = Trace(Event(t, "granted", "learner") for t in grants)
    if "rate" in kwargs:
        ordered = sorted(grants)
        rate = float(kwargs["rate"])
        worst = max(
            (j - i + 1) - (limit + rate * (ordered[j] - ordered[i]))
            for i in range(len(ordered))
            for j in range(i, len(ordered))
        )
        return (
            name,
            worst <= 1e-6,
            f"{len(arrivals)} requests around the window boundaries: worst excess {max(worst, 0):.3g}",
            "refill continuously from the last update, never more than capacity",
        )
    most = trace.max_in_window("granted", span)
    return (
        name,
        most <= limit,
        f"{len(arrivals)} requests around the window boundaries: busiest {span:g} s held {most:g}",
        "a window that resets on the clock lets a burst through on each side of the boundary: count the "
        "grants of the last window_seconds, wherever they fall",
    )


def _second_promise(promise: Mapping[str, float]) -> dict[str, float]:
    """The second promise ``check`` grades at: :data:`OTHER_PROMISES` of the same kind, if it differs."""
    kind = "bucket" if "rate" in promise else "window"
    other = dict(OTHER_PROMISES[kind])
    return other if other != dict(promise) else dict(PROMISES[kind])


def _other_promise(make: Callable[..., Any], kwargs: Mapping[str, float]) -> tuple[str, bool, str, str]:
    other = _second_promise(kwargs)
    name = "alone: also right at " + ", ".join(f"{k}={v:g}" for k, v in other.items())
    try:
        graded = _off_the_loop(lambda: check_limiter(lambda: make(**other), **other))
    except Exception as exc:  # the learner's code
        return name, False, f"{type(exc).__name__}: {exc}".splitlines()[0], "it failed at another promise"
    failed = [r for r in graded.results if not r.passed]
    if not failed:
        return name, True, "all checks passed", ""
    spinning = [r for r in failed if "VirtualTimeLivelock" in r.detail]
    hint = (
        spinning[0].hint  # the float trap bites at a window of 0.3 s
        if spinning
        else "read the promise from the arguments (self.rate, self.capacity or self.max_requests, "
        "self.window_seconds) everywhere, never numbers typed in by hand"
    )
    return name, False, "failed: " + "; ".join(r.name for r in failed), hint


def _prefixed(prefix: str, results: list[CheckResult]) -> list[CheckResult]:
    return [CheckResult(prefix + r.name, r.passed, r.detail, r.hint) for r in results]
