"""Helpers for the shared-limiter tests: checking bookings against a limit, skewed clocks, worker processes.

Bookings are checked on **Redis time** (``Reservation.at_us``, whole microseconds from the script): it is
the one clock every worker shares, and integers make window edges exact -- a booking at ``t0 + window`` is
in the next window, not (by a rounding error) in the same one.

Promises are checked **at the callers** on ``time.monotonic()`` stamps taken the moment ``acquire``
returned: on Linux that clock is system-wide, so stamps from several processes merge onto one timeline.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import multiprocessing
import queue
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from throttle_lab import Event, observe, run
from throttle_lab.shared import Reservation, SharedGCRA, SharedSlidingWindowLog, SharedThrottler

T = TypeVar("T")


def real(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a fresh real-time loop (sockets and virtual time don't mix)."""
    return run(coro, virtual=False)


async def in_order(acquire: Callable[[float], Awaitable[Reservation]], weights: Sequence[float]) -> list[int]:
    """Send requests one after another, each as soon as the previous one's booking is made (its ``queued``
    or ``granted`` event), so their order of arrival at Redis is known whatever the machine's load; wait
    for all of them and return their booked starts (``at_us``) in that order."""
    booked = asyncio.Event()

    def watch(event: Event) -> None:
        if event.kind in ("queued", "granted"):
            booked.set()

    tasks = []
    with observe(watch):
        for weight in weights:
            booked.clear()
            tasks.append(asyncio.ensure_future(acquire(weight)))
            await booked.wait()
    return [r.at_us if r.at_us is not None else -1 for r in await asyncio.gather(*tasks)]


def max_in_window(bookings: Sequence[tuple[int, float]], window_us: int) -> float:
    """The most weight starting in any half-open span ``[t, t + window)``; bookings are (at_us, weight)."""
    ordered = sorted(bookings)
    starts = [at for at, _ in ordered]
    prefix = [0.0]
    for _, weight in ordered:
        prefix.append(prefix[-1] + weight)
    best = 0.0
    for i, at in enumerate(starts):
        j = bisect.bisect_left(starts, at + window_us)
        best = max(best, prefix[j] - prefix[i])
    return best


def gcra_violations(bookings: Sequence[tuple[int, float]], rate: float, burst: float) -> list[int]:
    """Bookings that start earlier than a GCRA of ``rate``/s and ``burst`` allows (indexes, in time order).

    The definition itself: a request of weight w may start at t if TAT + w*T - burst*T <= t, after which
    TAT = max(TAT, t) + w*T.  A tolerance of 1 µs absorbs the script's rounding of starts to whole µs.
    """
    interval = 1e6 / rate
    tat = -math.inf
    bad = []
    for i, (at, weight) in enumerate(sorted(bookings)):
        if tat + (weight - burst) * interval > at + 1:
            bad.append(i)
        tat = max(tat, at) + weight * interval
    return bad


def late_start_violations(
    bookings: Sequence[tuple[int, float]], rate: float, burst: float, margin_us: int
) -> list[tuple[int, int]]:
    """Pairs of bookings (indexes in time order) that could break the bucket bound at the callers if each
    caller started anywhere from its booked start to ``margin_us`` later.

    Callers i..k span at least ``a_k - (a_i + margin)`` (i as late as it may be, k on time), so the bound
    ``burst + rate * T`` must hold for that span: sum(w_i..w_k) <= burst + rate * max(0, a_k - a_i - margin).
    A tolerance of 1 µs absorbs the script's rounding of starts to whole µs.
    """
    ordered = sorted(bookings)
    prefix = [0.0]
    for _, weight in ordered:
        prefix.append(prefix[-1] + weight)
    bad = []
    for k in range(len(ordered)):
        for i in range(k):
            span_us = max(0, ordered[k][0] - ordered[i][0] - margin_us) + 1
            if prefix[k + 1] - prefix[i] > burst + rate * span_us / 1e6 + 1e-9:
                bad.append((i, k))
    return bad


def most_in_window_at(stamps: Sequence[tuple[float, float]], window: float) -> float:
    """The most weight proceeding in any half-open span ``[t, t + window)``; stamps are (seconds, weight)."""
    ordered = sorted(stamps)
    times = [t for t, _ in ordered]
    prefix = [0.0]
    for _, weight in ordered:
        prefix.append(prefix[-1] + weight)
    return max(
        (prefix[bisect.bisect_left(times, t + window)] - prefix[i] for i, t in enumerate(times)), default=0.0
    )


def bucket_excess(stamps: Sequence[tuple[float, float]], rate: float, capacity: float) -> float:
    """How far the weight proceeding in some span [t_i, t_j] exceeds ``capacity + rate * (t_j - t_i)``
    (the token bucket's bound; at most 0 when it holds).  Stamps are (seconds, weight).

    For callers i..j in time order the excess is ``(S_j - rate t_j) - (S_(i-1) - rate t_i)`` with S the
    running weight, so the largest is one pass keeping the smallest second term seen so far.
    """
    worst = -math.inf
    lowest = math.inf
    total = 0.0
    for t, weight in sorted(stamps):
        lowest = min(lowest, total - rate * t)  # this caller as the first of a span
        total += weight
        worst = max(worst, total - rate * t - lowest - capacity)
    return worst


