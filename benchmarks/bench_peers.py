"""throttle_lab next to seven peer libraries, on the peers' own measures, in one run on a real event loop.

Run from the repository root (the peers come from the ``bench`` extra: ``pip install -e '.[bench]'``)::

    python benchmarks/bench_peers.py              # the full run (about a minute and a half)
    python benchmarks/bench_peers.py --quick      # smaller sizes, one repeat (about half a minute)
    python benchmarks/bench_peers.py --uvloop     # the same on uvloop (if installed)

Every subject is measured in this run, on the same loop, so the *ratios* mean something even on a noisy
machine; the absolute figures do not travel.  Nothing is asserted: this is a report.  Progress goes to
stderr, the table to stdout.

The six measures, each on a real loop (the peers read ``time.monotonic()`` or ``time.time()``, so virtual
time is not an option for them):

1. **uncontended**: the idiomatic "take one and go" (``async with limiter.slot()``, ``async with
   limiter:``, ``await limiter.aacquire()``...) when capacity is always there, median of round-robin repeats;
2. **CPU per grant**: 5,000 tasks park on a limiter of 1,000 per second in bursts of 10 ("10 per 10 ms");
   process CPU time per grant over the 1,000 grants after the opening burst, the grant rate really achieved
   (a late limiter looks cheap), and whether the promise held at the callers;
3. **accuracy at the callers**: 300 callers at once on "100 per second" (bursts of 100), some of them heavier
   where the library has weights, one spending 4 ms of CPU right after its grant.  Stamped when each caller
   proceeds, the worst excess over the library's *own* promise (a window: at most L in any window; a bucket:
   at most capacity + rate x span in any span) and the makespan against that promise's ideal;
4. **FIFO**: pairs of those callers that proceeded in the opposite order of their calls;
5. **cancellation**: 100 waiters queue behind a spent limit, half are cancelled while waiting; do the other
   half go when they should (capacity not lost to the cancelled), and nothing hangs?
6. **oversize**: a request heavier than the limit can ever grant: refused at once, or waits for ever?

Each peer is driven through a small adapter written here: how *we* would use it, with its defaults unless
a default would make the measure meaningless (said in the adapter's note).  Where a peer lacks a feature
(weights, a waiting call) the table says so instead of inventing one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import importlib.util
import inspect
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench_core import inverted_pairs  # the same merge-sort count as the core benchmark

from throttle_lab import GCRA, SlidingWindowLog, Throttler, TokenBucket

# ------------------------------------------------------------------------------------------ promises


@dataclass(frozen=True)
class Promise:
    """What a limiter, as configured, says it guarantees.

    ``bucket``: in any span of length T at most ``amount + rate x T`` units start.
    ``window``: in any (half-open) window of ``seconds`` at most ``amount`` units start.
    """

    kind: str  # "bucket" or "window"
    amount: float  # bucket capacity, or the window's limit
    seconds: float  # the window's length; for a bucket, amount / rate (the time to refill it)
    starts_full: bool = True  # a bucket that starts empty (langchain's) owes no burst at first

    @property
    def rate(self) -> float:
        return self.amount / self.seconds

    def __str__(self) -> str:
        if self.kind == "bucket":
            return f"bucket {self.amount:g}, {self.rate:g}/s"
        return f"{self.amount:g} per {self.seconds:g} s window"

    def worst_excess(self, stamps: Sequence[tuple[float, float]]) -> float:
        """The largest amount by which starts ``(time, weight)`` exceed the promise (<= 0: it held)."""
        ordered = sorted(stamps)
        if not ordered:
            return 0.0
        if self.kind == "bucket":
            # Units in [t_i, t_j] minus (capacity + rate x (t_j - t_i)) = P_j - P_(i-1) - cap - r t_j + r t_i:
            # keep the smallest P_(i-1) - r t_i seen so far, one pass.
            worst, best_start, prefix = -math.inf, math.inf, 0.0
            for t, weight in ordered:
                best_start = min(best_start, prefix - self.rate * t)
                prefix += weight
                worst = max(worst, prefix - self.rate * t - best_start - self.amount)
            return worst
        worst, first, inside = -math.inf, 0, 0.0
        for t, weight in ordered:
            inside += weight
            while ordered[first][0] + self.seconds <= t:
                inside -= ordered[first][1]
                first += 1
            worst = max(worst, inside - self.amount)
        return worst

    def ideal_makespan(self, total: float) -> float:
        """How long ``total`` units take from an idle start when the limiter keeps exactly its promise."""
        if self.kind == "bucket":
            return max(0.0, (total - (self.amount if self.starts_full else 1)) / self.rate)
        return (math.ceil(total / self.amount) - 1) * self.seconds


# ------------------------------------------------------------------------------------------ adapters


@dataclass
class Subject:
    """One library (or one configuration of ours) behind the same few calls."""

    name: str
    ours: bool
    #: make(limit, period) -> (limiter, the promise it makes): "limit per period, in bursts of up to limit".
    make: Callable[[int, float], tuple[Any, Promise]]
    #: wait until `weight` units may go (raise, or return False, when refused)
    acquire: Callable[[Any, int], Awaitable[object]]
    #: the idiomatic uncontended "take one and go", n times; returns the seconds it took
    uncontended: Callable[[Any, int], Awaitable[float]]
    weights: bool = True
    #: None: it has a call that waits and can be cancelled; else why the measure does not apply
    no_waiting_call: str | None = None
    note: str = ""
    close: Callable[[Any], None] = field(default=lambda limiter: None)


async def _slot_loop(limiter: Any, n: int) -> float:
    slot = limiter.slot
    start = _clock()
    for _ in range(n):
        async with slot():
            pass
    return _clock() - start


async def _throttler_loop(throttler: Any, n: int) -> float:
    slot = throttler.slot
    start = _clock()
    for _ in range(n):
        async with slot(100):
            pass
    return _clock() - start


async def _with_loop(limiter: Any, n: int) -> float:
    start = _clock()
    for _ in range(n):
        async with limiter:
            pass
    return _clock() - start


def _await_loop(
    call: Callable[[Any], Callable[[], Awaitable[object]]],
) -> Callable[[Any, int], Awaitable[float]]:
    async def loop(limiter: Any, n: int) -> float:
        once = call(limiter)
        start = _clock()
        for _ in range(n):
            await once()
        return _clock() - start

    return loop


def _clock() -> float:
    """This thread's CPU time: what an uncontended call costs, unmoved by other processes taking the CPU
    away in the middle of a measurement (the machine is shared)."""
    return time.thread_time()


RESOLUTION = 0.005  # the coalescing rows: at most burst / rate = 10 ms, so the buckets lose no rate

BIG = 10**9  # a limit so large that capacity is always there (uncontended)


async def _throttled(throttler: Any, weight: int) -> object:
    (await throttler.acquire(weight)).release()
    return True


def _ours() -> list[Subject]:
    async def plain(limiter: Any, weight: int) -> object:
        await limiter.acquire(weight)
        return True

    def bucket(limit: int, period: float) -> Promise:
        return Promise("bucket", limit, period)

    return [
        Subject(
            "throttle_lab TokenBucket",
            True,
            lambda limit, period: (TokenBucket(rate=limit / period, capacity=limit), bucket(limit, period)),
            plain,
            _slot_loop,
        ),
        Subject(
            "throttle_lab GCRA",
            True,
            lambda limit, period: (GCRA(rate=limit / period, burst=limit), bucket(limit, period)),
            plain,
            _slot_loop,
        ),
        Subject(
            "throttle_lab SlidingWindowLog",
            True,
            lambda limit, period: (SlidingWindowLog(limit, period), Promise("window", limit, period)),
            plain,
            _slot_loop,
        ),
        Subject(
            "throttle_lab Throttler (concurrency + rpm + tpm)",
            True,
            # Every request charges one request and `weight` tokens, both at "limit per period".
            lambda limit, period: (
                Throttler(
                    max_concurrent=BIG,
                    rpm=limit / period * 60,
                    tpm=limit / period * 60,
                    burst_seconds=period,
                ),
                bucket(limit, period),
            ),
            _throttled,
            _throttler_loop,
            note="uncontended: `async with slot(100)` with all three limits",
        ),
        Subject(
            "throttle_lab Throttler (rpm only)",
            True,
            lambda limit, period: (
                Throttler(rpm=limit / period * 60, burst_seconds=period),
                bucket(limit, period),
            ),
            _throttled,
            _slot_loop,
            weights=False,
            note="uncontended: `async with slot()`",
        ),
    ]


def _coalescing() -> list[Subject]:
    """Ours with a coalescing resolution (where this version of throttle_lab has the option)."""
    if "resolution" not in inspect.signature(GCRA).parameters:
        return []

    async def plain(limiter: Any, weight: int) -> object:
        await limiter.acquire(weight)
        return True

    return [
        Subject(
            "throttle_lab GCRA, resolution 5 ms",
            True,
            lambda limit, period: (
                GCRA(rate=limit / period, burst=limit, resolution=RESOLUTION),
                Promise("bucket", limit, period),
            ),
            plain,
            _slot_loop,
            note="one wake-up grants everyone ready within 5 ms: late by < 5 ms, never early",
        ),
        Subject(
            "throttle_lab Throttler (concurrency + rpm + tpm), resolution 5 ms",
            True,
            lambda limit, period: (
                Throttler(
                    max_concurrent=BIG,
                    rpm=limit / period * 60,
                    tpm=limit / period * 60,
                    burst_seconds=period,
                    resolution=RESOLUTION,
                ),
                Promise("bucket", limit, period),
            ),
            _throttled,
            _throttler_loop,
        ),
    ]


def _peers() -> tuple[list[Subject], list[str]]:
    """The installed peers' adapters, and the names of those that are missing."""
    subjects: list[Subject] = []
    missing: list[str] = []

    try:
        import aiolimiter
    except ImportError:
        missing.append("aiolimiter")
    else:

        async def aio_acquire(limiter: Any, weight: int) -> object:
            await limiter.acquire(weight)
            return True

        subjects.append(
            Subject(
                "aiolimiter AsyncLimiter",
                False,
                lambda limit, period: (
                    aiolimiter.AsyncLimiter(limit, period),
                    Promise("bucket", limit, period),
                ),
                aio_acquire,
                _with_loop,
                note="a leaky bucket; waiters in a heap by (weight, arrival)",
            )
        )

    try:
        import pyrate_limiter
    except ImportError:
        missing.append("pyrate-limiter")
    else:

        def pyrate_make(limit: int, period: float) -> tuple[Any, Promise]:
            rate = pyrate_limiter.Rate(limit, round(period * 1000))  # an interval in milliseconds
            return pyrate_limiter.Limiter(rate), Promise("window", limit, period)

        async def pyrate_acquire(limiter: Any, weight: int) -> object:
            return await limiter.try_acquire_async("bench", weight=weight)

        subjects.append(
            Subject(
                "pyrate-limiter Limiter(Rate) (in-memory log)",
                False,
                pyrate_make,
                pyrate_acquire,
                _await_loop(lambda limiter: lambda: limiter.try_acquire_async("bench")),
                note="defaults: buffer_ms=50 (a waiter sleeps 50 ms past the moment it could go)",
                close=lambda limiter: limiter.close(),
            )
        )

    try:
        from limits import RateLimitItemPerSecond
        from limits.aio.storage import MemoryStorage
        from limits.aio.strategies import MovingWindowRateLimiter
    except ImportError:
        missing.append("limits")
    else:

        def limits_make(limit: int, period: float) -> tuple[Any, Promise]:
            # Windows are whole seconds: "limit per period" becomes the same rate per one second.
            seconds = max(1, round(period))
            amount = max(1, round(limit * seconds / period))
            strategy = MovingWindowRateLimiter(MemoryStorage())
            return (strategy, RateLimitItemPerSecond(amount, seconds)), Promise("window", amount, seconds)

        async def limits_acquire(limiter: Any, weight: int) -> object:
            # limits only answers "may I, now?": waiting is ours to write.  We sleep until the window
            # says it resets (time.time(), the clock limits keeps), then ask again.
            strategy, item = limiter
            while not await strategy.hit(item, "bench", cost=weight):
                if weight > item.amount:
                    return False  # it can never fit: limits' own answer will never change
                stats = await strategy.get_window_stats(item, "bench")
                await asyncio.sleep(max(0.001, stats.reset_time - time.time()))
            return True

        subjects.append(
            Subject(
                "limits MovingWindowRateLimiter (memory)",
                False,
                limits_make,
                limits_acquire,
                _await_loop(lambda limiter: lambda: limiter[0].hit(limiter[1], "bench")),
                note="no waiting call: ours sleeps until the window resets, then asks again; 1 s windows",
            )
        )

    if importlib.util.find_spec("aiometer") is None:
        missing.append("aiometer")
    else:
        subjects.append(
            Subject(
                "aiometer run_on_each(max_per_second)",
                False,
                lambda limit, period: (limit / period, Promise("bucket", 1, period / limit)),
                _not_a_waiter,
                _aiometer_loop,
                weights=False,
                no_waiting_call="runs jobs; no call to cancel",
                note="starts jobs, not a limiter: a job's start is its grant; bursts of 1 only",
            )
        )

    try:
        from asyncio_throttle import Throttler as AsyncioThrottler
    except ImportError:
        missing.append("asyncio-throttle")
    else:

        async def at_acquire(limiter: Any, weight: int) -> object:
            await limiter.acquire()
            return True

        subjects.append(
            Subject(
                "asyncio-throttle Throttler",
                False,
                lambda limit, period: (AsyncioThrottler(limit, period), Promise("window", limit, period)),
                at_acquire,
                _with_loop,
                weights=False,
                note="a log of start times; waiters poll every retry_interval (10 ms)",
            )
        )

    try:
        from throttled.asyncio import MemoryStore, Throttled, per_sec
    except ImportError:
        missing.append("throttled-py")
    else:

        def throttled_make(using: str) -> Callable[[int, float], tuple[Any, Promise]]:
            def make(limit: int, period: float) -> tuple[Any, Promise]:
                # Its periods are whole seconds: "limit per period" is that rate per second, burst `limit`.
                quota = per_sec(round(limit / period), burst=limit)
                limiter = Throttled(key="bench", using=using, quota=quota, timeout=3600, store=MemoryStore())
                return limiter, Promise("bucket", limit, period)

            return make

        async def throttled_acquire(limiter: Any, weight: int) -> object:
            result = await limiter.limit(cost=weight)
            return not result.limited

        for using, note in (
            ("token_bucket", "its default; refills on a whole-second clock (int(time.time()))"),
            ("gcra", "waiters sleep for the retry-after they were told, then ask again"),
        ):
            subjects.append(
                Subject(
                    f"throttled-py Throttled({using}, memory)",
                    False,
                    throttled_make(using),
                    throttled_acquire,
                    _await_loop(lambda limiter: limiter.limit),
                    note=note,
                )
            )

    try:
        from langchain_core.rate_limiters import InMemoryRateLimiter
    except ImportError:
        missing.append("langchain-core")
    else:

        def langchain_make(limit: int, period: float) -> tuple[Any, Promise]:
            limiter = InMemoryRateLimiter(requests_per_second=limit / period, max_bucket_size=limit)
            return limiter, Promise("bucket", limit, period, starts_full=False)

        async def langchain_acquire(limiter: Any, weight: int) -> object:
            return await limiter.aacquire()

        subjects.append(
            Subject(
                "langchain-core InMemoryRateLimiter",
                False,
                langchain_make,
                langchain_acquire,
                _await_loop(lambda limiter: limiter.aacquire),
                weights=False,
                note="starts empty; waiters poll every check_every_n_seconds (100 ms)",
            )
        )
    return subjects, missing


