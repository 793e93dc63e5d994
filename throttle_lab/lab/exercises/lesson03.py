"""Lesson 03 -- the token bucket: write your own, and have it graded by how it behaves over time.

The exercise: a class built as ``MyBucket(rate=..., capacity=...)`` with ``async def acquire(self,
weight=1)`` that

* lets ``rate`` units per second through in the long run, with bursts of up to ``capacity``;
* serves waiters first come, first served, from one timer (no sleep-and-retry loop);
* raises ``ValueError`` at once for a weight larger than ``capacity`` (it could never be granted).

:func:`check` runs it on virtual time with :func:`throttle_lab.lab.grading.check_limiter`::

    lesson03.check(MyBucket)

Stuck?  :func:`hint` prints a hint (the next, more concrete one on each call) and :func:`solution` the
reference solution.

The lesson also measures how often a limiter wakes the event loop, with :func:`count_timers`: every
``asyncio.sleep`` and every ``call_at`` arms one timer, so a limiter that polls arms many per grant.

>>> import asyncio
>>> from throttle_lab import TokenBucket
>>> async def crowd() -> int:
...     bucket = TokenBucket(rate=10.0, capacity=1)
...     await asyncio.gather(*(bucket.acquire() for _ in range(50)))
...     return bucket.statistics().granted
>>> granted, timers = count_timers(crowd())
>>> granted, timers <= granted
(50, True)
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ...core.runtime import VirtualTimeLoop
from ..grading import Guide, Report, check_at_two_settings, check_limiter

__all__ = [
    "CAPACITY",
    "OTHER_SETTING",
    "RATE",
    "call_off_the_loop",
    "check",
    "count_timers",
    "hint",
    "solution",
]

T = TypeVar("T")

#: The setting ``check`` grades: 2 per second, bursts of 4.
RATE = 2.0
CAPACITY = 4
#: A second setting (slow refill, odd capacity) that catches numbers written into the class by hand.
OTHER_SETTING = (0.5, 3)

_TITLE = "lesson03.check"

_GUIDE = Guide(
    "lesson03",
    [
        "Two pieces of state are enough: the level of the bucket at one moment (tokens at loop time `last`, "
        "from which the rate gives the level at any later moment) and a line of waiters. A waiter that must "
        "wait should be handed its tokens when they are there -- not wake up again and again to look.",
        "Keep the waiters in a collections.deque of (weight, future). In acquire: raise ValueError if "
        "weight > capacity; if nobody waits and the tokens are there, take them and return; otherwise append "
        "(weight, future) and await the future. Take tokens only when a waiter is granted, never before it "
        "waits: a waiter that gives up must leave nothing behind.",
        "Write one _serve(loop) method: refill, then while the head's tokens are there (allow 1e-9 for "
        "rounding) popleft it, subtract its weight and future.set_result(None); if the head must still wait, "
        "arm one loop.call_at(loop.time() + (weight - tokens) / rate, ...) that calls _serve again. Call "
        "_serve when a waiter joins an empty line, and in acquire's `except asyncio.CancelledError`: give "
        "the tokens back if the future had already been granted, call _serve, re-raise.",
    ],
    solution="throttle_lab.lab.solutions.lesson03",
)


def hint(level: int | None = None) -> None:
    """Print the next hint for the exercise (or hint number ``level``), one level more concrete each call."""
    _GUIDE.hint(level)


def solution() -> None:
    """Print the reference solution (read it, then close it and write your own)."""
    _GUIDE.solution()


# ------------------------------------------------------------------------------------------ helpers
def call_off_the_loop(fn: Callable[[], T]) -> T:
    """Call ``fn()`` here -- or, where an event loop is already running, in a worker thread.

    :func:`count_timers` drives its own event loop, and an event loop cannot start inside a running one
    (a notebook cell runs inside the kernel's loop).  A worker thread has no running loop, so the work
    runs there while this thread waits.  Context variables (an active ``record()``) go along.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="throttle_lab.check") as pool:
        return pool.submit(context.run, fn).result()


