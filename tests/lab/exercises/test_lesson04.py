"""Lesson 04: the reference window passes; the deque, fixed, off-by-one and polling windows fail usefully."""

from __future__ import annotations

import asyncio
import math
from collections import deque

import pytest

from throttle_lab import FixedWindow, SlidingWindowCounter, SlidingWindowLog
from throttle_lab.lab.exercises import lesson04
from throttle_lab.lab.naive import DequeSlidingWindow

from .helpers import failing, load_solution, results
from .wrong_answers import RetryAtExpiryWindow

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
    report = lesson04.check(load_solution("lesson04").MyWindow)
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


# ------------------------------------------------------------------------------------------------------
# More real wrong answers, written the way learners write them: each must fail with the hint that fits.
class BookTheSlotWindow:
    """Book the next free moment in the log now, then sleep until it comes (a reservation)."""

    def __init__(self, max_requests: float, window_seconds: float) -> None:
        self.limit, self.window = int(max_requests), window_seconds
        self.log: deque[float] = deque()  # booked grant times, in order

    async def acquire(self, weight: float = 1) -> None:
        if weight > self.limit:
            raise ValueError("too big")
        now = asyncio.get_running_loop().time()
        at = now
        for _ in range(int(weight)):
            if len(self.log) >= self.limit:
                at = max(at, self.log[-self.limit] + self.window)
            self.log.append(at)
        if at > now:
            await asyncio.sleep(at - now)


class ClockWindow:
    """Counts per clock window ``[k W, (k + 1) W)``, served from a queue with one timer per reset."""

    def __init__(self, max_requests: float, window_seconds: float) -> None:
        self.limit, self.window = max_requests, window_seconds
        self.start, self.count = 0.0, 0.0
        self.queue: deque[tuple[float, asyncio.Future[None]]] = deque()
        self.timer: asyncio.TimerHandle | None = None

    async def acquire(self, weight: float = 1) -> None:
        if weight > self.limit:
            raise ValueError("too big")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self.queue.append((weight, future))
        self.serve(loop)
        await future

    def on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = None
        self.serve(loop)

    def serve(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        start = math.floor(now / self.window) * self.window
        if start != self.start:
            self.start, self.count = start, 0.0
        while self.queue and self.count + self.queue[0][0] <= self.limit:
            weight, future = self.queue.popleft()
            if not future.done():
                self.count += weight
                future.set_result(None)
        if self.queue and self.timer is None:
            self.timer = loop.call_at(self.start + self.window, self.on_timer, loop)


class HardCodedWindow:
    """The reference window, with the exercise's numbers typed in instead of read from the arguments."""

    def __init__(self, max_requests: float, window_seconds: float) -> None:
        self.inner = load_solution("lesson04").MyWindow(4, 2.0)

    async def acquire(self, weight: float = 1) -> None:
        await self.inner.acquire(weight)


def test_sleeping_until_the_oldest_expires_then_retrying_is_polling() -> None:
    hints = failing(lesson04.check(RetryAtExpiryWindow))
    assert PROMISE not in hints  # the limit itself holds
    assert "sleeping until exactly that moment does not help" in hints["no polling"]
    assert "wake only the head" in hints["no polling"]


def test_ticking_every_10_ms_is_told_it_wakes_for_nothing() -> None:
    hints = failing(lesson04.check(PollingWindow))
    assert "woke when nothing could be granted" in hints["no polling"]


def test_booking_a_slot_then_sleeping_is_not_cancellation_safe() -> None:
    report = lesson04.check(BookTheSlotWindow)
    hints = failing(report)
    assert list(hints) == ["a cancelled waiter takes nothing from the others"]
    assert "kept its place in the window" in str(report) and "instead of" in str(report)


def test_a_learners_clock_aligned_window_is_told_about_the_reset() -> None:
    report = lesson04.check(ClockWindow)
    assert list(failing(report)) == [PROMISE]
    assert "busiest window held 8" in str(report) and "resets on the clock" in str(report)


def test_an_off_by_one_is_named_as_one() -> None:
    hints = failing(lesson04.check(OffByOneWindow))
    assert "off-by-one" in hints[PROMISE] and "resets on the clock" not in hints[PROMISE]


def test_numbers_typed_in_are_caught_at_the_second_setting() -> None:
    hints = failing(lesson04.check(HardCodedWindow))
    assert list(hints) == ["also right at 3 per 0.3 s"]
    assert "never numbers typed in by hand" in hints["also right at 3 per 0.3 s"]


def test_hint_and_solution_are_exported_and_print(capsys: pytest.CaptureFixture[str]) -> None:
    assert {"hint", "solution"} <= set(lesson04.__all__)
    for level in (1, 2, 3):
        lesson04.hint(level)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"lesson04 hint {i} of 3" for i in (1, 2, 3)]
    assert "expires <= now" in lines[2] and "loop.call_at" in lines[2]
    lesson04.solution()
    out = capsys.readouterr().out
    assert out.startswith("# throttle_lab.lab.solutions.lesson04") and "class MyWindow" in out
