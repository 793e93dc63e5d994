"""Running a learner's code on virtual time, counting loop callbacks, and reading what it did.

A grader must survive the code it grades: a busy-wait is cut off (and counted), a hang becomes a named
error, and a check works inside a notebook cell (where a loop is already running) as well as in a script.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...core.events import Event, request_scope
from ...core.runtime import VirtualTimeLoop
from ...core.trace import Trace


class CountingLoop(VirtualTimeLoop):
    """A virtual loop that counts timers: a limiter that polls schedules many more than it grants.

    ``timers`` counts the timers armed (a timer re-armed and cancelled counts too); ``wakeups`` holds the
    virtual time at which each timer *fired* -- every fired timer wakes someone, so a limiter that wakes
    each waiter once fires about one per grant, and one whose waiters sleep and look again fires many.
    """

    def __init__(self) -> None:
        super().__init__(max_spins=50_000)
        self.timers = 0
        self.wakeups: list[float] = []

    def call_at(  # type: ignore[override]
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        self.timers += 1

        def fired(*fired_args: Any) -> object:
            self.wakeups.append(self.time())
            return callback(*fired_args)

        return super().call_at(when, fired, *args, context=context)


def run_counting(main: Callable[[], Any], horizon: float) -> tuple[Any, int]:
    """Run ``main()`` on a counting virtual loop, giving up after ``horizon`` virtual seconds.

    Where a loop is already running in this thread (a notebook cell), the run happens in a worker thread,
    as :func:`throttle_lab.run` does, so a check is one plain call everywhere.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run_counting_here(main, horizon)
    context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="throttle_lab.lab.grading") as pool:
        return pool.submit(context.run, run_counting_here, main, horizon).result()


def run_counting_here(main: Callable[[], Any], horizon: float) -> tuple[Any, int]:
    result, loop = run_watched_here(main, horizon)
    return result, loop.timers


def run_watched(main: Callable[[], Any], horizon: float) -> tuple[Any, CountingLoop]:
    """Like :func:`run_counting`, but hand back the (closed) loop, with its timers and wake-ups."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run_watched_here(main, horizon)
    context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="throttle_lab.lab.grading") as pool:
        return pool.submit(context.run, run_watched_here, main, horizon).result()


def run_watched_here(main: Callable[[], Any], horizon: float) -> tuple[Any, CountingLoop]:
    loop = CountingLoop()
    try:
        result = loop.run_until_complete(asyncio.wait_for(main(), timeout=horizon))
        return result, loop
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()


@dataclass
class DrivenRun:
    grants: list[tuple[float, Hashable, float]]  # (time, request, weight)
    timers: int
    order: list[Hashable]
    wakeups: list[float] = field(default_factory=list)  # when each timer fired (virtual time)


def drive(make: Callable[[], Any], arrivals: Sequence[tuple[float, float]], horizon: float) -> DrivenRun:
    """One caller per (arrival time, weight), each calling ``acquire(weight)`` (``acquire()`` for 1)."""
    grants: list[tuple[float, Hashable, float]] = []
    order: list[Hashable] = []

    async def main() -> None:
        limiter = make()
        loop = asyncio.get_running_loop()

        async def caller(index: int, at: float, weight: float) -> None:
            await asyncio.sleep(at)
            with request_scope(index):
                await acquire_once(limiter, weight)
            grants.append((loop.time(), index, weight))
            order.append(index)

        await asyncio.gather(*(caller(i, at, w) for i, (at, w) in enumerate(arrivals)))

    _, loop = run_watched(main, horizon)
    return DrivenRun(grants, loop.timers, order, loop.wakeups)


async def acquire_once(limiter: Any, weight: float) -> None:
    acquire = getattr(limiter, "acquire", None)
    if acquire is None:
        raise TypeError("your limiter needs an async acquire() method")
    if weight == 1:
        try:
            await acquire(1)
            return
        except TypeError as exc:
            if "argument" not in str(exc):
                raise
        await acquire()
    else:
        await acquire(weight)


def inverted_pairs(order: Sequence[Hashable], arrival: Sequence[Hashable]) -> int:
    """How many pairs were served in the opposite order of their arrival (0 = first come, first served)."""
    rank = {item: i for i, item in enumerate(arrival)}
    ranks = [rank[item] for item in order if item in rank]
    return sum(1 for i in range(len(ranks)) for j in range(i + 1, len(ranks)) if ranks[i] > ranks[j])


def max_in_window(grants: Sequence[tuple[float, Hashable, float]], window: float) -> float:
    return Trace(Event(t, "granted", "learner", r, w) for t, r, w in grants).max_in_window(
        "granted", window, weighted=True
    )


def bucket_excess(grants: Sequence[tuple[float, Hashable, float]], capacity: float, rate: float) -> float:
    """The worst ``granted - (capacity + rate x span)`` over all spans (<= 0 means the bound holds)."""
    ordered = sorted(grants, key=lambda g: g[0])
    worst = -math.inf
    for i in range(len(ordered)):
        total = 0.0
        for j in range(i, len(ordered)):
            total += ordered[j][2]
            worst = max(worst, total - (capacity + rate * (ordered[j][0] - ordered[i][0])))
    return worst