class _TimerCountingLoop(VirtualTimeLoop):
    """A virtual loop that counts the timers armed on it (each sleep, each ``call_at``)."""

    def __init__(self, max_spins: int) -> None:
        super().__init__(max_spins=max_spins)
        self.timers = 0

    def call_at(  # type: ignore[override]
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        self.timers += 1
        return super().call_at(when, callback, *args, context=context)


def count_timers(main: Coroutine[Any, Any, T], *, max_spins: int = 1_000_000) -> tuple[T, int]:
    """Run ``main`` on a fresh virtual-time loop; return its result and how many timers it armed.

    A timer is what wakes a sleeping task: ``asyncio.sleep(d)`` arms one, a limiter's ``call_at`` arms
    one.  A limiter that polls arms one per waiter per poll; one that hands capacity to the head of a
    queue arms about one per grant.  Works in scripts and in notebook cells alike.  ``max_spins``: how
    many callbacks may run at one instant before the loop calls it a livelock (``VirtualTimeLivelock``).
    """

    def go() -> tuple[T, int]:
        loop = _TimerCountingLoop(max_spins)
        try:
            result = loop.run_until_complete(main)
            return result, loop.timers
        finally:
            # Whatever is left (a task still spinning or waiting) is cancelled, so nothing leaks.
            leftover = asyncio.all_tasks(loop)
            for task in leftover:
                task.cancel()
            if leftover:
                loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    return call_off_the_loop(go)


# ------------------------------------------------------------------------------------------ the check
def _not_attempted() -> Report:
    return Report(
        _TITLE,
        attempted=False,
        note="MyBucket still raises NotImplementedError; fill it in and run me again.",
    )


def _crash_hint(exc: BaseException) -> str:
    if isinstance(exc, TypeError) and ("argument" in str(exc) or "positional" in str(exc)):
        return (
            "the check builds MyBucket(rate=..., capacity=...) and awaits acquire(weight): "
            "def __init__(self, rate, capacity) and async def acquire(self, weight=1)"
        )
    return "your bucket raised an exception: try it on its own (run(...) a few acquires) to see the traceback"


def _grade(bucket_class: Callable[..., Any], rate: float, capacity: float) -> Report:
    return check_limiter(lambda: bucket_class(rate=rate, capacity=capacity), rate=rate, capacity=capacity)


def check(bucket_class: Callable[..., Any] | None) -> Report:
    """Grade your token bucket class: ``check(MyBucket)``.

    It is built as ``MyBucket(rate=RATE, capacity=CAPACITY)`` and driven on virtual time by
    :func:`~throttle_lab.lab.grading.check_limiter`: everyone gets through in the ideal time, never more
    than ``capacity + rate x T`` in any span ``T``, first come first served, oversize requests fail fast,
    no polling, and a cancelled waiter takes nothing from the others.  If all of that passes, once more
    at :data:`OTHER_SETTING`, so numbers typed into the class are caught.
    """
    if bucket_class is None:
        return Report(_TITLE, attempted=False, note="define MyBucket, then run me again.")
    rate, capacity = OTHER_SETTING
    report = check_at_two_settings(
        _TITLE,
        lambda setting: _grade(bucket_class, *setting),
        (RATE, CAPACITY),
        OTHER_SETTING,
        f"also right at rate={rate:g}/s, capacity={capacity:g}",
        crash_hint=_crash_hint,
        not_attempted=_not_attempted,
        second_hint="use self.rate and self.capacity everywhere, never numbers typed in by hand",
    )
    if report.passed:
        report.note = (
            "Your bucket keeps its promise, in order, without polling. Compare it with "
            "throttle_lab/core/limiters/token_bucket.py, which does the same in a shared FIFO base class."
        )
    return report
