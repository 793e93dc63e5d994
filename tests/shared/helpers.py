"""Helpers for the shared-limiter tests: checking bookings against a limit, skewed clocks, worker processes.

Bookings are checked on **Redis time** (``Reservation.at_us``, whole microseconds from the script): it is
the one clock every worker shares, and integers make window edges exact -- a booking at ``t0 + window`` is
in the next window, not (by a rounding error) in the same one.
"""

from __future__ import annotations

import asyncio
import bisect
import math
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
