"""Lesson 06: the reference delay passes; lockstep, jitter-under-the-hint, early and uncapped ones fail."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from types import ModuleType

from throttle_lab import ExponentialBackoff, FullJitter
from throttle_lab.lab import solutions
from throttle_lab.lab.exercises import lesson06
from throttle_lab.lab.grading import Report

SOLUTION = Path(solutions.__file__).parent / "lesson06.py"


def load_solution() -> ModuleType:
    spec = importlib.util.spec_from_file_location("solution_lesson06", SOLUTION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results(report: Report) -> dict[str, bool]:
    return {r.name: r.passed for r in report.results}


def test_the_reference_solution_passes() -> None:
    report = lesson06.check(load_solution().delay)
    assert report.passed, str(report)
    assert len(report.results) == 6


def test_lockstep_backoff_fails_on_jitter_and_the_herd() -> None:
    report = lesson06.check(lambda attempt, hint: max(hint or 0.0, min(30.0, 0.5 * 2**attempt)))
    result = results(report)
    assert result["jittered"] is False and result["the herd breaks up"] is False
    assert "25 retries" in str(report)


def test_jitter_under_the_hint_herds_at_the_hint() -> None:
    rng = random.Random(1)
    report = lesson06.check(
        lambda attempt, hint: max(hint or 0.0, rng.uniform(0, min(30.0, 0.5 * 2**attempt)))
    )
    result = results(report)
    assert result["never earlier than the hint"] and result["jittered"]
    assert result["the herd breaks up"] is False
    assert "add the jitter on top of the hint" in str(report)


def test_an_early_retry_is_caught() -> None:
    rng = random.Random(2)
    report = lesson06.check(lambda attempt, hint: rng.uniform(0, min(30.0, 0.5 * 2**attempt)))
    assert results(report)["never earlier than the hint"] is False
    assert "max(your delay, hint)" in str(report)


def test_an_uncapped_delay_is_caught() -> None:
    rng = random.Random(3)
    report = lesson06.check(lambda attempt, hint: (hint or 0.0) + rng.uniform(0, 5.0 * 2**attempt))
    assert results(report)["capped at 60 s"] is False


def test_waiting_exactly_the_hint_keeps_the_herd_together() -> None:
    report = lesson06.check(lambda attempt, hint: hint if hint is not None else 1.0)
    result = results(report)
    assert result["grows with the attempt"] is False and result["the herd breaks up"] is False


def test_garbage_is_reported_not_raised() -> None:
    report = lesson06.check(lambda attempt, hint: "soon")  # type: ignore[arg-type,return-value]
    assert not report.passed and "must return a number" in str(report)


def test_a_bad_value_inside_the_herd_is_named() -> None:
    calls = {"n": 0}

    def flaky(attempt: int, hint: float | None) -> float:
        calls["n"] += 1
        if calls["n"] > 400:  # check_backoff's own 360 calls pass; the herd then gets a NaN
            return float("nan")
        return (hint or 0.0) + random.uniform(0, min(30.0, 0.5 * 2**attempt))

    report = lesson06.check(flaky)
    assert not report.passed and "returned nan" in str(report)


def test_the_stub_is_not_attempted() -> None:
    def stub(attempt: int, hint: float | None) -> float:
        raise NotImplementedError

    for report in (lesson06.check(stub), lesson06.check(None)):
        assert report.attempted is False and not report.passed
        assert str(report).startswith("lesson06.check: not attempted yet")


def test_the_herd_helpers() -> None:
    lockstep = lesson06.herd(lambda: ExponentialBackoff(base=0.5, cap=8.0))
    jittered = lesson06.herd(lambda: FullJitter(base=0.5, cap=8.0, seed=1))
    assert lesson06.largest_wave(lockstep) == 25  # the 25 refused at t = 0 come back together
    assert lockstep.summary().completed == jittered.summary().completed == lesson06.HERD_CLIENTS
    assert len(lesson06.retry_arrivals(lockstep)) == lockstep.summary().rate_limited
