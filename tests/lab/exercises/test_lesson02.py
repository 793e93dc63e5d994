"""Lesson 02: Little's law's cap passes; too many, too few, latency-blind and invalid caps fail usefully."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType

from throttle_lab.lab import solutions
from throttle_lab.lab.exercises import lesson02
from throttle_lab.lab.grading import Report

SOLUTION = Path(solutions.__file__).parent / "lesson02.py"


def load_solution() -> ModuleType:
    spec = importlib.util.spec_from_file_location("solution_lesson02", SOLUTION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results(report: Report) -> dict[str, bool]:
    return {r.name: r.passed for r in report.results}


def failed_hints(report: Report) -> str:
    return " ".join(r.hint for r in report.results if not r.passed)


def stub(limit_rpm: float, latency: float) -> int:
    raise NotImplementedError


def test_reference_function_passes_every_scenario() -> None:
    report = lesson02.check(load_solution().max_concurrent_for)
    assert report.passed, str(report)
    assert "5/5 checks passed" in str(report)
    # The note measures the same cap at other latencies: that is the lesson.
    assert "429s" in report.note and "of the limit unused" in report.note


def test_reference_number_passes() -> None:
    assert load_solution().MAX_CONCURRENT == 2
    assert lesson02.check(2).passed


def test_too_few_in_flight_wastes_the_limit() -> None:
    report = lesson02.check(1)
    assert results(report) == {
        "no 429s at 60 rpm, 2 s per request": True,
        "every request completed": True,
        "at least 90% of the binding limit": False,
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
