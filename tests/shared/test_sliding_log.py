"""SharedSlidingWindowLog against a real Redis: exact windows, weights, FIFO, refunds, eviction, TTL.

Most tests book with ``margin=0`` to check the window arithmetic exactly in Redis time; the ``margin`` tests
check that a booking then occupies ``window + margin`` (and ``test_real_loop`` what that buys at the callers).
"""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from throttle_lab import record
from throttle_lab.shared import Reservation, SharedSlidingWindowLog

from .helpers import in_order, max_in_window, real

WINDOW_US = 100_000  # 0.1 s


def _starts(reservations: list[Reservation]) -> list[int]:
    return sorted(r.at_us for r in reservations if r.at_us is not None)


def test_never_more_than_the_limit_in_any_window(redis_url: str, key: str) -> None:
    async def main() -> list[Reservation]:
        log = SharedSlidingWindowLog(redis_url, key, max_requests=3, window_seconds=0.1, margin=0)
        await log.peek()  # connect and load the script first (see the margin test below)
        out = await asyncio.gather(*(log.acquire() for _ in range(10)))
        await log.aclose()
        return list(out)

    bookings = real(main())
    starts = _starts(bookings)
    assert max_in_window([(at, 1) for at in starts], WINDOW_US) == 3
    # Each booking past the third starts exactly when the one three places earlier leaves the window.
    assert [b - a for a, b in zip(starts, starts[3:], strict=False)] == [WINDOW_US] * 7


def test_a_margin_makes_each_booking_occupy_the_window_plus_the_margin(redis_url: str, key: str) -> None:
    async def main() -> tuple[list[Reservation], SharedSlidingWindowLog]:
        log = SharedSlidingWindowLog(redis_url, key, max_requests=3, window_seconds=0.1, margin=0.02)
        # Connect and load the script first: otherwise, on a loaded machine, the fourth request can reach
        # Redis only after the first booking's window and margin have passed, and is booked later still.
        await log.peek()
        out = await asyncio.gather(*(log.acquire() for _ in range(10)))
        await log.aclose()
        return list(out), log

    bookings, log = real(main())
    starts = _starts(bookings)
    # A caller may start up to 20 ms after its booked start, so its entry leaves the log 120 ms after it,
    # and no window of 100 ms can hold a late caller and one booked a window after it.
    assert [b - a for a, b in zip(starts, starts[3:], strict=False)] == [WINDOW_US + 20_000] * 7
    assert max_in_window([(at, 1) for at in starts], WINDOW_US + 20_000) == 3
    assert log.statistics().margin == 0.02 and "3 per 0.1s margin=20ms" in repr(log)


def test_weights_fill_the_window_exactly(redis_url: str, key: str) -> None:
    async def main() -> list[int]:
        log = SharedSlidingWindowLog(redis_url, key, max_requests=10, window_seconds=0.1, margin=0)
        await log.peek()  # connect and load the script first
        starts = await in_order(log.acquire, [6, 5, 4, 1, 10])
        await log.aclose()
        return starts

    first, five, four, one, ten = real(main())
    # 6 at t0; 5 must wait for the 6 to leave (t0 + 100 ms); 4 and 1 fit beside the 5 then (5 + 4 + 1 = 10);
    # 10 needs the whole window empty: when the 5, the 4 and the 1 (all at t0 + 100 ms) have left.
    assert (five - first, four - first, one - first, ten - first) == (100_000, 100_000, 100_000, 200_000)


def test_fifo_a_light_request_does_not_overtake_a_heavy_one(redis_url: str, key: str) -> None:
    async def main() -> list[int]:
        log = SharedSlidingWindowLog(redis_url, key, max_requests=10, window_seconds=0.1, margin=0)
        await log.peek()
        # The 1 would fit beside the 9 at once -- but the 8 arrived before it.
        starts = await in_order(log.acquire, [9, 8, 1])
        await log.aclose()
        return starts

    first, heavy, light = real(main())
    assert (heavy - first, light - first) == (100_000, 100_000)


