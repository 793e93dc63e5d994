"""Core benchmarks: throttle_lab's limiters next to the article's naive designs and two peers.

Run from the repository root::

    python benchmarks/bench_core.py            # the full run (about 30-40 s)
    python benchmarks/bench_core.py --quick    # smaller sizes, a few seconds

It prints one markdown table, every row measured in this run, with the target next to the measurement.
Nothing is asserted: this is a report, not a test.  Progress goes to stderr, the table to stdout.

The five measurements (see ``benchmarks/README.md``):

1. uncontended ``await acquire()`` cost on a plain asyncio loop (best of several repeats);
2. CPU per grant with thousands of parked waiters on a 1,000/s limiter;
3. accuracy of a sliding-window log (600 requests at once, 100 per second), measured at the callers, virtual
   and real time;
4. fairness: inverted pairs among waiters that arrived in a known order;
5. virtual-time speed: an hour of seeded traffic through the combined ``Throttler``.

Peers: ``aiolimiter`` and ``pyrate-limiter`` come from the ``bench`` extra (``pip install -e '.[bench]'``);
rows for a peer that is not installed say so instead of failing.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import importlib.metadata
import math
import os
import platform
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from throttle_lab import (
    GCRA,
    ConcurrencyLimiter,
    SlidingWindowLog,
    Throttler,
    TokenBucket,
    VirtualTimeLivelock,
    VirtualTimeLoop,
    record,
    run,
)
from throttle_lab.lab.naive import DequeSlidingWindow, PollingTokenBucket

try:
    import aiolimiter
except ImportError:  # the `bench` extra is not installed
    aiolimiter = None  # type: ignore[assignment]

try:
    import pyrate_limiter
    from pyrate_limiter import limiter_factory as pyrate_factory
except ImportError:
    pyrate_limiter = None  # type: ignore[assignment]
    pyrate_factory = None  # type: ignore[assignment]

MISSING = "not installed (pip install -e '.[bench]')"


# ---------------------------------------------------------------------------------------------- sizes
@dataclass(frozen=True)
class Sizes:
    """How big each benchmark is; ``--quick`` shrinks everything but keeps the shape."""

    acquire_iterations: int  # awaits per repeat in benchmark 1
    acquire_repeats: int  # repeats (the best one is reported)
    parked: int  # waiters parked on the limiter in benchmark 2
    grants_ours: int  # grants measured for event-driven limiters on the virtual loop
    grants_polling: int  # grants measured for the polling bucket (each one costs a wake-up per waiter)
    grants_real: int  # grants measured on a real loop (1,000/s: this many milliseconds of wall time)
    burst_requests: int  # requests sent at once in benchmark 3 (ideal makespan follows from it)
    fair_waiters: int  # waiters in benchmark 4
    hour_requests: int  # requests in benchmark 5


FULL = Sizes(
    acquire_iterations=50_000,
    acquire_repeats=5,
    parked=5_000,
    grants_ours=4_000,
    grants_polling=50,
    grants_real=1_000,
    burst_requests=600,
    fair_waiters=600,
    hour_requests=10_000,
)
QUICK = Sizes(
    acquire_iterations=10_000,
    acquire_repeats=3,
    parked=1_000,
    grants_ours=500,
    grants_polling=20,
    grants_real=200,
    burst_requests=200,
    fair_waiters=200,
    hour_requests=10_000,
)


# ---------------------------------------------------------------------------------------------- table
@dataclass
class Row:
    bench: str
    subject: str
    loop: str
    target: str
    measured: str
    meets: str  # "yes" / "no" for our own limiters, "-" where the target is not ours to meet
    note: str = ""


ROWS: list[Row] = []


def add(row: Row) -> None:
    ROWS.append(row)
    print(f"  {row.subject}: {row.measured}", file=sys.stderr, flush=True)


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.2f} µs"


def print_table() -> None:
    headers = ["#", "benchmark", "subject", "loop", "target", "measured", "meets", "note"]
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for row in ROWS:
        cells = [
            row.bench.split(" ", 1)[0],
            row.bench.split(" ", 1)[1],
            row.subject,
            row.loop,
            row.target,
            row.measured,
            row.meets,
            row.note,
        ]
        print("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")


# ------------------------------------------------------------------------- 1. uncontended acquire cost
# Each loop awaits the same call many times inside one coroutine.  Capacity is always there, so no call
# ever suspends: what is measured is the cost of the call itself (plus the `for` loop, ~0.02 µs).


LoopFn = Callable[[Any, int], Awaitable[float]]  # awaits something n times, returns the seconds it took


async def _loop_acquire(limiter: Any, n: int) -> float:
    acquire = limiter.acquire
    start = time.perf_counter()
    for _ in range(n):
        await acquire()
    return time.perf_counter() - start


async def _loop_acquire_release(limiter: Any, n: int) -> float:
    acquire, release = limiter.acquire, limiter.release
    start = time.perf_counter()
    for _ in range(n):
        await acquire()
        release()
    return time.perf_counter() - start


async def _loop_throttler(throttler: Any, n: int) -> float:
    acquire = throttler.acquire
    start = time.perf_counter()
    for _ in range(n):
        permit = await acquire(100)
        permit.release()
    return time.perf_counter() - start


async def _loop_pyrate(limiter: Any, n: int) -> float:
    acquire = limiter.try_acquire_async
    start = time.perf_counter()
    for _ in range(n):
        await acquire("bench")
    return time.perf_counter() - start


async def _loop_recording(limiter: Any, n: int) -> float:
    with record():
        return await _loop_acquire(limiter, n)


async def _noop() -> None:
    return None


async def _loop_noop(_: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await _noop()
    return time.perf_counter() - start


def _close(limiter: Any) -> None:
    close = getattr(limiter, "close", None)  # pyrate-limiter runs a leaker thread until closed
    if close is not None:
        close()


async def _once(make: Callable[[], Any], loop_fn: LoopFn, n: int) -> float:
    limiter = make()  # a fresh limiter each time, created on the running loop
    gc.collect()
    try:
        return await loop_fn(limiter, n) / n
    finally:
        _close(limiter)


def bench_uncontended(sizes: Sizes) -> None:
    print("1. uncontended acquire cost", file=sys.stderr, flush=True)
    bench = "1 uncontended acquire"
    big = 1e9  # rates and capacities so large that capacity is always there
    ours: list[tuple[str, Callable[[], Any], LoopFn]] = [
        ("TokenBucket", lambda: TokenBucket(rate=big, capacity=big), _loop_acquire),
        ("GCRA", lambda: GCRA(rate=big, burst=big), _loop_acquire),
        # A 1 ms window: the log stays ~1,000 entries long and evicts as it goes (steady state).
        (
            "SlidingWindowLog (1 ms window)",
            lambda: SlidingWindowLog(max_requests=big, window_seconds=0.001),
            _loop_acquire,
        ),
        (
            "ConcurrencyLimiter (acquire + release)",
            lambda: ConcurrencyLimiter(max_concurrent=10),
            _loop_acquire_release,
        ),
        (
            "Throttler(max_concurrent, rpm, tpm) (acquire + release)",
            lambda: Throttler(max_concurrent=10, rpm=big * 60, tpm=big * 6_000),
            _loop_throttler,
        ),
    ]
    peers: list[tuple[str, Callable[[], Any] | None, LoopFn]] = [
        ("naive PollingTokenBucket", lambda: PollingTokenBucket(rate=big, capacity=big), _loop_acquire),
        (
            "aiolimiter AsyncLimiter",
            (lambda: aiolimiter.AsyncLimiter(big, 1.0)) if aiolimiter else None,
            _loop_acquire,
        ),
        (
            "pyrate-limiter Limiter(Rate) try_acquire_async (in-memory log)",
            (lambda: pyrate_limiter.Limiter(pyrate_limiter.Rate(10**9, pyrate_limiter.Duration.SECOND)))
            if pyrate_limiter
            else None,
            _loop_pyrate,
        ),
        (
            "pyrate-limiter create_token_bucket_limiter try_acquire_async",
            (lambda: pyrate_factory.create_token_bucket_limiter(10**9, pyrate_limiter.Duration.SECOND))
            if pyrate_factory
            else None,
            _loop_pyrate,
        ),
    ]
    n, repeats = sizes.acquire_iterations, sizes.acquire_repeats
    loop_note = f"best of {repeats} × {n:,}"

    # (subject, target, factory or None if not installed, loop, note); the target is ours to meet or not.
    subjects: list[tuple[str, str | None, Callable[[], Any] | None, LoopFn, str]]
    subjects = [(subject, "≤ 1.5 µs", make, loop_fn, loop_note) for subject, make, loop_fn in ours]
    subjects.append(
        (
            "TokenBucket, recording ON (`with record():`)",
            None,
            lambda: TokenBucket(rate=big, capacity=big),
            _loop_recording,
            "each grant appends an Event to a Trace",
        )
    )
    subjects += [(subject, "- (peer)", make, loop_fn, loop_note) for subject, make, loop_fn in peers]
    subjects.append(
        (
            "reference: `await` of an empty coroutine",
            None,
            lambda: None,
            _loop_noop,
            "the floor any async call pays",
        )
    )

    async def main() -> None:
        # Round-robin over the subjects, `repeats` times, keeping each one's best: a burst of load from
        # elsewhere on the machine then spoils one repeat of several subjects, not every repeat of one.
        best = [math.inf] * len(subjects)
        for _ in range(repeats):
            for index, (_, _, make, loop_fn, _) in enumerate(subjects):
                if make is not None:
                    best[index] = min(best[index], await _once(make, loop_fn, n))
        for (subject, target, make, _, note), cost in zip(subjects, best, strict=True):
            if make is None:
                add(Row(bench, subject, "plain asyncio", target or "-", MISSING, "-"))
            elif target == "≤ 1.5 µs":
                add(Row(bench, subject, "plain asyncio", target, us(cost), verdict(cost <= 1.5e-6), note))
            else:
                add(Row(bench, subject, "plain asyncio", target or "-", us(cost), "-", note))

    run(main(), virtual=False)


# ------------------------------------------------------------------------------ 2. CPU per grant
# `parked` tasks all call acquire at t=0 on a 1,000/s limiter with no burst.  Once every one of them is
# parked, we count process CPU time until `grants` more grants have happened.  An event-driven limiter wakes
# one task per grant; a polling one wakes every waiter every 1/rate seconds.


@dataclass
class GrantCost:
    cpu_per_grant: float  # seconds of process CPU time per grant
    grants: int
    elapsed: float  # loop-clock seconds the measurement covered


async def _cpu_per_grant(
    make: Callable[[], Any],
    acquire_of: Callable[[Any], Callable[[], Awaitable[Any]]],
    parked: int,
    grants: int,
) -> GrantCost:
    limiter = make()
    acquire = acquire_of(limiter)
    loop = asyncio.get_running_loop()
    granted = 0
    target = math.inf
    reached = loop.create_future()

    async def waiter() -> None:
        nonlocal granted
        await acquire()
        granted += 1
        if granted >= target and not reached.done():
            reached.set_result(None)

    tasks = [asyncio.create_task(waiter()) for _ in range(parked)]
    await asyncio.sleep(0)  # every task runs once and parks (the ready queue holds them all before us)
    before = granted
    grants = min(grants, parked - before)  # never wait for more grants than there are waiters left
    target = before + grants
    cpu0, clock0 = time.process_time(), loop.time()
    await reached
    cpu1, clock1 = time.process_time(), loop.time()
    measured = granted - before
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    _close(limiter)
    return GrantCost((cpu1 - cpu0) / measured, measured, clock1 - clock0)


async def _cpu_floor(parked: int, grants: int) -> GrantCost:
    """What the loop itself costs: a timer every 1 ms resolves the next parked future (no limiter at all)."""
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in range(parked)]
    granted = 0
    reached = loop.create_future()

    async def waiter(future: asyncio.Future[None]) -> None:
        nonlocal granted
        await future
        granted += 1
        if granted >= grants and not reached.done():
            reached.set_result(None)

    tasks = [asyncio.create_task(waiter(future)) for future in futures]
    await asyncio.sleep(0)
    pending = iter(futures)
    handle: asyncio.TimerHandle | None = None

    def tick() -> None:
        nonlocal handle
        next(pending).set_result(None)
        handle = loop.call_at(loop.time() + 0.001, tick)

    cpu0, clock0 = time.process_time(), loop.time()
    handle = loop.call_at(loop.time() + 0.001, tick)
    await reached
    cpu1, clock1 = time.process_time(), loop.time()
    handle.cancel()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return GrantCost((cpu1 - cpu0) / granted, granted, clock1 - clock0)


def _plain(limiter: Any) -> Callable[[], Awaitable[Any]]:
    return limiter.acquire  # type: ignore[no-any-return]


def _pyrate(limiter: Any) -> Callable[[], Awaitable[Any]]:
    return functools.partial(limiter.try_acquire_async, "bench")


def _run_on_small_livelock_budget(coro: Any, max_spins: int) -> Any:
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(max_spins=max_spins)) as runner:
        return runner.run(coro)


def bench_cpu_per_grant(sizes: Sizes) -> None:
    print("2. CPU per grant", file=sys.stderr, flush=True)
    bench = "2 CPU per grant"
    parked = sizes.parked
    where = f"{parked:,} parked, 1,000/s burst 1"
    target = "≤ 5 µs"

    def note(cost: GrantCost, extra: str = "") -> str:
        text = f"{where}; {cost.grants:,} grants over {cost.elapsed:.3f} s of loop time"
        return f"{text}; {extra}" if extra else text

    # Ours, on virtual time.
    for subject, make in [
        ("TokenBucket(rate=1000, capacity=1)", lambda: TokenBucket(rate=1000, capacity=1)),
        ("GCRA(rate=1000, burst=1)", lambda: GCRA(rate=1000, burst=1)),
    ]:
        cost = run(_cpu_per_grant(make, _plain, parked, sizes.grants_ours), virtual=True)
        ok = verdict(cost.cpu_per_grant <= 5e-6)
        add(Row(bench, subject, "virtual", target, us(cost.cpu_per_grant), ok, note(cost)))
    floor = run(_cpu_floor(parked, sizes.grants_ours), virtual=True)
    add(
        Row(
            bench,
            "reference: no limiter, one timer + one task wake per grant",
            "virtual",
            "-",
            us(floor.cpu_per_grant),
            "-",
            note(floor, "the loop's own floor"),
        )
    )

    # The article's polling bucket, on virtual time (few grants: each costs one wake-up per waiter).
    polling_box: list[PollingTokenBucket] = []

    def make_polling() -> PollingTokenBucket:
        polling_box.append(PollingTokenBucket(rate=1000, capacity=1))
        return polling_box[-1]

    cost = run(_cpu_per_grant(make_polling, _plain, parked, sizes.grants_polling), virtual=True)
    add(
        Row(
            bench,
            "naive PollingTokenBucket(rate=1000, capacity=1)",
            "virtual",
            "- (naive)",
            us(cost.cpu_per_grant),
            "-",
            note(cost, f"{polling_box[-1].polls:,} polls"),
        )
    )

    # aiolimiter reads loop.time(), so it should run on virtual time -- but it livelocks there (see README).
    if aiolimiter is None:
        add(Row(bench, "aiolimiter AsyncLimiter(1, 0.001)", "virtual", "- (peer)", MISSING, "-"))
    else:
        spins = 100_000
        subject = "aiolimiter AsyncLimiter(1, 0.001)"
        scenario = _cpu_per_grant(
            lambda: aiolimiter.AsyncLimiter(1, 0.001), _plain, parked, sizes.grants_ours
        )
        try:
            cost = _run_on_small_livelock_budget(scenario, spins)
            add(Row(bench, subject, "virtual", "- (peer)", us(cost.cpu_per_grant), "-", note(cost)))
        except VirtualTimeLivelock as exc:
            first = str(exc).split(":", 1)[0]
            add(
                Row(
                    bench,
                    subject,
                    "virtual",
                    "- (peer)",
                    "VirtualTimeLivelock",
                    "-",
                    f"{first} (max_spins={spins:,}): re-arms its timer for *now* on a rounding residue",
                )
            )

    # On a real loop, for a bounded number of grants: ours (same conditions as the peers) and the peers that
    # must run there -- pyrate-limiter reads time.monotonic(), aiolimiter livelocks on virtual time.
    def pyrate_bucket(**options: Any) -> Callable[[], Any] | None:
        if pyrate_factory is None:
            return None
        second = pyrate_limiter.Duration.SECOND
        return lambda: pyrate_factory.create_token_bucket_limiter(1000, second, burst=1, **options)

    # (subject, factory or None if not installed, how to acquire, grants to measure, why it runs here)
    AcquireOf = Callable[[Any], Callable[[], Awaitable[Any]]]
    real: list[tuple[str, Callable[[], Any] | None, AcquireOf, int, str]] = [
        (
            "TokenBucket(rate=1000, capacity=1)",
            lambda: TokenBucket(rate=1000, capacity=1),
            _plain,
            sizes.grants_real,
            "ours under the peers' conditions",
        ),
        (
            "aiolimiter AsyncLimiter(1, 0.001)",
            (lambda: aiolimiter.AsyncLimiter(1, 0.001)) if aiolimiter else None,
            _plain,
            sizes.grants_real,
            "real loop because it livelocks on virtual time",
        ),
        (
            "pyrate-limiter create_token_bucket_limiter(1000/s, burst=1, buffer_ms=0)",
            pyrate_bucket(buffer_ms=0),
            _pyrate,
            sizes.grants_real,
            "real loop because it reads time.monotonic()",
        ),
        (
            "pyrate-limiter create_token_bucket_limiter(1000/s, burst=1), default buffer_ms=50",
            pyrate_bucket(),
            _pyrate,
            20,
            "every retry sleeps 50 ms more than needed",
        ),
    ]
    for subject, maybe_make, acquire_of, grants, why in real:
        if maybe_make is None:
            add(Row(bench, subject, "real", "- (peer)", MISSING, "-"))
            continue
        ours = subject.startswith("TokenBucket")
        cost = run(_cpu_per_grant(maybe_make, acquire_of, parked, grants), virtual=False)
        rate = f"{cost.grants / cost.elapsed:,.0f} grants/s achieved"
        add(
            Row(
                bench,
                subject,
                "real",
                "- (OS wake-ups dominate)" if ours else "- (peer)",
                us(cost.cpu_per_grant),
                "-",
                note(cost, f"{rate}; {why}"),
            )
        )


# ------------------------------------------------------------------------------------ 3. accuracy
# All requests at once on "100 per 1 s", measured where a user measures it: the moment each caller proceeds
# (acquire returned to it), with one caller spending 4 ms of CPU right after its grant, as a caller parsing
# a response would.  The busiest 1-s window of those moments must hold at most 100 (half-open windows: a
# start at t0 has left once t0 + 1 <= t, the limiter's own convention), and the last caller should start
# when the ideal schedule says: 100 at 0 s, 100 at 1 s, ... -> (n/100 - 1) s.


def _busiest(stamps: list[float], window: float) -> int:
    stamps = sorted(stamps)
    best = first = 0
    for last, t in enumerate(stamps):
        while stamps[first] + window <= t:
            first += 1
        best = max(best, last - first + 1)
    return best


async def _burst(make: Callable[[], Any], n: int) -> tuple[int, float]:
    limiter = make()
    loop = asyncio.get_running_loop()
    start = loop.time()
    started: list[float] = []

    async def caller(i: int) -> None:
        await limiter.acquire()
        started.append(loop.time())
        if i == 150:  # a caller that works a little right after its grant delays everyone behind it
            end = time.perf_counter() + 0.004
            while time.perf_counter() < end:
                pass

    await asyncio.gather(*(caller(i) for i in range(n)))
    return _busiest(started, 1.0), max(started) - start


def bench_accuracy(sizes: Sizes) -> None:
    print("3. accuracy (the real-loop runs take a few seconds each)", file=sys.stderr, flush=True)
    bench = "3 accuracy"
    n, limit, window = sizes.burst_requests, 100, 1.0
    ideal = (math.ceil(n / limit) - 1) * window
    bound = 1.005 * ideal
    target = f"max ≤ {limit} / 1 s; makespan ≤ {bound:.3f} s (1.005 × {ideal:.1f})"
    for subject, make, ours in [
        (
            "SlidingWindowLog(100, 1.0)",
            lambda: SlidingWindowLog(max_requests=limit, window_seconds=window),
            True,
        ),
        ("naive DequeSlidingWindow(100, 1.0)", lambda: DequeSlidingWindow(limit, window), False),
    ]:
        for loop_name, virtual in (("virtual", True), ("real", False)):
            busiest, makespan = run(_burst(make, n), virtual=virtual)
            ok = busiest <= limit and makespan <= bound
            measured = f"max {busiest} / 1 s; makespan {makespan:.4f} s ({makespan / ideal:.4f} × ideal)"
            add(
                Row(
                    bench,
                    subject,
                    loop_name,
                    target if ours else "- (naive)",
                    measured,
                    verdict(ok) if ours else "-",
                    f"{n} requests at once; measured at the callers, one spending 4 ms of CPU",
                )
            )


# ------------------------------------------------------------------------------------ 4. fairness
# Waiter i arrives at i × 2**-10 s (about 1 ms; virtual time), ten times faster than the limiters serve, so
# a queue builds and arrival order is known exactly.  An inverted pair is two waiters served in the opposite
# order of their arrival; a FIFO limiter has none.  The step is a power of two so that arrival times add and
# subtract exactly: with a decimal step (1 ms, 1 µs) the naive deque window falls into the float trap and
# spins forever on virtual time instead (its own row shows that).


def inverted_pairs(order: list[int]) -> int:
    """Pairs (i, j) with i before j in ``order`` but i > j: a merge sort that counts as it merges."""

    def sort(items: list[int]) -> tuple[list[int], int]:
        if len(items) <= 1:
            return items, 0
        mid = len(items) // 2
        left, a = sort(items[:mid])
        right, b = sort(items[mid:])
        merged: list[int] = []
        count = a + b
        i = j = 0
        while i < len(left) and j < len(right):
            if left[i] <= right[j]:
                merged.append(left[i])
                i += 1
            else:
                merged.append(right[j])
                count += len(left) - i  # every remaining left item arrived after right[j]
                j += 1
        merged.extend(left[i:])
        merged.extend(right[j:])
        return merged, count

    return sort(order)[1]


async def _use_plain(limiter: Any) -> None:
    await limiter.acquire()


async def _use_throttler(throttler: Any) -> None:
    permit = await throttler.acquire(100)
    await asyncio.sleep(0.001)  # the "request"
    permit.release()


async def _service_order(
    make: Callable[[], Any], use: Callable[[Any], Awaitable[None]], n: int, stagger: float
) -> tuple[list[int], Any]:
    limiter = make()
    order: list[int] = []

    async def one(i: int) -> None:
        await asyncio.sleep(i * stagger)
        await use(limiter)
        order.append(i)

    await asyncio.gather(*(one(i) for i in range(n)))
    return order, limiter


def bench_fairness(sizes: Sizes) -> None:
    print("4. fairness", file=sys.stderr, flush=True)
    bench = "4 fairness"
    n, stagger = sizes.fair_waiters, 2**-10
    pairs = n * (n - 1) // 2
    subjects: list[tuple[str, Callable[[], Any], Callable[[Any], Awaitable[None]], bool]] = [
        ("TokenBucket(rate=100, capacity=10)", lambda: TokenBucket(rate=100, capacity=10), _use_plain, True),
        ("GCRA(rate=100, burst=10)", lambda: GCRA(rate=100, burst=10), _use_plain, True),
        (
            "SlidingWindowLog(100, 1.0)",
            lambda: SlidingWindowLog(max_requests=100, window_seconds=1.0),
            _use_plain,
            True,
        ),
        (
            "Throttler(max_concurrent=10, rpm=6000, tpm=600000, window=0.1)",
            lambda: Throttler(max_concurrent=10, rpm=6_000, tpm=600_000, window=0.1),
            _use_throttler,
            True,
        ),
        (
            "naive PollingTokenBucket(rate=100, capacity=10)",
            lambda: PollingTokenBucket(rate=100, capacity=10),
            _use_plain,
            False,
        ),
        ("naive DequeSlidingWindow(100, 1.0)", lambda: DequeSlidingWindow(100, 1.0), _use_plain, False),
    ]
    for subject, make, use, ours in subjects:
        order, limiter = run(_service_order(make, use, n, stagger), virtual=True)
        inversions = inverted_pairs(order)
        polls = getattr(limiter, "polls", None)
        note = f"{n} waiters arriving 2^-10 s apart"
        if polls is not None:
            note += f"; {polls:,} polls"
        measured = f"{inversions:,} of {pairs:,} pairs inverted"
        add(
            Row(
                bench,
                subject,
                "virtual",
                "0 inverted pairs" if ours else "- (naive)",
                measured,
                verdict(inversions == 0) if ours else "-",
                note,
            )
        )

    # The same naive window with arrivals 0.001 s apart: `t0 <= now - window` is False at now = t0 + window
    # (1.001 - 1.0 rounds below 0.001), the waiter sleeps 0 s and re-checks forever.  A small spin budget
    # reports it quickly (a real loop escapes only because its clock keeps moving).
    spins = 2_000
    subject = "naive DequeSlidingWindow(100, 1.0), arrivals 0.001 s apart"
    try:
        order, limiter = _run_on_small_livelock_budget(
            _service_order(lambda: DequeSlidingWindow(100, 1.0), _use_plain, n, 0.001), spins
        )
        measured = f"{inverted_pairs(order):,} of {pairs:,} pairs inverted"
        add(Row(bench, subject, "virtual", "- (naive)", measured, "-", f"{limiter.polls:,} polls"))
    except VirtualTimeLivelock as exc:
        first = str(exc).split(":", 1)[0]
        add(
            Row(
                bench,
                subject,
                "virtual",
                "- (naive)",
                "VirtualTimeLivelock",
                "-",
                f"{first} (max_spins={spins:,}): the float trap",
            )
        )


# -------------------------------------------------------------------------------- 5. virtual-time speed


async def _hour_of_traffic(n: int, seed: int, throttled: bool) -> tuple[int, float, float]:
    """n requests at seeded random moments of one hour; each holds its slot for a seeded latency."""
    rng = random.Random(seed)
    arrivals = sorted(rng.uniform(0.0, 3600.0) for _ in range(n))
    tokens = [rng.randint(100, 2_000) for _ in range(n)]
    latencies = [rng.uniform(1.0, 30.0) for _ in range(n)]
    throttler = Throttler(max_concurrent=50, rpm=200, tpm=200_000)
    done = 0

    async def request(i: int) -> None:
        nonlocal done
        await asyncio.sleep(arrivals[i])
        if throttled:
            async with throttler.slot(tokens=tokens[i]):
                await asyncio.sleep(latencies[i])
        else:
            await asyncio.sleep(latencies[i])
        done += 1

    await asyncio.gather(*(request(i) for i in range(n)))
    return done, asyncio.get_running_loop().time(), throttler.statistics().max_waited


def bench_virtual_speed(sizes: Sizes) -> None:
    print("5. virtual-time speed", file=sys.stderr, flush=True)
    bench = "5 virtual-time speed"
    n = sizes.hour_requests
    for subject, throttled, recording in [
        ("Throttler(max_concurrent=50, rpm=200, tpm=200000)", True, False),
        ("same, recording ON (`with record():`)", True, True),
        ("reference: the same sleeps, no throttler", False, False),
    ]:
        gc.collect()
        start = time.perf_counter()
        if recording:
            with record() as trace:
                done, clock, max_wait = run(_hour_of_traffic(n, 7, throttled), virtual=True)
            extra = f"; {len(trace):,} events recorded"
        else:
            done, clock, max_wait = run(_hour_of_traffic(n, 7, throttled), virtual=True)
            extra = ""
        wall = time.perf_counter() - start
        ours = throttled and not recording
        note = f"{done:,}/{n:,} done, virtual makespan {clock:,.0f} s"
        if throttled:
            note += f", longest wait {max_wait:.1f} s"
        add(
            Row(
                bench,
                subject,
                "virtual",
                "≤ 1 s wall" if ours else "-",
                f"{wall:.3f} s wall",
                verdict(wall <= 1.0) if ours else "-",
                note + extra,
            )
        )


# ------------------------------------------------------------------------------------------- main


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes for a run of a few seconds")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    command = "python benchmarks/bench_core.py" + (" --quick" if args.quick else "")

    started = time.perf_counter()
    bench_uncontended(sizes)
    bench_cpu_per_grant(sizes)
    bench_accuracy(sizes)
    bench_fairness(sizes)
    bench_virtual_speed(sizes)
    total = time.perf_counter() - started

    print("# throttle_lab core benchmarks")
    print()
    print(f"- command: `{command}`")
    python = f"{platform.python_version()} ({platform.python_implementation()})"
    print(f"- Python {python} on {platform.platform()}, {os.cpu_count()} CPUs")
    print(
        f"- throttle-lab {_version('throttle-lab')}, aiolimiter {_version('aiolimiter')}, "
        f"pyrate-limiter {_version('pyrate-limiter')}"
    )
    print(f"- total wall time {total:.1f} s; 'meets' is judged only for throttle_lab's own rows")
    print()
    print_table()


if __name__ == "__main__":
    main()