async def _not_a_waiter(limiter: Any, weight: int) -> object:
    raise NotImplementedError("aiometer has no call that waits for capacity")


async def _aiometer_loop(_: Any, n: int) -> float:
    import aiometer

    async def job(_: int) -> None:
        return None

    start = _clock()
    await aiometer.run_on_each(job, range(n), max_per_second=BIG)
    return _clock() - start


def _is_aiometer(subject: Subject) -> bool:
    return subject.name.startswith("aiometer")


# ------------------------------------------------------------------------------- the measurements


@dataclass(frozen=True)
class Sizes:
    uncontended: int  # iterations per repeat
    uncontended_repeats: int
    parked: int  # waiters in the CPU measure
    grants: int  # grants measured there (at 1,000/s: this many milliseconds)
    cpu_repeats: int
    callers: int  # callers in the accuracy / FIFO measure


FULL = Sizes(
    uncontended=20_000, uncontended_repeats=5, parked=5_000, grants=1_000, cpu_repeats=3, callers=300
)
QUICK = Sizes(uncontended=5_000, uncontended_repeats=3, parked=5_000, grants=500, cpu_repeats=1, callers=200)


async def measure_uncontended(subject: Subject, n: int) -> float:
    limiter, _ = subject.make(BIG, 1.0)
    gc.collect()
    try:
        return await subject.uncontended(limiter, n) / n
    finally:
        subject.close(limiter)


