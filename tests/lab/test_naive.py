"""The article's designs, measured: each flaw shows up as a number, next to the fixed design's number."""

from __future__ import annotations

import asyncio

from throttle_lab import SlidingWindowLog, TokenBucket, record, run
from throttle_lab.lab.naive import DequeSlidingWindow, PollingTokenBucket, RateThenSemaphore

from ..helpers import Request, drive


def inverted_pairs(order: list[str], arrival: list[str]) -> int:
    rank = {name: i for i, name in enumerate(arrival)}
    ranks = [rank[name] for name in order]
    return sum(1 for i in range(len(ranks)) for j in range(i + 1, len(ranks)) if ranks[i] > ranks[j])


STAGGERED = [Request(f"r{i:03}", at=i * 0.013) for i in range(120)]


def test_polling_bucket_serves_out_of_order_ours_in_order() -> None:
    naive = drive(lambda: PollingTokenBucket(rate=10.0, capacity=1), STAGGERED)
    ours = drive(lambda: TokenBucket(rate=10.0, capacity=1), STAGGERED)
    arrival = [r.name for r in STAGGERED]
    assert inverted_pairs(ours.order, arrival) == 0
    assert inverted_pairs(naive.order, arrival) > 100


def test_polling_bucket_wakes_many_times_per_grant() -> None:
    async def main(limiter: PollingTokenBucket | TokenBucket) -> int:
        await asyncio.gather(*(limiter.acquire() for _ in range(200)))
        return limiter.statistics().granted

    naive = PollingTokenBucket(rate=10.0, capacity=1)
    assert run(main(naive)) == 200
    # Every waiter re-checks every 0.1 s for the ~20 s it waits: thousands of wake-ups for 200 grants.
    assert naive.polls / 200 > 50
    # Ours wakes each waiter exactly once, when it is granted: no polls to count, one timer at a time.
    with record() as trace:
        assert run(main(TokenBucket(rate=10.0, capacity=1))) == 200
    assert trace.count("granted") == 200


def test_polling_bucket_hangs_forever_on_a_request_heavier_than_the_bucket() -> None:
    async def main() -> tuple[bool, int]:
        bucket = PollingTokenBucket(rate=1.0, capacity=5)
        task = asyncio.create_task(bucket.acquire(weight=6))
        await asyncio.sleep(24 * 3600)
        done = task.done()
        task.cancel()
        return done, bucket.polls

    done, polls = run(main())
    assert done is False  # a whole virtual day later, still waiting
    assert polls == 24 * 3600  # and it has woken up once a second, for nothing


def test_deque_window_polls_where_the_log_sleeps_once() -> None:
    async def main(limiter: DequeSlidingWindow) -> int:
        await asyncio.gather(*(limiter.acquire() for _ in range(50)))
        return limiter.polls

    # Each waiter wakes when the oldest entry expires, finds the slot taken by someone faster, sleeps again.
    polls = run(main(DequeSlidingWindow(max_requests=5, window_seconds=1.0)))
    assert polls > 200
    with record() as trace:
        drive(lambda: SlidingWindowLog(5, 1.0), [Request(f"r{i}") for i in range(50)])
    assert trace.count("queued") == 45 and trace.count("granted") == 50


def test_deque_window_still_keeps_its_limit() -> None:
    with record() as trace:
        drive(
            lambda: DequeSlidingWindow(max_requests=5, window_seconds=1.0),
            [Request(f"r{i}") for i in range(30)],
        )
    assert trace.max_in_window("granted", 1.0) == 5


def test_rate_then_semaphore_sends_bursts_above_the_rate() -> None:
    requests = [Request(f"r{i:02}", hold=90.0 if i < 10 else 1.0) for i in range(30)]
    with record() as trace:
        drive(lambda: RateThenSemaphore(max_concurrent=10, max_per_minute=10), requests)
    sends = trace.filter(kind="granted", source="RateThenSemaphore")
    # Ten requests booked their rate slot at t=60 but got a seat only at t=90; ten more were booked at
    # t=120: 20 requests reach the server within one minute against a limit of 10.
    assert sends.max_in_window("granted", 60.0) == 20
    booked = trace.filter(kind="granted", source="RateThenSemaphore.rate")
    assert booked.max_in_window("granted", 60.0) == 10  # the rate limiter itself kept its promise
