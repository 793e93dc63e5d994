"""Lesson 08: the reference factory passes; shared, per-provider, wrong-limit and timid factories fail."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from throttle_lab import Throttler, TokenBucket
from throttle_lab.lab.exercises import lesson08
from throttle_lab.lab.exercises.lesson08 import PROVIDERS, provider_of

from .helpers import load_solution, results


def test_the_reference_solution_passes() -> None:
    report = lesson08.check(load_solution("lesson08").factory)
    assert report.passed, str(report)


def test_one_shared_throttler_makes_keys_wait() -> None:
    shared = Throttler(rpm=60, window=10)
    report = lesson08.check(lambda key: shared)
    result = results(report)
    assert result["one throttler per key"] is False
    assert result["keys never wait for each other"] is False
    assert "1 throttlers for 3 keys" in str(report)


def test_one_throttler_per_provider_is_not_enough() -> None:
    per_provider: dict[str, Throttler] = {}

    def factory(key: str) -> Throttler:
        config = PROVIDERS[provider_of(key)]
        return per_provider.setdefault(provider_of(key), Throttler(rpm=config.rpm, window=config.window))

    result = results(lesson08.check(factory))
    assert result["one throttler per key"] is False
    assert result["keys never wait for each other"] is False


def test_the_same_limits_for_every_provider_get_429s() -> None:
    report = lesson08.check(lambda key: Throttler(rpm=60, window=10, name=key))
    result = results(report)
    assert result["no 429s"] is False and result["keys never wait for each other"]
    assert "PROVIDERS[provider_of(key)]" in str(report)


def test_a_per_minute_burst_gets_429s() -> None:
    report = lesson08.check(lambda key: Throttler(rpm=PROVIDERS[provider_of(key)].rpm, name=key))
    assert results(report)["no 429s"] is False


def test_a_timid_factory_wastes_the_limit() -> None:
    def timid(key: str) -> Throttler:
        config = PROVIDERS[provider_of(key)]
        assert config.rpm is not None
        return Throttler(rpm=config.rpm / 2, window=config.window, name=key)

    result = results(lesson08.check(timid))
    assert result["no 429s"] and result["keys never wait for each other"]
    assert result["every key uses its whole limit"] is False


def test_not_a_throttler_is_reported() -> None:
    report = lesson08.check(lambda key: TokenBucket(rate=1.0, capacity=10))  # type: ignore[arg-type,return-value]
    assert not report.passed and "not a Throttler" in str(report)


def test_the_stub_is_not_attempted() -> None:
    def stub(key: str) -> Throttler:
        raise NotImplementedError

    for report in (lesson08.check(stub), lesson08.check(None)):
        assert report.attempted is False and not report.passed
        assert str(report).startswith("lesson08.check: not attempted yet")


def test_run_keys_tells_the_server_which_key() -> None:
    trace = lesson08.run_keys(load_solution("lesson08").factory)
    accepted = trace.filter(kind="accepted", source="server")
    assert len({e.detail["key"] for e in accepted}) == 3  # the server counted three keys
    assert trace.summary().completed == sum(b.requests for b in lesson08.TRAFFIC)
    assert lesson08.ideal_finish(lesson08.Burst("provider-a:x", 40), PROVIDERS["provider-a"]) == 30.0


# The catalogue: wrong factories learners write, each with the check it must fail and the hint that fits.
def _rpm(key: str) -> float:
    rpm = PROVIDERS[provider_of(key)].rpm
    assert rpm is not None
    return rpm


def whole_key_lookup(key: str) -> Throttler:
    """PROVIDERS[key]: the key is "provider:key-name", not a provider."""
    return Throttler(rpm=PROVIDERS[key].rpm, window=10, name=key)


def per_second(key: str) -> Throttler:
    """rpm given per second: a bucket of 1/6 request, which never fits one."""
    return Throttler(rpm=_rpm(key) / 60, window=10, name=key)


def window_in_minutes(key: str) -> Throttler:
    """window given in minutes (10 s = 1/6): again a bucket smaller than one request."""
    return Throttler(rpm=_rpm(key), window=10 / 60, name=key)


def concurrency_only(key: str) -> Throttler:
    """One request at a time, no rate: fast answers make that far above the limit."""
    return Throttler(max_concurrent=1, name=key)


def a_minute_window(key: str) -> Throttler:
    """The right rpm with window=60: a minute's burst into a ten-second bucket."""
    return Throttler(rpm=_rpm(key), window=60, name=key)


def slowest_for_all(key: str) -> Throttler:
    """provider-b's limits for everyone: no 429s, but provider-a's keys crawl."""
    return Throttler(rpm=24, window=10, name=key)


shared = Throttler(rpm=60, window=10, name="shared")

CATALOGUE: list[tuple[Callable[[str], Throttler], str, str]] = [
    (whole_key_lookup, "the factory makes a Throttler for a key", "PROVIDERS[provider_of(key)]"),
    (per_second, "the factory makes a Throttler for a key", "rpm is per minute"),
    (window_in_minutes, "the factory makes a Throttler for a key", "window in seconds"),
    (concurrency_only, "no 429s", "its rpm"),
    (a_minute_window, "no 429s", "its window"),
    (slowest_for_all, "every key uses its whole limit", "below its provider's limit"),
    (lambda key: shared, "one throttler per key", "build a new Throttler inside the factory"),
]


@pytest.mark.parametrize(
    ("factory", "check", "says"), CATALOGUE, ids=[f"{f.__name__}-{c}" for f, c, _ in CATALOGUE]
)
def test_a_wrong_answer_fails_with_the_hint_that_fits(
    factory: Callable[[str], Throttler], check: str, says: str
) -> None:
    report = lesson08.check(factory)
    assert not report.passed and results(report)[check] is False, str(report)
    hint = next(r.hint for r in report.results if r.name == check)
    assert says in hint, str(report)


def test_a_throttler_that_could_never_send_is_refused_and_explained_in_one_line() -> None:
    # The Throttler itself refuses a requests budget smaller than one request (it would never send).
    report = lesson08.check(per_second)
    assert "pending tasks" not in str(report) and "burst_seconds" in str(report)
    assert len(str(report).splitlines()) <= 4


def test_hint_and_solution_are_at_hand(capsys: pytest.CaptureFixture[str]) -> None:
    assert {"hint", "solution"} <= set(lesson08.__all__)
    lesson08.hint(1)
    lesson08.hint(3)
    out = capsys.readouterr().out
    assert "lesson08 hint 1 of 3" in out and "lesson08 hint 3 of 3" in out
    assert "PROVIDERS[provider_of(key)]" in out
    lesson08.solution()
    out = capsys.readouterr().out
    assert out.startswith("# throttle_lab.lab.solutions.lesson08") and "def factory(" in out