@dataclass(frozen=True)
class GrantCost:
    cpu_per_grant: float
    grants: int
    rate: float  # grants per second achieved
    excess: float  # worst excess over the promise at the callers (<= 0: kept)
    promise: Promise


async def measure_cpu_per_grant(
    subject: Subject, parked: int, grants: int, deadline: float = 5.0
) -> GrantCost:
    """``parked`` tasks wait on "10 per 10 ms" (1,000/s in bursts of 10); CPU per grant over the
    ``grants`` grants after the opening burst."""
    loop = asyncio.get_running_loop()
    limiter, promise = subject.make(10, 0.01)
    stamps: list[tuple[float, float]] = []
    reached = loop.create_future()
    target = math.inf

    def granted() -> None:
        stamps.append((loop.time(), 1.0))
        if len(stamps) >= target and not reached.done():
            reached.set_result(None)

    if _is_aiometer(subject):
        import aiometer

        async def job(_: int) -> None:
            granted()

        runner = asyncio.ensure_future(aiometer.run_on_each(job, range(parked), max_per_second=limiter))
        tasks = [runner]
    else:

        async def waiter() -> None:
            if await subject.acquire(limiter, 1):
                granted()

        tasks = [asyncio.ensure_future(waiter()) for _ in range(parked)]
    await asyncio.sleep(0)  # every waiter runs once and parks
    await asyncio.sleep(0)
    before = len(stamps)
    target = before + grants
    cpu0, clock0 = time.process_time(), loop.time()
    with contextlib.suppress(TimeoutError):  # a peer too slow to finish: what it managed is reported
        await asyncio.wait_for(asyncio.shield(reached), deadline)
    cpu1, clock1 = time.process_time(), loop.time()
    measured = stamps[before:]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    subject.close(limiter)
    count = max(1, len(measured))
    return GrantCost(
        (cpu1 - cpu0) / count,
        len(measured),
        len(measured) / (clock1 - clock0),
        promise.worst_excess(stamps),
        promise,
    )


