"""Running a learner's code on virtual time, counting loop callbacks, and reading what it did.

A grader must survive the code it grades: a busy-wait is cut off (and counted), a hang becomes a named
error, and a check works inside a notebook cell (where a loop is already running) as well as in a script.

It must also keep quiet: the report says what went wrong, so what the learner's code leaves behind -- a
task or a gather whose exception nobody read, a coroutine never awaited -- is not also printed on stderr
(the loops here keep such reports to themselves; :func:`quiet_learner_code` covers any other loop).  And
a crash says where it happened: an exception out of :func:`drive` (or a run given a ``scenario``) carries
a note naming the scenario, which :func:`~throttle_lab.lab.grading.report.describe_crash` shows.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import gc
import logging
import math
import warnings
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...core.events import Event, request_scope
from ...core.runtime import VirtualTimeError, VirtualTimeLoop
from ...core.trace import Trace
from .report import SCENARIO_NOTE


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
        #: What the loop's exception handler was told (a task's exception nobody retrieved, ...): kept
        #: here rather than logged to stderr -- it is the learner's code's, and the report speaks for it.
        self.unhandled: list[dict[str, Any]] = []
        self.set_exception_handler(lambda loop, context: self.unhandled.append(context))

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


def run_counting(main: Callable[[], Any], horizon: float, *, scenario: str | None = None) -> tuple[Any, int]:
    """Run ``main()`` on a counting virtual loop, giving up after ``horizon`` virtual seconds.

    Where a loop is already running in this thread (a notebook cell), the run happens in a worker thread,
    as :func:`throttle_lab.run` does, so a check is one plain call everywhere.  An exception out of the
    learner's code is re-raised as it is, with a note naming ``scenario`` (if given).
    """
    result, loop = run_watched(main, horizon, scenario=scenario)
    return result, loop.timers


def run_counting_here(main: Callable[[], Any], horizon: float) -> tuple[Any, int]:
    result, loop = run_watched_here(main, horizon)
    return result, loop.timers


def run_watched(
    main: Callable[[], Any], horizon: float, *, scenario: str | None = None
) -> tuple[Any, CountingLoop]:
    """Like :func:`run_counting`, but hand back the (closed) loop, with its timers and wake-ups."""
    with _naming(scenario):
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


#: The grader's own outcomes: a stub, a hang cut off at the horizon, a stuck virtual loop.  Everything else
#: out of a scenario is the learner's code crashing, and gets the scenario's name.
_NOT_A_CRASH: tuple[type[BaseException], ...] = (NotImplementedError, TimeoutError, VirtualTimeError)


@contextlib.contextmanager
def _naming(scenario: str | None) -> Iterator[None]:
    """Add a note naming ``scenario`` to a crash of the learner's code passing through (once)."""
    try:
        yield
    except Exception as exc:
        named = any(note.startswith(SCENARIO_NOTE) for note in getattr(exc, "__notes__", ()))
        if scenario is not None and not named and not isinstance(exc, _NOT_A_CRASH):
            exc.add_note(f"{SCENARIO_NOTE}{scenario}")  # the innermost scenario names it
        raise


def describe_arrivals(arrivals: Sequence[tuple[float, float]]) -> str:
    """A scenario in words: ``"12 callers at once at t=0"``, ``"12 callers arriving from t=0.1 to 2.5 s"``."""
    if not arrivals:
        return "no callers"
    times = [at for at, _ in arrivals]
    weights = sorted({weight for _, weight in arrivals})
    who = f"{len(arrivals)} caller{'s' if len(arrivals) != 1 else ''}"
    if min(times) == max(times):
        text = f"{who} at once at t={times[0]:g} s" if len(arrivals) > 1 else f"{who} at t={times[0]:g} s"
    else:
        text = f"{who} arriving from t={min(times):g} to {max(times):g} s"
    if weights != [1.0]:
        text += f", weight {'/'.join(f'{w:g}' for w in weights)}"
    return text


@contextlib.contextmanager
def quiet_learner_code() -> Iterator[None]:
    """Keep the traces of the learner's mistakes off stderr while a check runs; the report explains them.

    * "coroutine ... was never awaited" (a coroutine made and never run) is not warned;
    * the loop's reports of a task or future whose exception nobody retrieved, of a task destroyed while
      pending, or of an error while a run shut down are not logged (loops other than the grader's own,
      such as :func:`throttle_lab.run`'s, log them through the ``asyncio`` logger);
    * at the end, what the learner's code left for the garbage collector is collected *here*, still
      quietly, rather than cells later.
    """
    quiet = _DropLeftovers()
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addFilter(quiet)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="coroutine .* was never awaited", category=RuntimeWarning
            )
            try:
                yield
            finally:
                gc.collect()
    finally:
        asyncio_logger.removeFilter(quiet)


class _DropLeftovers(logging.Filter):
    """Drops the asyncio loop's reports of what a learner's code left behind (see quiet_learner_code)."""

    LEFTOVERS = (
        "exception was never retrieved",
        "Task was destroyed but it is pending",
        "unhandled exception during asyncio.run() shutdown",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not any(leftover in message for leftover in self.LEFTOVERS)


@dataclass
class DrivenRun:
    grants: list[tuple[float, Hashable, float]]  # (time, request, weight)
    timers: int
    order: list[Hashable]
    wakeups: list[float] = field(default_factory=list)  # when each timer fired (virtual time)


def drive(
    make: Callable[[], Any],
    arrivals: Sequence[tuple[float, float]],
    horizon: float,
    *,
    scenario: str | None = None,
) -> DrivenRun:
    """One caller per (arrival time, weight), each calling ``acquire(weight)`` (``acquire()`` for 1).

    A crash of the learner's code carries a note naming the scenario: ``scenario``, or the arrivals in
    words (:func:`describe_arrivals`).
    """
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

    _, loop = run_watched(main, horizon, scenario=scenario or describe_arrivals(arrivals))
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