def test_refund_takes_the_booking_out_of_the_log(redis_url: str, key: str) -> None:
    async def main() -> tuple[list[int], SharedSlidingWindowLog]:
        log = SharedSlidingWindowLog(redis_url, key, max_requests=2, window_seconds=0.1, margin=0)
        a, b = await asyncio.gather(log.acquire(), log.acquire())  # now
        victim = asyncio.ensure_future(log.acquire())  # when a leaves the window
        await asyncio.sleep(0.005)
        behind = asyncio.ensure_future(log.acquire())  # when b leaves it; booked after the victim
        await asyncio.sleep(0.005)
        victim.cancel()
        await asyncio.gather(victim, return_exceptions=True)
        await log.wait_refunds()
        newcomer = await log.acquire()  # takes the victim's place beside `behind`
        later = await behind
        await log.aclose()
        return [r.at_us or 0 for r in (a, b, later, newcomer)], log

    with record() as trace:
        (a, b, behind, newcomer), log = real(main())
    # Without the refund the newcomer would wait for the victim's booking to leave: min(a, b) + 200 ms.
    assert behind - max(a, b) == 100_000
    assert newcomer == behind
    assert max_in_window([(x, 1) for x in (a, b, behind, newcomer)], WINDOW_US) == 2
    stats = log.statistics()
    assert (stats.cancelled, stats.refunded, stats.not_refunded) == (1, 1, 0)
    assert trace.count("released") == 1


def test_expired_bookings_are_dropped_and_the_key_expires(redis_url: str, key: str) -> None:
    async def main() -> None:
        log = SharedSlidingWindowLog(redis_url, key, max_requests=200, window_seconds=0.3, margin=0)
        (name,) = log.redis_keys()
        client = aioredis.Redis.from_url(redis_url)
        await asyncio.gather(*(log.peek() for _ in range(150)))  # connect first: then booking is quick
        await asyncio.gather(*(log.acquire() for _ in range(150)))  # more than one eviction batch (64)
        assert await client.zcard(name) > 64
        assert 0 < await client.pttl(name) <= 301
        await asyncio.sleep(0.31)
        await log.acquire()
        assert await client.zcard(name) == 1  # the 150 left the window and the log
        await asyncio.sleep(0.31)
        assert await client.exists(name) == 0
        await client.aclose()
        await log.aclose()

    real(main())


def test_try_acquire_and_peek(redis_url: str, key: str) -> None:
    async def main() -> None:
        log = SharedSlidingWindowLog(redis_url, key, max_requests=2, window_seconds=0.2, margin=0)
        assert await log.try_acquire(2)
        assert await log.try_acquire() is None
        assert 0.1 < await log.peek() <= 0.2
        assert "booked=2.00" in repr(log)
        await log.aclose()

    real(main())


def test_oversize_and_statistics(key: str) -> None:
    async def main() -> SharedSlidingWindowLog:
        log = SharedSlidingWindowLog("redis://127.0.0.1:1/0", key, max_requests=5, window_seconds=1)
        with pytest.raises(ValueError, match="exceeds"):
            await log.acquire(6)
        return log

    stats = real(main()).statistics()
    assert (stats.rejected, stats.round_trips, stats.max_requests, stats.window_seconds) == (1, 0, 5.0, 1.0)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"max_requests": 0}, "max_requests"),
        ({"max_requests": float("inf")}, "max_requests"),
        ({"window_seconds": 0}, "window_seconds"),
        ({"window_seconds": float("nan")}, "window_seconds"),
        ({"margin": -1}, "margin"),
        ({"margin": float("inf")}, "margin"),
    ],
)
def test_invalid_configuration_names_the_argument(kwargs: dict[str, float], argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        SharedSlidingWindowLog("redis://127.0.0.1:6379", "k", **kwargs)  # type: ignore[arg-type]