def _burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@dataclass(frozen=True)
class Accuracy:
    promise: Promise
    excess: float
    makespan: float
    ideal: float
    inversions: int
    pairs: int
    heavy: bool  # some callers weighed 3


async def measure_accuracy(subject: Subject, n: int) -> Accuracy:
    """``n`` callers at once on "100 per second"; stamped when each proceeds."""
    loop = asyncio.get_running_loop()
    limiter, promise = subject.make(100, 1.0)
    weights = [3 if subject.weights and i % 5 == 4 else 1 for i in range(n)]
    stamps: list[tuple[float, float]] = []
    order: list[int] = []

    def started(i: int) -> None:
        stamps.append((loop.time(), weights[i]))
        order.append(i)
        if i == n // 2:  # a caller that works a little right after its grant delays everyone behind it
            _burn(0.004)

    start = loop.time()
    if _is_aiometer(subject):
        import aiometer

        async def job(i: int) -> None:
            started(i)

        await aiometer.run_on_each(job, range(n), max_per_second=limiter)
    else:

        async def caller(i: int) -> None:
            if await subject.acquire(limiter, weights[i]):
                started(i)

        await asyncio.gather(*(caller(i) for i in range(n)))
    subject.close(limiter)
    makespan = max(t for t, _ in stamps) - start
    return Accuracy(
        promise,
        promise.worst_excess(stamps),
        makespan,
        promise.ideal_makespan(sum(weights)),
        inverted_pairs(order),
        n * (n - 1) // 2,
        any(w > 1 for w in weights),
    )


