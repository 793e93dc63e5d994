"""The real-loop tier: every limiter's promise, measured where users measure it -- at the callers.

Virtual time cannot show the gap between a grant and its caller: there, waking a task takes no time.  On
a plain asyncio loop it does: the timer hands capacity to a crowd of waiters, they resume one after
another, and a caller that spends a few milliseconds of CPU right after its grant delays everyone behind
it.  (Stamped at grant time, a 100-per-second sliding log let 150 callers *start* within one second.)

Each test runs callers on ``asyncio.run`` (real time), stamps ``loop.time()`` the moment ``acquire``
returns -- when the caller really proceeds -- lets some callers burn CPU, and checks the limiter's promise
over those stamps.  Only bounds and counts are asserted, never durations: the machine is shared and noisy.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from throttle_lab import (
    GCRA,
    ConcurrencyLimiter,
    FixedWindow,
    SlidingWindowCounter,
    SlidingWindowLog,
    Throttler,
    TokenBucket,
)

from ..helpers import max_in_any_window

pytestmark = pytest.mark.realloop

CALLERS = 200
LIMIT = 20  # units per window / bucket capacity
WINDOW = 0.1  # seconds
RATE = LIMIT / WINDOW  # 200 per second
RESOLUTION = 0.01  # coalescing slot for the resolution tests: burst / rate = 0.1 s holds ten of them
STAMP_SLACK = RATE * 100e-6  # what a caller's stamp 100 µs after its booking is worth, in units (0.02)


def burn(seconds: float) -> None:
    """Spend CPU without yielding to the loop, like a caller parsing a big response."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def cpu_after_grant(i: int) -> float:
    """How long caller ``i`` works right after its grant: a little for everyone, and now and then a
    caller that blocks the loop for longer than a whole window."""
    if i in (30, 110):
        return 1.5 * WINDOW
    if i % 7 == 0:
        return 0.004
    return 0.0002


async def stamps_at_callers(limiter: Any, n: int = CALLERS, *, hold: float = 0.0) -> list[float]:
    """Start ``n`` callers at once; return the loop time at which each one proceeded, in order."""
    loop = asyncio.get_running_loop()
    started: list[float] = []

    async def caller(i: int) -> None:
        async with limiter.slot():
            started.append(loop.time())
            burn(cpu_after_grant(i))
            if hold:
                await asyncio.sleep(hold)

    await asyncio.gather(*(caller(i) for i in range(n)))
    return started


def worst_bucket_excess(stamps: Sequence[float], capacity: float, rate: float) -> float:
    """max over spans [t_i, t_j] of (starts in the span) - (capacity + rate * span length)."""
    ordered = sorted(stamps)
    worst = -math.inf
    for i, first in enumerate(ordered):
        for j in range(i, len(ordered)):
            worst = max(worst, (j - i + 1) - (capacity + rate * (ordered[j] - first)))
    return worst


def most_in_aligned_window(stamps: Sequence[float], window: float) -> int:
    return max(Counter(math.floor(t / window) for t in stamps).values())


class WakeUps:
    """Counts how often a limiter's timer woke it (wraps its ``_on_timer``)."""

    def __init__(self) -> None:
        self.count = 0

    def watch(self, limiter: Any) -> Any:
        on_timer = limiter._on_timer

        def counted() -> None:
            self.count += 1
            on_timer()

        limiter._on_timer = counted
        return limiter


def run_real(make: Callable[[], Any], **kwargs: Any) -> list[float]:
    async def main() -> list[float]:
        return await stamps_at_callers(make(), **kwargs)

    stamps = asyncio.run(main())
    assert len(stamps) == kwargs.get("n", CALLERS)  # everyone got through
    return stamps


def test_sliding_log_never_more_than_the_limit_in_any_window() -> None:
    stamps = run_real(lambda: SlidingWindowLog(max_requests=LIMIT, window_seconds=WINDOW))
    assert max_in_any_window(stamps, WINDOW) <= LIMIT


def test_sliding_log_throttler_meter_keeps_the_window_at_the_callers() -> None:
    def make() -> Throttler:
        return Throttler(max_concurrent=50, requests=SlidingWindowLog(LIMIT, WINDOW))

    stamps = run_real(make)
    assert max_in_any_window(stamps, WINDOW) <= LIMIT


@pytest.mark.parametrize(
    "make",
    [
        lambda: TokenBucket(rate=RATE, capacity=LIMIT),
        lambda: GCRA(rate=RATE, burst=LIMIT),
        lambda: Throttler(max_concurrent=50, rpm=RATE * 60, window=WINDOW),
    ],
    ids=["token_bucket", "gcra", "throttler"],
)
def test_buckets_stay_within_capacity_plus_rate_times_span(make: Callable[[], Any]) -> None:
    stamps = run_real(make)
    # A bucket at full rate keeps its bound with no slack to speak of: the grants after a batch of resumed
    # callers are due exactly when the bound allows.  A caller's own stamp comes a little after the moment
    # the limiter booked it (the return path; longer if the OS preempts the process right there, tens of
    # µs on a loaded machine), so allow STAMP_SLACK units.  A real early grant is a whole unit or more.
    assert worst_bucket_excess(stamps, LIMIT, RATE) <= STAMP_SLACK


