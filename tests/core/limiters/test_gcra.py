from __future__ import annotations

import asyncio

import pytest

from throttle_lab import GCRA, TokenBucket, run

from ...helpers import Request, drive


def test_even_spacing_without_burst() -> None:
    out = drive(lambda: GCRA(rate=4.0), [Request(f"r{i}") for i in range(5)])
    assert list(out.granted.values()) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_burst_then_spacing() -> None:
    out = drive(lambda: GCRA(rate=4.0, burst=2), [Request(f"r{i}") for i in range(5)])
    assert list(out.granted.values()) == [0.0, 0.0, 0.25, 0.5, 0.75]


def test_admits_exactly_what_the_equivalent_token_bucket_admits() -> None:
    requests = [Request(f"r{i}", at=(i * 0.37) % 5, weight=1 + i % 3) for i in range(40)]
    gcra = drive(lambda: GCRA(rate=3.0, burst=4), requests)
    bucket = drive(lambda: TokenBucket(rate=3.0, capacity=4), requests)
    assert gcra.order == bucket.order
    for name, t in gcra.granted.items():
        assert abs(t - bucket.granted[name]) < 1e-9


def test_no_drift_late_wakeups_do_not_push_the_schedule() -> None:
    # A caller that shows up late does not move the ideal timeline of those after it.
    requests = [Request("a", at=0.0), Request("b", at=0.3), Request("c", at=0.3), Request("d", at=0.3)]
    out = drive(lambda: GCRA(rate=4.0), requests)
    assert out.granted == {"a": 0.0, "b": 0.3, "c": 0.55, "d": 0.8}


def test_per_minute_and_repr() -> None:
    async def main() -> str:
        limiter = GCRA(per_minute=120, burst=3, name="g")
        await limiter.acquire(2)
        return repr(limiter)

    text = run(main())
    assert "rate=2/s (120/min)" in text and "burst=3" in text and "available=1.00" in text


def test_set_rate_changes_spacing() -> None:
    async def main() -> list[float]:
        limiter = GCRA(rate=1.0)
        loop = asyncio.get_running_loop()
        times = []
        for i in range(4):
            if i == 2:
                limiter.set_rate(4.0)
            await limiter.acquire()
            times.append(loop.time())
        return times

    # At t=1 the TAT is 2: one unit of backlog.  At 4/s one unit is 0.25 s, so the third is due at 1.25 (not
    # at 2.0, the old rate's spacing of that unit); from there on, 0.25 s apart.
    assert run(main()) == [0.0, 1.0, 1.25, 1.5]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # After a burst of 10 at 10/s the limiter is empty; at 1/s it refills one unit a second.  (Keeping
        # the TAT in seconds would have let 9 more through at once.)
        (10.0, 1.0, [1.0, 2.0, 3.0]),
        # After a burst of 10 at 1/s, empty too; at 10/s the next unit is due 0.1 s later, not 9 s later.
        (1.0, 10.0, [0.1, 0.2, 0.3]),
    ],
)
def test_set_rate_keeps_the_backlog_in_units(old: float, new: float, expected: list[float]) -> None:
    async def main() -> list[float]:
        limiter = GCRA(rate=old, burst=10)
        loop = asyncio.get_running_loop()
        for _ in range(10):
            await limiter.acquire()
        limiter.set_rate(new)
        times = []
        for _ in range(3):
            await limiter.acquire()
            times.append(round(loop.time(), 9))
        return times

    assert run(main()) == expected
