"""Lesson 03: the reference bucket passes; polling, unfair, hanging and hard-coded buckets fail usefully."""

from __future__ import annotations

import asyncio
from collections import deque

import pytest

from throttle_lab import TokenBucket
from throttle_lab.lab.exercises import lesson03
from throttle_lab.lab.grading import Report
from throttle_lab.lab.naive import PollingTokenBucket

from .helpers import failing, load_solution, results
from .wrong_answers import ReserveThenSleepBucket


class QueueBucket:
    """A FIFO bucket with one timer and two knobs for classic mistakes (the defaults are correct)."""

    def __init__(self, rate: float, capacity: float, *, lifo: bool = False, check_size: bool = True) -> None:
        self.rate, self.capacity = rate, capacity
        self.lifo, self.check_size = lifo, check_size
        self.tokens, self.last = float(capacity), 0.0
        self.queue: deque[tuple[float, asyncio.Future[None]]] = deque()
        self.timer: asyncio.TimerHandle | None = None

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now

    async def acquire(self, weight: float = 1) -> None:
        if self.check_size and weight > self.capacity:
            raise ValueError("too heavy")
        loop = asyncio.get_running_loop()
        self.refill(loop.time())
        if not self.queue and self.tokens >= weight - 1e-9:
            self.tokens -= weight
            return
        future: asyncio.Future[None] = loop.create_future()
        self.queue.append((weight, future))
        self.serve(loop)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.tokens += weight
            self.serve(loop)
            raise

    def serve(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.refill(loop.time())
        while self.queue:
            weight, future = self.queue[-1] if self.lifo else self.queue[0]
            if future.done():
                self.queue.pop() if self.lifo else self.queue.popleft()
                continue
            if self.tokens < weight - 1e-9:
                self.timer = loop.call_at(loop.time() + (weight - self.tokens) / self.rate, self.serve, loop)
                return
            self.queue.pop() if self.lifo else self.queue.popleft()
            self.tokens -= weight
            future.set_result(None)


def test_the_reference_solution_passes() -> None:
    report = lesson03.check(load_solution("lesson03").MyBucket)
    assert report.passed, str(report)
    assert len(report.results) == 7
    assert "keeps its promise" in str(report)


def test_the_library_bucket_passes_and_a_correct_queue_bucket_too() -> None:
    assert lesson03.check(TokenBucket).passed
    assert lesson03.check(QueueBucket).passed


def test_the_article_polling_bucket_fails_on_order_oversize_polling_and_cancellation() -> None:
    report = lesson03.check(PollingTokenBucket)
    result = results(report)
    assert not report.passed
    assert result["first come, first served"] is False
    assert result["a request that can never fit fails fast"] is False
    assert result["no polling"] is False
    text = str(report)
    assert "hung" in text and "raise ValueError" in text and "sleep-and-retry" in text
    # The second setting is only tried once the first passes: no repeated failures.
    assert not any(name.startswith("also right") for name in result)


def test_a_bucket_that_serves_the_newest_waiter_first_is_unfair() -> None:
    report = lesson03.check(lambda rate, capacity: QueueBucket(rate, capacity, lifo=True))
    result = results(report)
    assert result["first come, first served"] is False
    assert result["never more than capacity + rate x T"] is True  # the rate itself is fine
    assert "keep waiters in a queue" in str(report)


def test_a_bucket_that_never_checks_the_size_hangs_on_an_oversize_request() -> None:
    report = lesson03.check(lambda rate, capacity: QueueBucket(rate, capacity, check_size=False))
    result = results(report)
    failed = [name for name, passed in result.items() if not passed]
    assert failed == ["a request that can never fit fails fast"]
    assert "weight 5: hung" in str(report) and "a whole virtual hour" in str(report)


def test_numbers_typed_into_the_class_are_caught_by_the_second_setting() -> None:
    report = lesson03.check(lambda rate, capacity: QueueBucket(2.0, 4))
    result = results(report)
    assert report.passed is False
    assert result["also right at rate=0.5/s, capacity=3"] is False
    assert "self.rate and self.capacity" in str(report)


def test_stubs_and_none_are_not_attempted_and_do_not_raise() -> None:
    class InitStub:
        def __init__(self, rate: float, capacity: float) -> None:
            raise NotImplementedError

    class AcquireStub:
        def __init__(self, rate: float, capacity: float) -> None:
            pass

        async def acquire(self, weight: float = 1) -> None:
            raise NotImplementedError

    for candidate in (InitStub, AcquireStub, None):
        report = lesson03.check(candidate)
        assert report.attempted is False and report.passed is False
        assert str(report).startswith("lesson03.check: not attempted yet")


def test_a_wrong_signature_or_a_crash_is_reported_not_raised() -> None:
    class NoCapacity:
        def __init__(self, rate: float) -> None:
            pass

    report = lesson03.check(NoCapacity)
    assert results(report) == {"runs": False}
    assert "MyBucket(rate=..., capacity=...)" in str(report)

    class Crashes:
        def __init__(self, rate: float, capacity: float) -> None:
            pass

        async def acquire(self, weight: float = 1) -> None:
            raise KeyError("oops")

    report = lesson03.check(Crashes)
    assert results(report) == {"runs": False} and "KeyError" in str(report)


def test_check_works_where_an_event_loop_is_already_running() -> None:
    # A notebook cell runs inside the kernel's event loop; the grader must still run.
    async def inside_a_loop() -> Report:
        return lesson03.check(load_solution("lesson03").MyBucket)

    assert asyncio.run(inside_a_loop()).passed


def test_count_timers_polling_against_one_timer() -> None:
    async def crowd(limiter: TokenBucket | PollingTokenBucket) -> int:
        await asyncio.gather(*(limiter.acquire() for _ in range(100)))
        return 100

    _, polling = lesson03.count_timers(crowd(PollingTokenBucket(rate=10.0, capacity=1)))
    _, ours = lesson03.count_timers(crowd(TokenBucket(rate=10.0, capacity=1)))
    assert ours <= 100 < 20 * 100 < polling


# ------------------------------------------------------------------------------------------------------
# A catalogue of real wrong answers, written the way learners write them: each must fail, with the hint
# that fits its mistake.
class RetryWhenRefilledBucket:
    """Sleep exactly until the tokens should be there, then look again: every waiter does, at once."""

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate, self.capacity = rate, capacity
        self.tokens, self.last = float(capacity), 0.0

    async def acquire(self, weight: float = 1) -> None:
        if weight > self.capacity:
            raise ValueError("too heavy")
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens >= weight - 1e-9:
                self.tokens -= weight
                return
            await asyncio.sleep((weight - self.tokens) / self.rate)


class TickingBucket(RetryWhenRefilledBucket):
    """Look again every 10 ms."""

    async def acquire(self, weight: float = 1) -> None:
        if weight > self.capacity:
            raise ValueError("too heavy")
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens >= weight - 1e-9:
                self.tokens -= weight
                return
            await asyncio.sleep(0.01)


class UncappedBucket(QueueBucket):
    """Refills without the ``min(capacity, ...)``: after a quiet spell it holds more than it may."""

    def refill(self, now: float) -> None:
        self.tokens += (now - self.last) * self.rate
        self.last = now


def test_reserve_then_sleep_is_caught_by_a_quitter_in_the_middle_of_the_queue() -> None:
    report = lesson03.check(ReserveThenSleepBucket)
    assert list(failing(report)) == ["a cancelled waiter takes nothing from the others"]
    text = str(report)
    assert "instead of" in text and "kept its tokens" in text and "not reserve it first" in text


def test_lifo_is_told_to_serve_the_head_not_the_newest() -> None:
    report = lesson03.check(lambda rate, capacity: QueueBucket(rate, capacity, lifo=True))
    assert list(failing(report)) == ["first come, first served"]
    assert "the newest waiters went first" in str(report) and "popleft" in str(report)


def test_retrying_when_refilled_is_polling_by_the_whole_queue() -> None:
    report = lesson03.check(RetryWhenRefilledBucket)
    hints = failing(report)
    assert "no polling" in hints and "first come, first served" in hints
    assert "sleeping until exactly that moment does not help" in hints["no polling"]
    assert "all but the first went back to sleep" in hints["no polling"]


def test_ticking_is_polling_at_moments_nothing_can_be_granted() -> None:
    hints = failing(lesson03.check(TickingBucket))
    assert "woke when nothing could be granted" in hints["no polling"]


def test_a_bucket_without_a_cap_is_told_to_cap_the_level() -> None:
    report = lesson03.check(UncappedBucket)
    hints = failing(report)
    assert list(hints) == ["never more than capacity + rate x T"]
    assert "never let it go above capacity" in hints["never more than capacity + rate x T"]


def test_hint_and_solution_are_exported() -> None:
    assert {"hint", "solution"} <= set(lesson03.__all__)


def test_hints_go_from_general_to_concrete_and_the_solution_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lesson03.hint(1)
    lesson03.hint(2)
    lesson03.hint(3)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"lesson03 hint {i} of 3" for i in (1, 2, 3)]
    assert "deque" in lines[1] and "loop.call_at" in lines[2] and "loop.call_at" not in lines[0]
    lesson03.solution()
    out = capsys.readouterr().out
    assert out.startswith("# throttle_lab.lab.solutions.lesson03") and "class MyBucket" in out


def test_a_crashing_bucket_is_told_which_scenario_it_crashed_in() -> None:
    class Crashes:
        def __init__(self, rate: float, capacity: float, initial_tokens: float | None = None) -> None:
            self.rate = rate

        async def acquire(self, weight: float = 1) -> None:
            raise KeyError("level")

    report = lesson03.check(Crashes)
    crash = next(r for r in report.results if r.name == "runs")
    assert not crash.passed and "KeyError" in crash.detail and "(while " in crash.detail