@pytest.mark.parametrize(
    "make",
    [lambda: FixedWindow(LIMIT, WINDOW), lambda: SlidingWindowCounter(LIMIT, WINDOW)],
    ids=["fixed_window", "sliding_counter"],
)
def test_window_counters_never_exceed_the_limit_in_a_clock_aligned_window(make: Callable[[], Any]) -> None:
    # Both count per clock-aligned window (the counter also weighs the previous one); a caller that only
    # starts in the next window must count there.
    stamps = run_real(make)
    assert most_in_aligned_window(stamps, WINDOW) <= LIMIT


def test_concurrency_limit_holds_at_the_callers() -> None:
    async def main() -> int:
        limiter = ConcurrencyLimiter(max_concurrent=5)
        inside = most = 0

        async def caller(i: int) -> None:
            nonlocal inside, most
            async with limiter.slot():
                inside += 1
                most = max(most, inside)
                burn(cpu_after_grant(i) / 10)
                await asyncio.sleep(0.002)
                inside -= 1

        await asyncio.gather(*(caller(i) for i in range(CALLERS)))
        return most

    assert asyncio.run(main()) == 5


def test_paused_throttler_resumes_at_the_limits_pace_at_the_callers() -> None:
    # The client's books say 10 of 20 are left, but the server answered 429: its budget is spent.  After
    # the pause, what starts stays within what the limit earns from the moment of the 429 -- not the 10
    # the books still held plus the refill.
    pause = 0.05

    async def main() -> tuple[list[float], float]:
        throttler = Throttler(max_concurrent=50, rpm=RATE * 60, window=WINDOW)
        loop = asyncio.get_running_loop()
        for _ in range(10):
            (await throttler.acquire()).release()
        paused_at = loop.time()
        throttler.pause(pause)
        return await stamps_at_callers(throttler, 60), paused_at

    started, paused_at = asyncio.run(main())
    assert min(started) >= paused_at + pause
    for count, t in enumerate(sorted(started), start=1):
        assert count <= RATE * (t - paused_at) + 1, (count, t - paused_at)


@pytest.mark.parametrize(
    "make",
    [
        lambda: TokenBucket(rate=RATE, capacity=LIMIT, resolution=RESOLUTION),
        lambda: GCRA(rate=RATE, burst=LIMIT, resolution=RESOLUTION),
        lambda: Throttler(max_concurrent=50, rpm=RATE * 60, window=WINDOW, resolution=RESOLUTION),
    ],
    ids=["token_bucket", "gcra", "throttler"],
)
def test_coalesced_wake_ups_keep_the_bound_and_wake_once_per_slot(make: Callable[[], Any]) -> None:
    # With a resolution, grants come late (never early), so the bucket's bound holds at the callers as
    # before; and the limiter wakes at most once per slot of the resolution, however many it grants.
    wake_ups = WakeUps()
    stamps = run_real(lambda: wake_ups.watch(make()))
    assert worst_bucket_excess(stamps, LIMIT, RATE) <= STAMP_SLACK
    slots = (max(stamps) - min(stamps)) / RESOLUTION
    assert wake_ups.count <= slots + 2
    assert wake_ups.count < (CALLERS - LIMIT) / 2  # at 200/s and 10 ms slots, about two grants a wake-up


UV_TICK = 0.001  # uvloop's clock (libuv's) counts whole milliseconds


@pytest.mark.parametrize(
    "make",
    [
        lambda: TokenBucket(rate=RATE, capacity=LIMIT),
        lambda: GCRA(rate=RATE, burst=LIMIT),
        lambda: Throttler(max_concurrent=50, rpm=RATE * 60, window=WINDOW),
    ],
    ids=["token_bucket", "gcra", "throttler"],
)
def test_on_uvloop_the_bound_holds_to_a_tick_and_timers_do_not_spin(make: Callable[[], Any]) -> None:
    # uvloop is optional.  Its clock ticks in milliseconds, so a caller's stamp can read one tick later
    # than its booking: the bound holds to within what one tick earns.  Its timers fire on the tick their
    # instant falls in, with the clock unmoved: a limiter that re-armed for that instant would spin until
    # the tick ends (hundreds of wake-ups per grant); it waits the tick out instead.
    uvloop = pytest.importorskip("uvloop")
    wake_ups = WakeUps()

    async def main() -> list[float]:
        return await stamps_at_callers(wake_ups.watch(make()))

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        stamps = runner.run(main())
    assert len(stamps) == CALLERS
    assert worst_bucket_excess(stamps, LIMIT, RATE) <= RATE * UV_TICK + STAMP_SLACK
    assert wake_ups.count <= 3 * CALLERS


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_a_child_forked_inside_a_run_binds_its_own_loop() -> None:
    # The child inherits the parent's loop object, still marked running, in the same thread: the fast
    # path's "is my loop running in this thread?" would say yes.  A request that has to wait would then
    # set its timer on that dead loop and hang; the child must start afresh on a loop of its own.
    limiter = TokenBucket(rate=100.0, capacity=1)

    async def child() -> None:
        for _ in range(3):  # the second and third wait 10 ms each: a timer on the child's own loop
            await limiter.acquire()

    async def parent() -> int:
        await limiter.acquire()
        pid = os.fork()
        if pid == 0:  # the child: report by exit status, never return into pytest
            try:
                asyncio.run(asyncio.wait_for(child(), 5))
            except BaseException:
                os._exit(1)
            os._exit(0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            await asyncio.sleep(0.01)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return -1

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() in a process with threads
        assert asyncio.run(parent()) == 0