async def measure_cancellation(subject: Subject) -> str:
    """Spend the limit, queue 100 waiters, cancel every other one while they wait; the other 50 should go
    as soon as the promise allows (the cancelled ones' capacity is not lost) and nothing may hang."""
    if subject.no_waiting_call:
        return f"n/a ({subject.no_waiting_call})"
    loop = asyncio.get_running_loop()
    limiter, promise = subject.make(100, 1.0)
    await asyncio.gather(*(subject.acquire(limiter, 1) for _ in range(int(promise.amount))))
    spent = loop.time()
    done: list[float] = []

    async def waiter() -> None:
        if await subject.acquire(limiter, 1):
            done.append(loop.time())

    tasks = [asyncio.ensure_future(waiter()) for _ in range(100)]
    await asyncio.sleep(0.05)
    for task in tasks[1::2]:
        task.cancel()
    survivors = tasks[0::2]
    # The survivors are the next 50 units after a spent limit: a bucket earns them in 50 / rate s, a window
    # frees them when the spent window has slid past.
    ideal = 50 / promise.rate if promise.kind == "bucket" else promise.seconds
    _, pending = await asyncio.wait(survivors, timeout=ideal * 3 + 1.0)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    subject.close(limiter)
    if pending:
        return f"**{len(pending)} of 50 survivors stuck** after {ideal * 3 + 1.0:.1f} s"
    last = max(done) - spent
    ok = last <= ideal + 0.1
    verdict = "safe" if ok else "**late**"
    return f"{verdict}: survivors done {last:.3f} s after the limit was spent (ideal {ideal:.3f})"


