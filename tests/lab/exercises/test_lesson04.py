"""Lesson 04: the reference window passes; the deque, fixed, off-by-one and polling windows fail usefully."""

from __future__ import annotations

import asyncio
import importlib.util
from collections import deque
from pathlib import Path
from types import ModuleType

from throttle_lab import FixedWindow, SlidingWindowCounter, SlidingWindowLog
from throttle_lab.lab import solutions
from throttle_lab.lab.exercises import lesson04
from throttle_lab.lab.grading import Report
from throttle_lab.lab.naive import DequeSlidingWindow

SOLUTION = Path(solutions.__file__).parent / "lesson04.py"


def load_solution() -> ModuleType:
    spec = importlib.util.spec_from_file_location("solution_lesson04", SOLUTION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results(report: Report) -> dict[str, bool]:
    return {r.name: r.passed for r in report.results}


PROMISE = "never more than 4 in any 2 s window"


class OffByOneWindow:
    """``<=`` where ``<`` belongs: one request too many per window."""

    def __init__(self, max_requests: float, window_seconds: float) -> None:
        self.limit, self.window = max_requests, window_seconds
        self.log: deque[float] = deque()

    async def acquire(self, weight: float = 1) -> None:
        if weight > self.limit:
            raise ValueError("too big")
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            while self.log and self.log[0] + self.window <= now:
                self.log.popleft()
            if len(self.log) <= self.limit:  # the bug
                self.log.append(now)
                return
            await asyncio.sleep(self.log[0] + self.window - now)


class PollingWindow:
    """Right expiry test, but sleep-and-retry every 10 ms."""

    def __init__(self, max_requests: float, window_seconds: float) -> None:
        self.limit, self.window = max_requests, window_seconds
        self.log: deque[float] = deque()

    async def acquire(self, weight: float = 1) -> None:
        if weight > self.limit:
            raise ValueError("too big")
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            while self.log and self.log[0] + self.window <= now:
                self.log.popleft()
            if len(self.log) < self.limit:
                self.log.append(now)
                return
            await asyncio.sleep(0.01)


def test_the_reference_solution_passes() -> None:
    report = lesson04.check(load_solution().MyWindow)
    assert report.passed, str(report)
    assert len(report.results) == 7
    assert results(report)["also right at 3 per 0.3 s"] is True


def test_the_library_sliding_log_passes() -> None:
    assert lesson04.check(SlidingWindowLog).passed


def test_the_article_deque_window_spins_on_the_float_trap() -> None:
    report = lesson04.check(DequeSlidingWindow)
    result = results(report)
    assert result["first come, first served"] is False
    assert "VirtualTimeLivelock" in str(report) and "t0 + window <= now" in str(report)


def test_a_fixed_window_fails_only_its_promise_across_a_boundary() -> None:
    report = lesson04.check(FixedWindow)
    assert [name for name, passed in results(report).items() if not passed] == [PROMISE]
    assert "busiest window held 8" in str(report) and "resets on the clock" in str(report)


def test_a_sliding_counter_is_only_an_estimate() -> None:
    assert results(lesson04.check(SlidingWindowCounter))[PROMISE] is False


def test_an_off_by_one_window_lets_one_too_many_through() -> None:
    report = lesson04.check(OffByOneWindow)
    assert results(report)[PROMISE] is False
    assert "busiest window held 5" in str(report)


def test_a_polling_window_is_caught_polling() -> None:
    report = lesson04.check(PollingWindow)
    result = results(report)
    assert result["no polling"] is False and result[PROMISE] is True
    assert "sleep-and-retry" in str(report)


def test_stubs_and_none_are_not_attempted_and_do_not_raise() -> None:
    class Stub:
        def __init__(self, max_requests: float, window_seconds: float) -> None:
            raise NotImplementedError

    for candidate in (Stub, None):
        report = lesson04.check(candidate)
        assert report.attempted is False and report.passed is False
        assert str(report).startswith("lesson04.check: not attempted yet")


def test_a_wrong_signature_is_reported_not_raised() -> None:
    class Positional:
        def __init__(self, limit: float, window: float) -> None:
            pass

    report = lesson04.check(Positional)
    assert results(report) == {"runs": False}
    assert "MyWindow(max_requests=..., window_seconds=...)" in str(report)
