"""RedisClock: where Redis's clock sits on a loop's clock, bracketed by round trips -- never early.

Pure arithmetic, no Redis: a round trip is (loop time sent, loop time received, Redis's ``now`` in µs).  The
"true" offset is chosen by the test, so it can check that the bracket always contains it.
"""

from __future__ import annotations

import random

import pytest

from throttle_lab.shared import RedisClock
from throttle_lab.shared.clock import _DRIFT

OFFSET = -1_700_000_000.25  # loop time = Redis time + OFFSET (a monotonic clock vs an epoch one)
US = 1e-6


def _redis_us(loop_time: float) -> int:
    """Redis's TIME at a loop instant: whole µs, truncated (as TIME answers)."""
    return int((loop_time - OFFSET) * 1e6)


def test_one_round_trip_brackets_the_instant_the_script_read_the_clock() -> None:
    clock = RedisClock()
    clock.observe(5.0, 5.004, _redis_us(5.001))  # the script ran 1 ms after sending, the reply took 3 ms
    at = _redis_us(5.5)  # a booked start half a second later
    assert clock.earliest(at, 5.004) == pytest.approx(5.5 - 0.001, abs=2 * US)
    assert clock.latest(at, 5.004) == pytest.approx(5.5 + 0.003, abs=2 * US)
    assert clock.width(5.004) == pytest.approx(0.004, abs=2 * US)


def test_a_quick_round_trip_narrows_it_and_a_slow_one_does_not_widen_it() -> None:
    clock = RedisClock()
    clock.observe(5.0, 5.040, _redis_us(5.020))  # a slow one, in a burst: 40 ms
    clock.observe(6.0, 6.0002, _redis_us(6.0001))  # a quick one: 0.2 ms
    narrow = clock.width(6.0002)
    assert narrow == pytest.approx(0.0002, abs=5 * US)
    clock.observe(7.0, 7.050, _redis_us(7.010))  # slow again: it adds nothing
    assert clock.width(6.0002) == pytest.approx(narrow)
    # Waking at the latest end costs the quick round trip's width, not the slow replies'.
    assert clock.latest(_redis_us(8.0), 7.05) - 8.0 < 0.0002 + 2 * _DRIFT * 2 + 2 * US


def test_never_early_whatever_the_round_trips() -> None:
    rng = random.Random(11)
    clock = RedisClock()
    now = 100.0
    for _ in range(2000):
        sent = now
        script = sent + rng.expovariate(1 / 0.002)  # the request's trip, queueing included
        received = script + rng.expovariate(1 / 0.002)
        clock.observe(sent, received, _redis_us(script))
        now = received + rng.uniform(0, 0.05)
        target = now + rng.uniform(0, 2.0)  # a booked start, as a loop time
        at = _redis_us(target)
        # Redis's µs are truncated: the instant `at` names is up to 1 µs after `target`.
        assert clock.latest(at, now) >= target - US
        assert clock.earliest(at, now) <= target + US


def test_the_bracket_widens_with_age_at_the_drift_rate() -> None:
    clock = RedisClock()
    clock.observe(10.0, 10.001, _redis_us(10.0005))
    assert clock.width(20.001) - clock.width(10.001) == pytest.approx(2 * _DRIFT * 10)


def test_a_jump_of_the_redis_clock_starts_the_bracket_afresh() -> None:
    clock = RedisClock()
    clock.observe(10.0, 10.0002, _redis_us(10.0001))
    # Redis's wall clock is stepped 0.5 s forward: Redis time now reads 0.5 s more at the same instant.
    stepped = _redis_us(11.0001) + 500_000
    clock.observe(11.0, 11.0002, stepped)  # contradicts the old bracket: no overlap
    # The bracket is now this round trip's alone, and it holds the new relation.
    assert clock.width(11.0002) == pytest.approx(0.0002, abs=5 * US)
    later = _redis_us(12.0) + 500_000  # the instant that is loop time 12.0 on the stepped clock
    assert clock.earliest(later, 11.0002) <= 12.0 + US
    assert clock.latest(later, 11.0002) >= 12.0 - US
