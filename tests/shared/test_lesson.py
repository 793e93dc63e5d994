"""Lesson 10's helpers: worker processes against the real mock server, and the exercise's check."""

from __future__ import annotations

import pytest

from throttle_lab.lab.many_workers import MockServer, check_split, run_workers
from throttle_lab.shared.server import RedisServer


@pytest.mark.server
def test_workers_with_their_own_limiters_get_429s_and_a_shared_limit_gets_none(
    redis_server: RedisServer,
) -> None:
    with MockServer(rpm=600, window=1) as mock:
        alone = run_workers(mock, workers=3, requests=8, rpm=600, burst=3)
    with MockServer(rpm=600, window=1) as mock:
        shared = run_workers(
            mock, workers=3, requests=8, rpm=600, burst=3, redis_url=redis_server.url, key="test-lesson"
        )
    for trace in (alone, shared):
        assert trace.count("sent") == 24 and trace.count("arrived") == 24  # every worker, and the server
        assert {"w1", "w2", "w3", "w1.limiter", "server"} <= set(trace.sources)
        assert min(e.t for e in trace) >= 0.0
    assert alone.count("429") >= 5
    assert shared.count("429") == 0 and shared.count("done") == 24
    assert shared.meta["design"] == "3 workers, one shared limit (Redis)"


def test_check_split() -> None:
    assert "not attempted yet" in str(check_split(None, None))
    good = check_split(150, 2)
    assert good.passed and "25% of the key" in good.note
    too_fast = check_split(600, 3)
    assert not too_fast.passed and "429" in str(too_fast) and "hint:" in str(too_fast)
    too_slow = check_split(100, 1)
    assert not too_slow.passed and "95-100%" in str(too_slow)
    invalid = check_split(0, 1)
    assert not invalid.passed and "per_minute" in str(invalid)
    # the wrong answers and their hints: tests/lab/exercises/test_lesson10.py
