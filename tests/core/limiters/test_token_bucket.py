from __future__ import annotations

import asyncio

import pytest

from throttle_lab import TokenBucket, record, run

from ...helpers import Request, drive


def test_burst_then_the_steady_rate() -> None:
    out = drive(lambda: TokenBucket(rate=2.0, capacity=3), [Request(f"r{i}") for i in range(7)])
    assert list(out.granted.values()) == [0.0, 0.0, 0.0, 0.5, 1.0, 1.5, 2.0]


def test_per_minute_is_the_same_as_rate_per_second() -> None:
    a = TokenBucket(per_minute=90, capacity=5)
    b = TokenBucket(rate=1.5, capacity=5)
    assert a.rate == b.rate == 1.5


def test_starting_fill_is_explicit() -> None:
    out = drive(
        lambda: TokenBucket(rate=1.0, capacity=5, initial_tokens=0), [Request(f"r{i}") for i in range(3)]
    )
    assert list(out.granted.values()) == [1.0, 2.0, 3.0]


def test_weighted_requests_wait_for_their_tokens() -> None:
    requests = [Request("a", weight=4), Request("b", weight=3), Request("c", weight=1)]
    out = drive(lambda: TokenBucket(rate=1.0, capacity=4), requests)
    assert out.granted == {"a": 0.0, "b": 3.0, "c": 4.0}


def test_refills_to_capacity_and_no_further() -> None:
    requests = [
        Request("a", at=0.0, weight=2),
        Request("b", at=100.0, weight=2),
        Request("c", at=100.0, weight=1),
    ]
    out = drive(lambda: TokenBucket(rate=1.0, capacity=2), requests)
    assert out.granted == {"a": 0.0, "b": 100.0, "c": 101.0}


def test_the_100_per_second_burst_100_bucket_admits_199_in_its_first_second() -> None:
    async def main() -> int:
        bucket = TokenBucket(rate=100.0, capacity=100)
        loop = asyncio.get_running_loop()
        count = 0
        while True:
            await bucket.acquire()
            if loop.time() >= 1.0:
                return count
            count += 1

    assert run(main()) == 199


def test_set_rate_applies_from_now_on() -> None:
    async def main() -> list[float]:
        bucket = TokenBucket(rate=1.0, capacity=1)
        loop = asyncio.get_running_loop()
        times = []
        await bucket.acquire()
        times.append(loop.time())
        waiter = asyncio.create_task(bucket.acquire())
        await asyncio.sleep(0.5)  # half a token earned at the old rate
        bucket.set_rate(0.25)  # the missing half now takes 2 s
        await waiter
        times.append(loop.time())
        return times

    assert run(main()) == [0.0, 2.5]


def test_granted_events_report_tokens_left() -> None:
    with record() as trace:
        drive(lambda: TokenBucket(rate=1.0, capacity=2), [Request(f"r{i}") for i in range(3)])
    left = [e.detail["tokens"] for e in trace.of_kind("granted")]
    assert left == [1.0, 0.0, 0.0]


def test_repr_shows_live_state() -> None:
    async def main() -> str:
        bucket = TokenBucket(per_minute=60, capacity=10, name="openai-rpm")
        for _ in range(4):
            await bucket.acquire()
        await asyncio.sleep(1.5)
        return repr(bucket)

    text = run(main())
    assert "openai-rpm" in text and "rate=1/s (60/min)" in text and "tokens=7.50" in text


def test_oversize_is_a_clear_error() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match=r"weight 11 exceeds what TokenBucket can ever grant \(10\)"):
            await TokenBucket(rate=1.0, capacity=10).acquire(11)

    run(main())
