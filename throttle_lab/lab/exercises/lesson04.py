"""Lesson 04 -- sliding windows: write a sliding-window log, and have it graded by how it behaves.

The exercise: a class built as ``MyWindow(max_requests=..., window_seconds=...)`` with ``async def
acquire(self, weight=1)`` that

* never lets more than ``max_requests`` through in *any* span of ``window_seconds`` (boundaries
  included: a grant at ``t0`` leaves the window at ``t0 + window_seconds``, not a moment earlier);
* serves waiters first come, first served, from one timer (no sleep-and-retry loop), and tests expiry
  with the very expression it sleeps until (``t0 + window <= now``), so rounding cannot make it spin;
* raises ``ValueError`` at once for a weight larger than ``max_requests``.

:func:`check` runs it on virtual time with :func:`throttle_lab.lab.grading.check_limiter`::

    lesson04.check(MyWindow)

Stuck?  :func:`hint` prints a hint (the next, more concrete one on each call) and :func:`solution` the
reference solution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..grading import CheckResult, Guide, Report, check_at_two_settings, check_limiter

__all__ = ["MAX_REQUESTS", "OTHER_SETTING", "WINDOW_SECONDS", "check", "hint", "solution"]

#: The setting ``check`` grades: 4 requests in any 2 seconds.
MAX_REQUESTS = 4
WINDOW_SECONDS = 2.0
#: A second setting: a window whose length is not a round binary fraction, where rounding bites.
OTHER_SETTING = (3, 0.3)

_TITLE = "lesson04.check"

_GUIDE = Guide(
    "lesson04",
    [
        "A sliding-window log remembers every grant still inside the window -- one entry per grant, which"
        " leaves the window at t0 + window_seconds, wherever the clock stands. Waiters wait in line to be"
        " handed their grant; nobody sleeps and looks again.",
        "Two collections.deque: the log of (expires, weight), oldest first, and the waiters' (weight, "
        "future). Drop every entry with expires <= now; the head fits when (weight in the log) + its "
        "weight <= max_requests. In acquire: ValueError if weight > max_requests; grant at once if nobody"
        " waits and it fits; otherwise append a future and await it.",
        "When the head does not fit, add up the log's weights from the oldest entry until enough would "
        "leave: that entry's `expires` is when the head fits. Arm one loop.call_at(expires, ...) -- the "
        "very float you test with `expires <= now`, so it cannot spin -- and when it fires, grant the "
        "head (and the next, while they fit) with future.set_result(None), then arm again. A cancelled "
        "waiter is skipped; one cancelled just after its grant gives its entry back.",
    ],
    solution="throttle_lab.lab.solutions.lesson04",
)


def hint(level: int | None = None) -> None:
    """Print the next hint for the exercise (or hint number ``level``), one level more concrete each call."""
    _GUIDE.hint(level)


def solution() -> None:
    """Print the reference solution (read it, then close it and write your own)."""
    _GUIDE.solution()


def _not_attempted() -> Report:
    return Report(
        _TITLE,
        attempted=False,
        note="MyWindow still raises NotImplementedError; fill it in and run me again.",
    )


def _crash_hint(exc: BaseException) -> str:
    if isinstance(exc, TypeError) and ("argument" in str(exc) or "positional" in str(exc)):
        return (
            "the check builds MyWindow(max_requests=..., window_seconds=...) and awaits acquire(weight): "
            "def __init__(self, max_requests, window_seconds) and async def acquire(self, weight=1)"
        )
    return "your window raised an exception: try it on its own (run(...) a few acquires) to see the traceback"


def _second_hint(failed: Sequence[CheckResult]) -> str:
    spinning = [r for r in failed if "VirtualTimeLivelock" in r.detail]
    if spinning:
        return spinning[0].hint  # the float trap bites at a window of 0.3 s
    return (
        "read max_requests and window_seconds from the arguments everywhere, never numbers typed in by hand"
    )


def _grade(window_class: Callable[..., Any], limit: float, window: float) -> Report:
    return check_limiter(
        lambda: window_class(max_requests=limit, window_seconds=window),
        max_requests=limit,
        window_seconds=window,
    )


def check(window_class: Callable[..., Any] | None) -> Report:
    """Grade your sliding-window log class: ``check(MyWindow)``.

    It is built as ``MyWindow(max_requests=MAX_REQUESTS, window_seconds=WINDOW_SECONDS)`` and driven on
    virtual time by :func:`~throttle_lab.lab.grading.check_limiter`: everyone gets through in the ideal time;
    never more than the limit in any window, for a burst at t=0 and for one just before a window ends
    (where a clock-aligned fixed window lets twice the limit through); first come first served; oversize
    requests fail fast; no polling; a cancelled waiter takes nothing from the others.  If all of that
    passes, once more at :data:`OTHER_SETTING`, so numbers typed into the class are caught.
    """
    if window_class is None:
        return Report(_TITLE, attempted=False, note="define MyWindow, then run me again.")
    limit, window = OTHER_SETTING
    report = check_at_two_settings(
        _TITLE,
        lambda setting: _grade(window_class, *setting),
        (MAX_REQUESTS, WINDOW_SECONDS),
        OTHER_SETTING,
        f"also right at {limit:g} per {window:g} s",
        crash_hint=_crash_hint,
        not_attempted=_not_attempted,
        second_hint=_second_hint,
    )
    if report.passed:
        report.note = (
            "Your window never exceeds its limit, serves in order and sleeps exactly as long as needed. "
            "Compare it with throttle_lab/core/limiters/sliding_log.py."
        )
    return report
