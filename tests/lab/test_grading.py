"""The graders: references pass, classic mistakes fail with a useful hint, stubs are "not attempted"."""

from __future__ import annotations

import asyncio
import random
from collections import deque

import pytest

from mock_server import ServerConfig
from throttle_lab import GCRA, SlidingWindowLog, TokenBucket
from throttle_lab.lab.experiments import Workload, simulate
from throttle_lab.lab.grading import check_backoff, check_limiter, check_trace, inverted_pairs
from throttle_lab.lab.naive import DequeSlidingWindow, PollingTokenBucket


class Stub:
    async def acquire(self, weight: float = 1) -> None:
        raise NotImplementedError


class GreedyWindow:
    """A sliding log with an off-by-one: ``<=`` where ``<`` belongs lets limit + 1 through per window."""

    def __init__(self, max_requests: int, window_seconds: float) -> None:
        self.limit, self.window, self.log = max_requests, window_seconds, deque[float]()

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


def names(report: object) -> dict[str, bool]:
    return {r.name: r.passed for r in report.results}  # type: ignore[attr-defined]


def test_reference_limiters_pass() -> None:
    assert check_limiter(lambda: TokenBucket(rate=2.0, capacity=4), rate=2.0, capacity=4).passed
    assert check_limiter(lambda: GCRA(rate=5.0, burst=3), rate=5.0, capacity=3).passed
    assert check_limiter(lambda: SlidingWindowLog(4, 2), max_requests=4, window_seconds=2).passed


def test_the_polling_bucket_fails_on_order_oversize_polling_and_cancellation() -> None:
    report = check_limiter(lambda: PollingTokenBucket(rate=2.0, capacity=4), rate=2.0, capacity=4)
    assert not report.passed
    result = names(report)
    assert result["first come, first served"] is False
    assert result["a request that can never fit fails fast"] is False
    assert result["no polling"] is False
    text = str(report)
    assert "hung" in text and "raise ValueError" in text and "sleep-and-retry" in text


def test_the_deque_window_spins_on_the_float_trap() -> None:
    report = check_limiter(lambda: DequeSlidingWindow(4, 2), max_requests=4, window_seconds=2)
    assert names(report)["first come, first served"] is False
    assert "t0 + window <= now" in str(report)


def test_an_off_by_one_window_is_caught() -> None:
    report = check_limiter(lambda: GreedyWindow(4, 2.0), max_requests=4, window_seconds=2)
    assert names(report)["never more than 4 in any 2 s window"] is False


def test_stubs_are_not_attempted_and_do_not_raise() -> None:
    for report in (
        check_limiter(Stub, rate=1.0, capacity=2),
        check_limiter(None, max_requests=1, window_seconds=1),
        check_backoff(None),
        check_trace(None),
    ):
        assert report.attempted is False and report.passed is False
        assert "not attempted yet" in str(report)

    def stub_delay(attempt: int, hint: float | None) -> float:
        raise NotImplementedError

    assert check_backoff(stub_delay).attempted is False


def test_the_promise_must_be_stated_one_way() -> None:
    with pytest.raises(ValueError, match="state the promise"):
        check_limiter(Stub, rate=1.0, capacity=2, max_requests=3, window_seconds=1)


def test_backoff_grading() -> None:
    rng = random.Random(0)
    good = check_backoff(lambda a, h: max(h or 0.0, rng.uniform(0, min(30.0, 0.5 * 2**a))))
    assert good.passed
    early = check_backoff(lambda a, h: 0.5 * 2**a)  # ignores the hint, no jitter
    result = names(early)
    assert result["never earlier than the hint"] is False and result["jittered"] is False
    broken = check_backoff(lambda a, h: "soon")  # type: ignore[arg-type,return-value]
    assert not broken.passed and "must return a number" in str(broken)


def test_trace_grading() -> None:
    server = ServerConfig(rpm=60)
    good = check_trace(simulate("throttler", Workload(requests=150), server), rpm=60, min_utilisation=0.95)
    assert good.passed, str(good)
    bad = check_trace(simulate("semaphore", Workload(requests=150), server), rpm=60, min_utilisation=0.95)
    assert not bad.passed and "429s" in str(bad)


def test_inverted_pairs() -> None:
    assert inverted_pairs([1, 2, 3], [1, 2, 3]) == 0
    assert inverted_pairs([3, 2, 1], [1, 2, 3]) == 3


