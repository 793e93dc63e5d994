"""Lesson 06: the reference delay passes; lockstep, jitter-under-the-hint, early and uncapped ones fail."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from throttle_lab import ExponentialBackoff, FullJitter
from throttle_lab.lab.exercises import lesson06

from .helpers import load_solution, results


def test_the_reference_solution_passes() -> None:
    report = lesson06.check(load_solution("lesson06").delay)
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
    assert "hint + your delay" in str(report)  # the fix the lesson teaches, not max(), which herds


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


# The catalogue: wrong answers learners write, each with the check it must fail and the hint that fits.
_rng = random.Random(5)
Delay = Callable[[int, "float | None"], float]


def uncapped(attempt: int, hint: float | None) -> float:
    """No cap: 0.5 * 2**attempt stays under 60 s up to attempt 6, so attempts 0-5 alone let it pass."""
    return (hint or 0.0) + _rng.uniform(0, 0.5 * 2**attempt)


def hint_alone(attempt: int, hint: float | None) -> float:
    """The hint as given, jitter only without one: a herd given one hint comes back at one instant."""
    return hint if hint is not None else _rng.uniform(0, min(30.0, 0.5 * 2**attempt))


def narrow_jitter(attempt: int, hint: float | None) -> float:
    """Exponential on top of the hint with a millisecond of jitter: never early, grows, but in step."""
    return (hint or 0.0) + min(30.0, 0.5 * 2.0**attempt) + _rng.uniform(0, 0.001)


def reseeded(attempt: int, hint: float | None) -> float:
    """A generator seeded afresh on every call: the same "random" draw for every client."""
    return (hint or 0.0) + random.Random(attempt).uniform(0, min(30.0, 0.5 * 2**attempt))


def table(attempt: int, hint: float | None) -> float:
    """A table of delays that ends: fine for the herd's 10 attempts, an IndexError after."""
    return (hint or 0.0) + _rng.uniform(0, [0.5, 1, 2, 4, 8, 16, 30, 30, 30][attempt])


def constant(attempt: int, hint: float | None) -> float:
    """Jitter that never grows: a herd never spreads wide enough for the server to refill."""
    return (hint or 0.0) + _rng.uniform(0, 1.0)


def max_of_hint_and_jitter(attempt: int, hint: float | None) -> float:
    """The hint swallowing the jitter (what the old hint told learners to write)."""
    return max(hint or 0.0, _rng.uniform(0, min(30.0, 0.5 * 2**attempt)))


CATALOGUE: list[tuple[Delay, str, str]] = [
    (uncapped, "capped at 60 s", "take min(cap, base * 2**attempt)"),
    (hint_alone, "the herd breaks up", "waiting just the hint"),
    (narrow_jitter, "the herd breaks up", "your jitter spreads the herd over"),
    (reseeded, "jittered", "one generator made once"),
    (reseeded, "the herd breaks up", "all wait exactly as long"),
    (table, "capped at 60 s", "every attempt needs a delay"),
    (constant, "grows with the attempt", "base * 2**attempt"),
    (max_of_hint_and_jitter, "the herd breaks up", "add the jitter on top of the hint"),
]


@pytest.mark.parametrize(
    ("delay", "check", "says"), CATALOGUE, ids=[f"{d.__name__}-{c}" for d, c, _ in CATALOGUE]
)
def test_a_wrong_answer_fails_with_the_hint_that_fits(delay: Delay, check: str, says: str) -> None:
    report = lesson06.check(delay)
    assert not report.passed and results(report)[check] is False, str(report)
    hint = next(r.hint for r in report.results if r.name == check)
    assert says in hint, str(report)


def test_no_hint_recommends_max_of_delay_and_hint() -> None:
    early = lesson06.check(lambda attempt, hint: _rng.uniform(0, min(30.0, 0.5 * 2**attempt)))
    for delay in [d for d, _, _ in CATALOGUE]:
        for r in [*lesson06.check(delay).results, *early.results]:
            assert "return max(" not in r.hint, r.hint  # max() re-creates the herd the lesson breaks up


def test_the_cap_check_reaches_far_attempts() -> None:
    report = lesson06.check(load_solution("lesson06").delay)
    assert "up to attempt 30" in str(report)


def test_hint_and_solution_are_at_hand(capsys: pytest.CaptureFixture[str]) -> None:
    assert {"hint", "solution"} <= set(lesson06.__all__)
    lesson06.hint(1)
    lesson06.hint(3)
    out = capsys.readouterr().out
    assert "lesson06 hint 1 of 3" in out and "lesson06 hint 3 of 3" in out
    assert "hint or 0.0) + rng.uniform" in out  # the last hint is concrete
    lesson06.solution()
    out = capsys.readouterr().out
    assert out.startswith("# throttle_lab.lab.solutions.lesson06") and "def delay(" in out
