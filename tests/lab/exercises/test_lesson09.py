"""Lesson 09: the reference limiter passes both halves; polling, clock-aligned and spinning ones fail."""

from __future__ import annotations

import asyncio

import pytest

from throttle_lab import GCRA, FixedWindow, TokenBucket
from throttle_lab.lab.exercises import lesson09
from throttle_lab.lab.grading import Report
from throttle_lab.lab.naive import DequeSlidingWindow, PollingTokenBucket

from .helpers import failing, load_solution, results
from .wrong_answers import ReserveThenSleepBucket, RetryAtExpiryWindow


def test_the_reference_solution_passes_alone_and_in_the_race() -> None:
    report = lesson09.check(load_solution("lesson09").MyLimiter, promise="window")
    assert report.passed, str(report)
    assert any(name.startswith("in the race: ") for name in results(report))


def test_the_reference_solution_keeps_other_promises() -> None:
    report = lesson09.check(
        load_solution("lesson09").MyLimiter, promise={"max_requests": 3, "window_seconds": 2.0}
    )
    assert report.passed, str(report)


def test_our_own_limiters_pass() -> None:
    assert lesson09.check(TokenBucket, promise="bucket").passed
    assert lesson09.check(lambda rate, capacity: GCRA(rate=rate, burst=capacity), promise="bucket").passed


def test_a_clock_aligned_window_lets_a_double_burst_through() -> None:
    report = lesson09.check(FixedWindow, promise="window")
    result = results(report)
    # The generic grader's burst just before a window ends shows it, and so does traffic trickling in.
    assert result["alone: never more than 5 in any 5 s window"] is False
    assert result["alone: the promise holds for traffic that trickles in"] is False
    assert "resets on the clock" in str(report)
    assert not any(name.startswith("in the race") for name in result)  # it never gets to race


def test_the_polling_bucket_fails_alone() -> None:
    report = lesson09.check(PollingTokenBucket, promise="bucket")
    result = results(report)
    assert result["alone: first come, first served"] is False
    assert result["alone: no polling"] is False
    assert result["alone: a request that can never fit fails fast"] is False
    assert "Make it pass on its own first" in str(report)


def test_the_deque_window_spins() -> None:
    report = lesson09.check(DequeSlidingWindow, promise="window")
    assert not report.passed and "t0 + window <= now" in str(report)


def test_a_limiter_that_cannot_take_the_promise_is_reported() -> None:
    report = lesson09.check(load_solution("lesson09").MyLimiter, promise="bucket")
    assert not report.passed and "MyLimiter(rate=..., capacity=...)" in str(report)


def test_stubs_are_not_attempted() -> None:
    class StubAcquire:
        def __init__(self, rate: float, capacity: float) -> None:
            pass

        async def acquire(self, weight: float = 1) -> None:
            raise NotImplementedError

    class StubInit:
        def __init__(self, rate: float, capacity: float) -> None:
            raise NotImplementedError

    for report in (lesson09.check(StubAcquire), lesson09.check(StubInit), lesson09.check(None)):
        assert report.attempted is False and not report.passed
        assert str(report).startswith("lesson09.check: not attempted yet")


@pytest.mark.parametrize(
    "promise",
    [
        "leaky",
        {"rate": 1.0},
        {"rate": 1.0, "capacity": 5, "window_seconds": 5},
        {"rate": -1.0, "capacity": 5},
        {"rate": 0.3333, "capacity": 5},
    ],
)
def test_a_promise_the_server_cannot_enforce_is_a_usage_error(promise: object) -> None:
    with pytest.raises(ValueError):
        lesson09.check(TokenBucket, promise=promise)  # type: ignore[arg-type]


def test_the_race_and_the_server_match_the_promise() -> None:
    assert lesson09.server_for(lesson09.PROMISES["bucket"]).rpm == 60
    assert lesson09.server_for(lesson09.PROMISES["window"]).window == 5.0
    comparison = lesson09.race(TokenBucket, "bucket")
    assert set(comparison.traces) == {"mine", "throttler"}
    assert comparison.summaries["mine"].rate_limited == 0
    assert lesson09.trickle_arrivals(5, 5.0)[:2] == [0.0, 4.5]


def test_check_works_where_an_event_loop_is_running() -> None:
    # A notebook cell runs inside the kernel's loop; the grader must not try to start a loop there.
    async def in_a_cell() -> Report:
        return lesson09.check(TokenBucket, promise="bucket")

    assert asyncio.run(in_a_cell()).passed


# ------------------------------------------------------------------------------------------------------
# Real wrong answers, written the way learners write them: each fails, alone, with the hint that fits.
class OneTooManyWindow(RetryAtExpiryWindow):
    """Compares the count *before* adding with ``<=``: one grant too many in every window."""

    async def acquire(self, weight: int = 1) -> None:
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


class HardCodedBucket:
    """Our TokenBucket with the standard promise typed in instead of read from the arguments."""

    def __init__(self, rate: float, capacity: float) -> None:
        self.bucket = TokenBucket(rate=1.0, capacity=5)

    async def acquire(self, weight: float = 1) -> None:
        await self.bucket.acquire(weight)


def test_reserve_then_sleep_fails_the_quitter_in_the_middle() -> None:
    report = lesson09.check(ReserveThenSleepBucket, promise="bucket")
    hints = failing(report)
    assert list(hints) == ["alone: a cancelled waiter takes nothing from the others"]
    assert "kept its tokens" in str(report) and "not reserve it first" in str(report)
    assert not any(name.startswith("in the race") for name in results(report))


def test_retrying_at_expiry_is_polling() -> None:
    hints = failing(lesson09.check(RetryAtExpiryWindow, promise="window"))
    assert "alone: never more than 5 in any 5 s window" not in hints
    assert "sleeping until exactly that moment does not help" in hints["alone: no polling"]


def test_one_too_many_is_named_an_off_by_one() -> None:
    hints = failing(lesson09.check(OneTooManyWindow, promise="window"))
    assert "off-by-one" in hints["alone: never more than 5 in any 5 s window"]


def test_numbers_typed_in_are_caught_at_a_second_promise() -> None:
    report = lesson09.check(HardCodedBucket, promise="bucket")
    hints = failing(report)
    assert list(hints) == ["alone: also right at rate=0.5, capacity=3"]
    assert "never numbers typed in by hand" in hints["alone: also right at rate=0.5, capacity=3"]
    assert not any(name.startswith("in the race") for name in results(report))


def test_a_learners_own_promise_is_checked_at_a_standard_one_too() -> None:
    report = lesson09.check(
        load_solution("lesson09").MyLimiter, promise={"max_requests": 3, "window_seconds": 0.3}
    )
    assert report.passed, str(report)
    assert "alone: also right at max_requests=5, window_seconds=5" in results(report)


def test_hint_and_solution_are_exported_and_print(capsys: pytest.CaptureFixture[str]) -> None:
    assert {"hint", "solution"} <= set(lesson09.__all__)
    for level in (1, 2, 3):
        lesson09.hint(level)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"lesson09 hint {i} of 3" for i in (1, 2, 3)]
    assert "reserve-then-sleep" in lines[1] and "loop.call_at" in lines[2]
    lesson09.solution()
    out = capsys.readouterr().out
    assert out.startswith("# throttle_lab.lab.solutions.lesson09") and "class MyLimiter" in out