def burn(seconds: float) -> None:
    """Spend CPU without yielding to the loop, like a caller parsing a big response."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


Stamp = tuple[float, float, float, int]  # (time.monotonic() when acquire returned, weight, lateness, at_us)


async def stamp_callers(
    limiter: Any, weights: Sequence[float], work: tuple[float, float], seed: int
) -> list[Stamp]:
    """Start one caller per weight at once; each stamps ``time.monotonic()`` the moment ``acquire``
    returns, then burns ``work`` (a seeded range of seconds) of CPU."""
    rng = random.Random(seed)
    out: list[Stamp] = []

    async def caller(weight: float, cpu: float) -> None:
        reservation = await limiter.acquire(weight)
        out.append((time.monotonic(), weight, reservation.lateness, reservation.at_us))
        burn(cpu)

    await asyncio.gather(*(caller(weight, rng.uniform(*work)) for weight in weights))
    return out


def stamping_worker(
    barrier: Any,
    results: Any,
    index: int,
    kind: str,
    url: str,
    key: str,
    config: dict[str, Any],
    weights: list[float],
    work: tuple[float, float],
) -> None:
    """Body of one worker *process* on a plain asyncio loop: connect, wait for the others, then stamp
    callers (see :func:`stamp_callers`); put (index, stamps, overdue) on ``results``."""

    async def main() -> tuple[list[Stamp], int]:
        limiter = make_limiter(kind, url, key, **config)
        await asyncio.gather(*(limiter.peek() for _ in range(8)))  # connect first (one pool's worth)
        await asyncio.to_thread(barrier.wait, 30)
        stamps = await stamp_callers(limiter, weights, work, seed=index)
        overdue = limiter.statistics().overdue
        await limiter.aclose()
        return stamps, overdue

    stamps, overdue = asyncio.run(main())
    results.put((index, stamps, overdue))


def run_processes(target: Callable[..., None], per_process: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Run ``target(barrier, results, index, *args)`` in one spawned process per ``args``; return what each
    put on ``results``, in index order."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(per_process))
    results = ctx.Queue()
    workers = [
        ctx.Process(target=target, args=(barrier, results, i, *args), daemon=True)
        for i, args in enumerate(per_process)
    ]
    for worker in workers:
        worker.start()
    collected: dict[int, Any] = {}
    try:
        for _ in workers:
            report = results.get(timeout=60)
            collected[report[0]] = report
    except queue.Empty:  # pragma: no cover - a worker died; its exit code says more
        codes = [w.exitcode for w in workers]
        raise AssertionError(f"worker processes did not report (exit codes {codes})") from None
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():  # pragma: no cover
                worker.kill()
    return [collected[i] for i in sorted(collected)]


class SkewedLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock reads ``offset`` seconds away from everyone else's (a host with a wrong
    clock).  Sleeps still last as long as they should: only the reading is off."""

    def __init__(self, offset: float) -> None:
        super().__init__()
        self.offset = offset

    def time(self) -> float:
        return super().time() + self.offset


def make_limiter(kind: str, url: str, key: str, **config: Any) -> Any:
    factory: dict[str, Callable[..., Any]] = {
        "gcra": SharedGCRA,
        "log": SharedSlidingWindowLog,
        "throttler": SharedThrottler,
    }
    return factory[kind](url, key, **config)


async def hammer(
    kind: str, url: str, key: str, config: dict[str, Any], weights: Sequence[float], tasks: int
) -> list[tuple[int, float, float]]:
    """``tasks`` concurrent callers share ``weights`` (a queue of requests); return (at_us, weight, loop
    time of the grant) for each."""
    limiter = make_limiter(kind, url, key, **config)
    queue: asyncio.Queue[float] = asyncio.Queue()
    for weight in weights:
        queue.put_nowait(weight)
    loop = asyncio.get_running_loop()
    out: list[tuple[int, float, float]] = []

    async def caller() -> None:
        while not queue.empty():
            weight = queue.get_nowait()
            reservation = await limiter.acquire(weight)
            assert reservation.at_us is not None
            out.append((reservation.at_us, weight, loop.time()))

    await asyncio.gather(*(caller() for _ in range(tasks)))
    await limiter.aclose()
    return out


def process_worker(
    barrier: Any,
    results: Any,
    index: int,
    kind: str,
    url: str,
    key: str,
    config: dict[str, Any],
    weights: list[float],
    tasks: int,
    offset: float,
) -> None:
    """Body of one worker *process*: wait for the others, then hammer the shared limit on a loop whose
    clock is ``offset`` seconds off; put (index, bookings) on ``results``."""
    barrier.wait(timeout=30)
    started = time.monotonic()
    with asyncio.Runner(loop_factory=lambda: SkewedLoop(offset)) as runner:
        bookings = runner.run(hammer(kind, url, key, config, weights, tasks))
    results.put((index, bookings, time.monotonic() - started))
