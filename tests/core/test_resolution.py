"""``resolution``: one wake-up grants every waiter that becomes ready within one slot -- late, never early.

On virtual time the slots are exact, so the timestamps are too: each grant lands on the first multiple of
the resolution at or after the moment it was due.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from throttle_lab import (
    GCRA,
    FixedWindow,
    SlidingWindowCounter,
    SlidingWindowLog,
    Throttler,
    TokenBucket,
    run,
)

from .helpers_resolution import grant_times


def test_default_is_exact() -> None:
    assert TokenBucket(rate=1.0).resolution == 0.0
    times = grant_times(lambda: TokenBucket(rate=8, capacity=8, initial_tokens=0), 4)
    assert times == [0.125, 0.25, 0.375, 0.5]  # each on the dot


def test_grants_ready_within_one_slot_share_one_wake_up() -> None:
    # Due at 0.1, 0.2, ... 1.0; woken at 0.5 and 1.0: five grants each, none before it was due.
    times = grant_times(lambda: TokenBucket(rate=10, capacity=10, initial_tokens=0, resolution=0.5), 10)
    assert times == [0.5] * 5 + [1.0] * 5


def test_a_grant_on_a_slot_boundary_is_not_delayed() -> None:
    times = grant_times(lambda: TokenBucket(rate=2, capacity=2, initial_tokens=0, resolution=0.5), 4)
    assert times == [0.5, 1.0, 1.5, 2.0]


def test_a_bucket_smaller_than_rate_times_resolution_loses_rate() -> None:
    # The documented price: burst 1 at 4/s holds one grant; waiting for the next whole second forfeits the
    # rest.  Late, never early -- but keep the resolution at most burst / rate.
    assert grant_times(lambda: GCRA(rate=4, burst=1, resolution=1.0), 3) == [0.0, 1.0, 2.0]


@pytest.mark.parametrize(
    "make",
    [
        lambda: SlidingWindowLog(2, 1.0, resolution=0.3),
        lambda: FixedWindow(2, 1.0, resolution=0.3),
        lambda: SlidingWindowCounter(2, 1.0, resolution=0.3),
    ],
    ids=["sliding_log", "fixed_window", "sliding_counter"],
)
def test_windows_wake_on_the_slot_after_room_appears(make: Callable[[], Any]) -> None:
    times = grant_times(make, 4)
    assert times[:2] == [0.0, 0.0]
    assert all(t >= 1.0 for t in times[2:])  # never before the window has room
    assert all(round(t / 0.3, 9).is_integer() for t in times[2:])  # on a slot


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), True])
def test_resolution_must_be_a_non_negative_number(bad: float) -> None:
    with pytest.raises(ValueError, match="resolution"):
        TokenBucket(rate=1.0, resolution=bad)


def test_resolution_is_a_limiter_attribute_that_can_change() -> None:
    async def main() -> list[float]:
        bucket = TokenBucket(rate=10, capacity=10, initial_tokens=0)
        bucket.resolution = 0.25
        loop = asyncio.get_running_loop()
        times = []
        for _ in range(2):
            await bucket.acquire()
            times.append(loop.time())
        return times

    # Woken at 0.25 instead of 0.1, the bucket has earned 2.5 tokens: both go then.
    assert run(main()) == [0.25, 0.25]


def test_a_throttler_coalesces_its_grants_too() -> None:
    # rpm 600 with 1 s of burst: 10 at once, then one every 0.1 s -- woken at 0.5 and 1.0 instead.
    async def main() -> list[float]:
        throttler = Throttler(rpm=600, burst_seconds=1.0, resolution=0.5)
        loop = asyncio.get_running_loop()
        times: list[float] = []

        async def one() -> None:
            async with throttler.slot():
                times.append(loop.time())

        await asyncio.gather(*(one() for _ in range(20)))
        return times

    assert run(main()) == [0.0] * 10 + [0.5] * 5 + [1.0] * 5


def test_a_throttler_slot_not_entered_holds_nothing() -> None:
    async def main() -> tuple[float, float, float]:
        throttler = Throttler(max_concurrent=1)
        slot = throttler.slot(5)
        slot.release()  # not taken: nothing to give back
        before = throttler.in_flight
        async with slot as permit:
            inside = throttler.in_flight
            assert permit is slot and permit.tokens == 5
        async with slot:  # the same slot may be entered again once it is out
            pass
        return before, inside, throttler.in_flight

    assert run(main()) == (0, 1, 0)