def test_a_clock_aligned_fixed_window_is_caught_by_the_late_burst() -> None:
    from throttle_lab import FixedWindow

    report = check_limiter(lambda: FixedWindow(5, 5), max_requests=5, window_seconds=5)
    assert names(report)["never more than 5 in any 5 s window"] is False
    assert "busiest window held 10" in str(report)


def test_checks_work_inside_a_running_loop_like_a_notebook_cell() -> None:
    async def cell() -> bool:
        return check_limiter(lambda: TokenBucket(rate=2.0, capacity=4), rate=2.0, capacity=4).passed

    assert asyncio.run(cell())


# ---------------------------------------------------------------------------------------------- quiet, named
class CrashesOnTheFourth:
    """Grants three, then its bookkeeping breaks: the learner's bug, deep inside a scenario."""

    def __init__(self) -> None:
        self.granted = 0

    async def acquire(self, weight: float = 1) -> None:
        self.granted += 1
        if self.granted > 3:
            raise KeyError("level")


class LeavesFailedTasksBehind:
    """A correct bucket that also starts a helper task per grant which fails, and nobody reads it."""

    def __init__(self) -> None:
        self.bucket = TokenBucket(rate=2.0, capacity=4)
        self.helpers: list[asyncio.Task[None]] = []

    async def acquire(self, weight: float = 1) -> None:
        await self.bucket.acquire(weight)

        async def log_it() -> None:
            raise RuntimeError("the helper broke")

        self.helpers.append(asyncio.ensure_future(log_it()))


def test_a_crash_in_a_scenario_names_the_scenario() -> None:
    from throttle_lab.lab.grading.report import describe_crash
    from throttle_lab.lab.grading.sandbox import drive

    with pytest.raises(KeyError) as crash:
        drive(CrashesOnTheFourth, [(0.0, 1.0)] * 5, horizon=60)
    assert describe_crash(crash.value) == "KeyError: 'level' (while 5 callers at once at t=0 s)"
    with pytest.raises(KeyError) as crash:
        drive(CrashesOnTheFourth, [(0.5 * i, 2.0) for i in range(6)], horizon=60)
    assert describe_crash(crash.value).endswith("(while 6 callers arriving from t=0 to 2.5 s, weight 2)")
    with pytest.raises(KeyError) as crash:
        drive(CrashesOnTheFourth, [(0.0, 1.0)] * 5, horizon=60, scenario="a burst just before a window ends")
    assert describe_crash(crash.value).endswith("(while a burst just before a window ends)")
    assert describe_crash(ValueError("plain\nsecond line")) == "ValueError: plain"  # no scenario, one line


def test_a_crash_is_named_by_its_innermost_scenario_only_once() -> None:
    from throttle_lab.lab.grading.report import describe_crash
    from throttle_lab.lab.grading.sandbox import run_counting

    async def inner() -> None:
        run_counting(lambda: _raise(ValueError("bad")), 60, scenario="inner")

    with pytest.raises(ValueError) as crash:
        run_counting(inner, 60, scenario="outer")
    assert crash.value.__notes__ == ["scenario: inner"]
    assert describe_crash(crash.value) == "ValueError: bad (while inner)"


async def _raise(exc: Exception) -> None:
    raise exc


def test_the_graders_own_outcomes_are_not_called_crashes() -> None:
    from throttle_lab.lab.grading.sandbox import run_counting

    async def stub() -> None:
        raise NotImplementedError

    async def hangs() -> None:
        await asyncio.Event().wait()

    for main, error in ((stub, NotImplementedError), (hangs, TimeoutError)):
        with pytest.raises(error) as outcome:
            run_counting(main, 5, scenario="named")
        assert not getattr(outcome.value, "__notes__", None)


def test_a_check_logs_nothing_the_learners_code_left_behind(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    import gc

    report = check_limiter(LeavesFailedTasksBehind, rate=2.0, capacity=4)
    gc.collect()
    assert report.passed, str(report)
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
    assert capsys.readouterr().err == ""


def test_quiet_learner_code_drops_leftovers_only_and_only_while_it_lasts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from throttle_lab.lab.grading.sandbox import quiet_learner_code

    log = logging.getLogger("asyncio")
    with quiet_learner_code():
        log.error("Task exception was never retrieved\nfuture: <Task ...>")
        log.error("Task was destroyed but it is pending!")
        log.error("something else went wrong")
    log.error("Future exception was never retrieved")
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == [
        "something else went wrong",
        "Future exception was never retrieved",
    ]