async def measure_oversize(subject: Subject) -> str:
    """A request of 11 units on a limit of 10: refused at once, or waiting for ever?"""
    if not subject.weights:
        return "n/a (no weights)"
    limiter, promise = subject.make(10, 1.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        answer = await asyncio.wait_for(subject.acquire(limiter, int(promise.amount) + 1), 0.5)
    except TimeoutError:
        outcome = "**waits for ever** (still waiting after 0.5 s)"
    except Exception as exc:  # what each library raises is its own business; we report it
        outcome = f"fails at once ({type(exc).__name__}, {(loop.time() - start) * 1e3:.1f} ms)"
    else:
        elapsed = (loop.time() - start) * 1e3
        outcome = f"refused at once (returns {answer!r}, {elapsed:.1f} ms)" if not answer else "**granted**"
    subject.close(limiter)
    return outcome


# ------------------------------------------------------------------------------------------- the run


@dataclass
class Result:
    subject: Subject
    uncontended: list[float] = field(default_factory=list)
    cpu: list[GrantCost] = field(default_factory=list)
    accuracy: Accuracy | None = None
    cancellation: str = ""
    oversize: str = ""


def _median_cost(costs: list[GrantCost]) -> GrantCost:
    return sorted(costs, key=lambda cost: cost.cpu_per_grant)[len(costs) // 2]


async def run_all(subjects: list[Subject], sizes: Sizes, skip: set[str]) -> list[Result]:
    results = [Result(subject) for subject in subjects]
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    log("1. uncontended (round-robin repeats)")
    for _ in range(0 if "uncontended" in skip else sizes.uncontended_repeats):
        for result in results:
            result.uncontended.append(await measure_uncontended(result.subject, sizes.uncontended))
    log("2. CPU per grant (round-robin repeats)")
    for _ in range(0 if "cpu" in skip else sizes.cpu_repeats):
        for result in results:
            gc.collect()
            result.cpu.append(await measure_cpu_per_grant(result.subject, sizes.parked, sizes.grants))
            log(f"  {result.subject.name}: {result.cpu[-1].cpu_per_grant * 1e6:.1f} µs")
    log("3-6. accuracy, FIFO, cancellation, oversize")
    for result in [] if "rest" in skip else results:
        log(f"  {result.subject.name}")
        result.accuracy = await measure_accuracy(result.subject, sizes.callers)
        result.cancellation = await measure_cancellation(result.subject)
        result.oversize = await measure_oversize(result.subject)
    return results


def _kept(promise: Promise, excess: float) -> str:
    """'kept', or by how much the promise broke: units too many in a window, or how early a bucket let
    the worst start go.  A bucket start less than STAMP_NOISE early is reported but not called broken:
    each caller stamps itself a few µs after the limiter booked it (longer if the OS preempts it)."""
    if excess <= 1e-9:
        return "kept"
    if promise.kind == "window":
        return f"**broken: {excess:g} too many in a window**"
    early = excess / promise.rate
    if early <= STAMP_NOISE:
        return f"kept (to {early * 1e6:.0f} µs: stamp noise)"
    return f"**broken: {excess:.3g} units over ({early * 1e3:.3g} ms early)**"


STAMP_NOISE = 50e-6  # seconds


def _spread(values: list[float]) -> str:
    if len(values) < 2:
        return ""
    return f" ({min(values) * 1e6:.2f}–{max(values) * 1e6:.2f})"


def print_table(results: list[Result], missing: list[str], reference: str) -> None:
    ref = next((r for r in results if r.subject.name.startswith(reference) and r.uncontended), None)
    ref_cost = statistics.median(ref.uncontended) if ref else math.nan
    peer_costs = [_median_cost(r.cpu).cpu_per_grant for r in results if not r.subject.ours and r.cpu]
    best_peer = min(peer_costs, default=math.nan)
    headers = [
        "subject",
        "uncontended µs (× aiolimiter)",
        "CPU µs per grant, 5,000 waiting (× best peer)",
        "grants/s achieved (of 1,000)",
        "promise at the callers: worst excess; makespan / ideal",
        "FIFO: inverted pairs",
        "cancelled waiters",
        "oversize request",
    ]
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for result in results:
        s = result.subject
        cells = [f"{s.name}" + (f" — {s.note}" if s.note else "")]
        if result.uncontended:
            unc = statistics.median(result.uncontended)
            cells.append(f"{unc * 1e6:.2f}{_spread(result.uncontended)} ({unc / ref_cost:.2f}×)")
        else:
            cells.append("skipped")
        if result.cpu:
            cost = _median_cost(result.cpu)
            cpu_kept = (
                "" if _kept(cost.promise, cost.excess) == "kept" else f"; {_kept(cost.promise, cost.excess)}"
            )
            spread = _spread([c.cpu_per_grant for c in result.cpu]).replace(".00", "")
            cells.append(
                f"{cost.cpu_per_grant * 1e6:.1f}{spread} ({cost.cpu_per_grant / best_peer:.2f}×){cpu_kept}"
            )
            cells.append(f"{cost.rate:,.0f}" + ("" if cost.grants else " (none)"))
        else:
            cells += ["skipped", "skipped"]
        acc = result.accuracy
        if acc is not None:
            weighted = ", weights 1 and 3" if acc.heavy else ""
            cells.append(
                f"{_kept(acc.promise, acc.excess)} ({acc.promise}{weighted}); "
                f"{acc.makespan:.3f} s / {acc.ideal:.3f} s"
            )
            cells.append(f"{acc.inversions:,} of {acc.pairs:,}")
            cells += [result.cancellation, result.oversize]
        else:
            cells += ["skipped"] * 4
        print("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    for name in missing:
        print(f"| {name} | not installed (pip install -e '.[bench]') | | | | | | |")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


PEER_DISTS = [
    "aiolimiter",
    "pyrate-limiter",
    "limits",
    "aiometer",
    "asyncio-throttle",
    "throttled-py",
    "langchain-core",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one repeat")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (if installed)")
    parser.add_argument("--only", default="", help="only subjects whose name contains this text")
    parser.add_argument(
        "--skip", default="", help="measures to skip, comma-separated: uncontended,cpu,rest (a partial table)"
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    peers, missing = _peers()
    subjects = [s for s in _ours() + _coalescing() + peers if args.only.lower() in s.name.lower()]
    command = (
        "python benchmarks/bench_peers.py"
        + (" --quick" if args.quick else "")
        + (" --uvloop" if args.uvloop else "")
    )

    runner: Callable[[Coroutine[Any, Any, list[Result]]], list[Result]] = asyncio.run
    loop_name = "asyncio (default selector loop)"
    if args.uvloop:
        try:
            import uvloop
        except ImportError:
            sys.exit("uvloop is not installed (pip install uvloop)")
        runner = uvloop.run
        loop_name = f"uvloop {_version('uvloop')}"

    started = time.perf_counter()
    results = runner(run_all(subjects, sizes, set(filter(None, args.skip.split(",")))))
    total = time.perf_counter() - started

    print("# throttle_lab and its peers, one run on a real loop")
    print()
    print(f"- command: `{command}`; loop: {loop_name}")
    print(
        f"- Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )
    print("- " + ", ".join(f"{d} {_version(d)}" for d in ["throttle-lab", *PEER_DISTS]))
    print(
        f"- uncontended: this thread's CPU time, median (min–max) of {sizes.uncontended_repeats} × "
        f"{sizes.uncontended:,}; CPU per grant: process CPU time, median (min–max) of {sizes.cpu_repeats}, "
        f"{sizes.parked:,} waiting, {sizes.grants:,} grants at 1,000/s; accuracy: {sizes.callers} callers "
        "on 100/s"
    )
    print(f"- total wall time {total:.1f} s")
    print()
    print_table(results, missing, "aiolimiter")


if __name__ == "__main__":
    main()
