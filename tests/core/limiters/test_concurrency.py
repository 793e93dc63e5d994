from __future__ import annotations

import asyncio

import pytest

from throttle_lab import ConcurrencyLimiter, record, run

from ...helpers import Request, drive


def test_slots_free_as_callers_finish() -> None:
    requests = [Request(f"r{i}", hold=1.0) for i in range(5)]
    out = drive(lambda: ConcurrencyLimiter(max_concurrent=2), requests)
    assert list(out.granted.values()) == [0.0, 0.0, 1.0, 1.0, 2.0]


def test_weighted_slots() -> None:
    requests = [
        Request("a", weight=2, hold=1.0),
        Request("b", weight=3, hold=1.0),
        Request("c", weight=1, hold=1.0),
    ]
    out = drive(lambda: ConcurrencyLimiter(max_concurrent=3), requests)
    assert out.granted == {"a": 0.0, "b": 1.0, "c": 2.0}


def test_releasing_more_than_held_is_an_error() -> None:
    async def main() -> None:
        limiter = ConcurrencyLimiter(2)
        await limiter.acquire()
        limiter.release()
        with pytest.raises(ValueError, match="released more than was acquired"):
            limiter.release()

    run(main())


def test_little_law_in_flight_equals_rate_times_latency() -> None:
    async def main() -> float:
        limiter = ConcurrencyLimiter(max_concurrent=3)

        async def call() -> None:
            async with limiter.slot():
                await asyncio.sleep(2.0)

        await asyncio.gather(*(call() for _ in range(30)))
        return asyncio.get_running_loop().time()

    with record() as trace:
        makespan = run(main())
    assert makespan == 20.0  # 30 calls x 2 s / 3 seats
    assert trace.summary().achieved_per_minute == pytest.approx(90.0)  # 30 in 20 s: 3 seats / 2 s


def test_in_use_and_repr() -> None:
    async def main() -> str:
        limiter = ConcurrencyLimiter(4, name="seats")
        await limiter.acquire(3)
        return repr(limiter)

    assert "in_use=3/4" in run(main())
