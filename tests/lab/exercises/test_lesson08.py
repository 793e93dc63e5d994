"""Lesson 08: the reference factory passes; shared, per-provider, wrong-limit and timid factories fail."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from throttle_lab import Throttler, TokenBucket
from throttle_lab.lab import solutions
from throttle_lab.lab.exercises import lesson08
from throttle_lab.lab.exercises.lesson08 import PROVIDERS, provider_of
from throttle_lab.lab.grading import Report

SOLUTION = Path(solutions.__file__).parent / "lesson08.py"


def load_solution() -> ModuleType:
    spec = importlib.util.spec_from_file_location("solution_lesson08", SOLUTION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results(report: Report) -> dict[str, bool]:
    return {r.name: r.passed for r in report.results}


def test_the_reference_solution_passes() -> None:
    report = lesson08.check(load_solution().factory)
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
    trace = lesson08.run_keys(load_solution().factory)
    accepted = trace.filter(kind="accepted", source="server")
    assert len({e.detail["key"] for e in accepted}) == 3  # the server counted three keys
    assert trace.summary().completed == sum(b.requests for b in lesson08.TRAFFIC)
    assert lesson08.ideal_finish(lesson08.Burst("provider-a:x", 40), PROVIDERS["provider-a"]) == 30.0
