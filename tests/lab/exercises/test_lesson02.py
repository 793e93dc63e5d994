"""Lesson 02: Little's law's cap passes; too many, too few, latency-blind and invalid caps fail usefully."""

from __future__ import annotations

import asyncio
import math

import pytest

from throttle_lab.lab.exercises import lesson02
from throttle_lab.lab.grading import Report
from throttle_lab.lab.solutions import lesson02 as reference

from .helpers import load_solution, results


def failed_hints(report: Report) -> str:
    return " ".join(r.hint for r in report.results if not r.passed)


def failures(report: Report) -> dict[str, str]:
    return {r.name: r.hint for r in report.results if not r.passed}


def stub(limit_rpm: float, latency: float) -> int:
    raise NotImplementedError


# -- the catalogue: wrong answers learners write ----------------------------------------------------------
def rounds_up(limit_rpm: float, latency: float) -> int:
    """Round up "to be sure to use the whole limit": one too many whenever rate x latency is fractional."""
    return math.ceil(limit_rpm / 60 * latency)


def rounds_to_nearest(limit_rpm: float, latency: float) -> int:
    return round(limit_rpm / 60 * latency)


def forgets_the_minute(limit_rpm: float, latency: float) -> int:
    """Requests per minute times seconds: 60 times too many in flight."""
    return int(limit_rpm * latency)


def latency_blind(limit_rpm: float, latency: float) -> int:
    """The rate in requests per second, taken for a number of requests in flight."""
    return max(1, int(limit_rpm / 60))


def divides_by_latency(limit_rpm: float, latency: float) -> int:
    """rate / latency instead of rate x latency (kept at least 1, so it is a valid cap)."""
    return max(1, int(limit_rpm / 60 / latency))


def test_reference_function_passes_every_scenario() -> None:
    report = lesson02.check(load_solution("lesson02").max_concurrent_for)
    assert report.passed, str(report)
    assert "6/6 checks passed" in str(report)
    # The note measures the same cap at other latencies: that is the lesson.
    assert "429s" in report.note and "of the limit unused" in report.note


def test_reference_number_passes() -> None:
    assert load_solution("lesson02").MAX_CONCURRENT == 2
    assert lesson02.check(2).passed


def test_too_few_in_flight_wastes_the_limit() -> None:
    report = lesson02.check(1)
    assert results(report) == {
        "no 429s at 60 rpm, 2 s per request": True,
        "every request completed": True,
        f"at least {lesson02.MIN_UTILISATION:.0%} of the binding limit": False,
    }
    assert "30 requests/min" in failed_hints(report) and "more in flight" in failed_hints(report)


def test_too_many_in_flight_gets_429s_and_loses_requests() -> None:
    report = lesson02.check(3)
    assert not report.passed
    assert results(report)["no 429s at 60 rpm, 2 s per request"] is False
    assert results(report)["every request completed"] is False
    assert "90 requests/min" in failed_hints(report) and "Little's law" in failed_hints(report)


def test_a_cap_equal_to_the_rpm_fails_everywhere() -> None:
    report = lesson02.check(lambda limit_rpm, latency: int(limit_rpm))
    assert not any(results(report).values())


def test_a_latency_blind_function_fails_the_other_latency() -> None:
    report = lesson02.check(lambda limit_rpm, latency: 2)
    assert results(report)["no 429s at 60 rpm, 2 s per request"] is True
    assert results(report)["also right for 60 rpm at 4 s per request"] is False
    assert not report.passed


def test_invalid_caps_are_refused_with_a_hint() -> None:
    for answer in (0, -1, "2", True, 2.0):
        report = lesson02.check(answer)  # type: ignore[arg-type]
        assert results(report) == {"a whole number of requests in flight": False}, answer
        assert "whole number" in failed_hints(report)
    # An inverted formula gives 0.5 -> int 0.
    assert not lesson02.check(lambda limit_rpm, latency: int(limit_rpm / 60 / latency)).passed


def test_a_crashing_function_is_reported() -> None:
    report = lesson02.check(lambda limit_rpm, latency: 1 // 0)
    assert results(report) == {"your function runs": False}
    assert "ZeroDivisionError" in str(report)


def test_stub_and_none_are_not_attempted() -> None:
    for answer in (stub, None):
        report = lesson02.check(answer)
        assert not report.attempted and not report.passed
        assert "not attempted yet" in str(report)


def test_littles_law() -> None:
    assert lesson02.littles_law_rpm(5, 0.5) == 600.0
    assert lesson02.littles_law_rpm(2, 2.0) == lesson02.LIMIT_RPM
    trace = lesson02.run_cap(5, latency=1.0, requests=20, rpm=None)
    assert lesson02.completed_per_minute(trace) == 300.0


def test_check_works_where_a_loop_is_already_running() -> None:
    async def from_a_running_loop() -> Report:
        return lesson02.check(2)

    assert asyncio.run(from_a_running_loop()).passed


# -- the catalogue, graded ---------------------------------------------------------------------------------
def test_rounding_up_fails_where_rate_x_latency_is_fractional() -> None:
    report = lesson02.check(rounds_up)
    assert not report.passed
    label = "also right for 72 rpm at 9 s per request"
    assert results(report)[label] is False
    assert all(passed for name, passed in results(report).items() if name != label)  # whole cases pass
    hint = failures(report)[label]
    assert "10.8 here, and you rounded up to 11" in hint and "math.floor" in hint


def test_rounding_to_the_nearest_fails_the_same_way() -> None:
    report = lesson02.check(rounds_to_nearest)
    assert not report.passed
    assert "you rounded up to 11" in failures(report)["also right for 72 rpm at 9 s per request"]


def test_requests_per_minute_times_seconds_gets_429s() -> None:
    report = lesson02.check(forgets_the_minute)
    assert not report.passed
    assert results(report)["no 429s at 60 rpm, 2 s per request"] is False
    assert "120 in flight" in failed_hints(report) and "fewer in flight" in failed_hints(report)


def test_a_rate_taken_for_a_cap_wastes_the_limit() -> None:
    report = lesson02.check(latency_blind)
    assert results(report)[f"at least {lesson02.MIN_UTILISATION:.0%} of the binding limit"] is False
    assert "1 in flight" in failed_hints(report) and "more in flight would use more" in failed_hints(report)


def test_dividing_by_the_latency_wastes_the_limit() -> None:
    report = lesson02.check(divides_by_latency)
    assert not report.passed
    assert results(report)[f"at least {lesson02.MIN_UTILISATION:.0%} of the binding limit"] is False
    assert "more in flight would use more" in failed_hints(report)


def test_the_reference_rounds_down_where_it_matters() -> None:
    assert reference.max_concurrent_for(72, 9.0) == 10
    assert (72, 9.0) in lesson02.OTHER_SCENARIOS


def test_hints_go_from_general_to_concrete_and_solution_prints_the_reference(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for level in (1, 2, 3):
        lesson02.hint(level)
    hints = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in hints] == [f"lesson02 hint {n} of 3" for n in (1, 2, 3)]
    assert "Little's law" in hints[0] and "math.floor" in hints[2]
    lesson02.solution()
    out = capsys.readouterr().out
    assert out.startswith("# throttle_lab.lab.solutions.lesson02") and "def max_concurrent_for" in out
    assert {"hint", "solution"} <= set(lesson02.__all__)
