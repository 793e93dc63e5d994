"""Lesson 07: the reference AIMD parameters pass; timid, sluggish and trigger-happy ones fail."""

from __future__ import annotations

import pytest

from throttle_lab.lab.exercises import lesson07

from .helpers import load_solution, results


def test_the_reference_solution_passes() -> None:
    report = lesson07.check(load_solution("lesson07").PARAMS)
    assert report.passed, str(report)
    assert "to get back to 90 %" in report.note


def test_a_function_returning_the_parameters_is_accepted() -> None:
    assert lesson07.check(lambda: load_solution("lesson07").PARAMS).passed


RECOVERY = "back to 90 % of 120/min within 16 s of the limit's return"


def test_the_adaptive_designs_defaults_climb_back_too_slowly() -> None:
    report = lesson07.check({"increase": 0.04, "decrease": 0.5, "cooldown": 2.0})
    result = results(report)
    assert result["at most 5 429s"] and not result[RECOVERY]
    assert "a larger increase" in str(report)


def test_gentle_cuts_and_a_long_cooldown_cost_many_429s() -> None:
    report = lesson07.check({"increase": 0.16, "decrease": 0.9, "cooldown": 10.0})
    assert results(report)["at most 5 429s"] is False
    assert "cut harder" in str(report)


def test_a_timid_climb_never_recovers() -> None:
    report = lesson07.check({"increase": 0.01, "decrease": 0.3, "cooldown": 0.0})
    assert results(report)["throughput at least 85% of the arrival rate"] is False
    assert "never got back" in report.note


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"increase": 0.0, "decrease": 0.5, "cooldown": 1.0}, "increase must be a positive finite number"),
        ({"increase": 0.1, "decrease": 1.5, "cooldown": 1.0}, "decrease"),
        ({"increase": 0.1}, "missing decrease, cooldown"),
        ({"increase": "fast", "decrease": 0.5, "cooldown": 1.0}, "increase must be a number"),
        ([0.1, 0.5, 1.0], "expected a dict"),
    ],
)
def test_bad_parameters_are_reported_not_raised(params: object, says: str) -> None:
    report = lesson07.check(params)  # type: ignore[arg-type]
    assert not report.passed and says in str(report)


def test_the_stub_is_not_attempted() -> None:
    def stub() -> dict[str, float]:
        raise NotImplementedError

    for report in (lesson07.check(stub), lesson07.check(None)):
        assert report.attempted is False and not report.passed
        assert str(report).startswith("lesson07.check: not attempted yet")


def test_recovery_time_reads_the_sawtooth() -> None:
    _, aimd = lesson07.run_aimd(0.08, 0.3, 1.0)
    back = lesson07.brownout().limit_schedule[-1][0]
    recovered = lesson07.recovery_time(aimd, back)
    assert recovered is not None and 0 < recovered < 30
    assert lesson07.recovery_time(aimd, 10.0) == 0.0  # it starts at the ceiling
    assert min(rate for _, rate in aimd.history) < 0.5  # the brownout pushed it below 30/min


# The catalogue: wrong parameters learners choose, each with the check it must fail and the hint that fits.
CATALOGUE: list[tuple[str, dict[str, float], str, str]] = [
    # "decrease=0.7" read as "cut by 70 %": it keeps 70 %, and needs many 429s to get under 30/min.
    (
        "cut-by-70-percent",
        {"increase": 0.08, "decrease": 0.7, "cooldown": 1.0},
        "at most 5 429s",
        "0.7 keeps 70 %",
    ),
    # increase given as if per minute (or just too big): straight back to the ceiling after every cut.
    (
        "increase-too-big",
        {"increase": 2.0, "decrease": 0.5, "cooldown": 1.0},
        "at most 5 429s",
        "a smaller increase",
    ),
    (
        "climbs-back-too-fast",
        {"increase": 0.3, "decrease": 0.3, "cooldown": 1.0},
        "at most 5 429s",
        "climbed back",
    ),
    # A minute-long cool-down (or one given in milliseconds): one cut, every later 429 ignored.
    (
        "cooldown-a-minute",
        {"increase": 0.08, "decrease": 0.5, "cooldown": 60.0},
        "at most 5 429s",
        "shorter cooldown",
    ),
    (
        "cooldown-in-ms",
        {"increase": 0.08, "decrease": 0.3, "cooldown": 1000.0},
        "at most 5 429s",
        "were ignored",
    ),
    ("defaults", {"increase": 0.04, "decrease": 0.5, "cooldown": 2.0}, RECOVERY, "a larger increase"),
    (
        "timid-climb",
        {"increase": 0.01, "decrease": 0.3, "cooldown": 0.0},
        "throughput at least 85% of the arrival rate",
        "a larger increase",
    ),
]


@pytest.mark.parametrize(
    ("params", "check", "says"), [c[1:] for c in CATALOGUE], ids=[c[0] for c in CATALOGUE]
)
def test_a_wrong_answer_fails_with_the_hint_that_fits(
    params: dict[str, float], check: str, says: str
) -> None:
    report = lesson07.check(params)
    assert not report.passed and results(report)[check] is False, str(report)
    hint = next(r.hint for r in report.results if r.name == check)
    assert says in hint, str(report)


def test_a_long_cooldown_is_not_blamed_on_the_increase() -> None:
    report = lesson07.check({"increase": 0.08, "decrease": 0.5, "cooldown": 60.0})
    assert "smaller increase" not in str(report) and "cut harder" not in str(report)


def test_hint_and_solution_are_at_hand(capsys: pytest.CaptureFixture[str]) -> None:
    assert {"hint", "solution"} <= set(lesson07.__all__)
    lesson07.hint(1)
    lesson07.hint(3)
    out = capsys.readouterr().out
    assert "lesson07 hint 1 of 3" in out and "lesson07 hint 3 of 3" in out and "decrease about 0.3" in out
    lesson07.solution()
    out = capsys.readouterr().out
    assert out.startswith("# throttle_lab.lab.solutions.lesson07") and "PARAMS = " in out
