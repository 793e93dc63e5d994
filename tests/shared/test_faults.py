"""Faults: Redis unreachable, hung, restarted or crashed mid-run, its scripts flushed.

fail_closed never lets a request through without a booking (so the limit holds across an outage);
fail_open lets requests through unthrottled and says so.  Either way the same limiter object recovers by
itself once Redis is back: it reconnects and loads its scripts again.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis

from throttle_lab import record
from throttle_lab.shared import SharedGCRA, SharedLimitUnavailable, SharedSlidingWindowLog
from throttle_lab.shared.server import RedisServer

from .helpers import max_in_window, real


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def dead_url() -> str:
    """A loopback port nobody listens on."""
    return f"redis://127.0.0.1:{_free_port()}/0"


@pytest.fixture
def hung_url() -> Iterator[str]:
    """A port that accepts connections and never answers (a frozen server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


def test_fail_closed_raises_a_clear_error_and_never_grants(dead_url: str, key: str) -> None:
    async def main() -> SharedGCRA:
        limiter = SharedGCRA(dead_url, key, rate=10, recheck=30)
        with pytest.raises(SharedLimitUnavailable, match="unreachable") as caught:
            await limiter.acquire()
        message = str(caught.value)
        assert "fail_closed" in message and "never exceeded" in message and "127.0.0.1:" in message
        started = time.monotonic()
        with pytest.raises(SharedLimitUnavailable):  # within `recheck`: refused without trying Redis
            await limiter.try_acquire()
        assert time.monotonic() - started < 0.05
        return limiter

    with record() as trace:
        limiter = real(main())
    stats = limiter.statistics()
    assert (stats.granted, stats.rejected, stats.errors, stats.unthrottled) == (0, 2, 1, 0)
    assert [e.detail["reason"] for e in trace.of_kind("rejected")] == ["redis_unavailable"] * 2
    assert "REDIS DOWN" in repr(limiter)


def test_fail_open_proceeds_unthrottled_and_warns_once(
    dead_url: str, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> SharedSlidingWindowLog:
        log = SharedSlidingWindowLog(dead_url, key, max_requests=1, window_seconds=60, on_error="fail_open")
        for _ in range(3):
            reservation = await log.acquire()
            assert reservation.unthrottled and reservation.at is None
            assert reservation.lateness is None  # no booking, so nothing to be late for
        return log

    with caplog.at_level(logging.WARNING, logger="throttle_lab.shared"), record() as trace:
        log = real(main())
    stats = log.statistics()
    assert (stats.granted, stats.unthrottled, stats.rejected, stats.overdue) == (3, 3, 0, 0)
    grants = trace.of_kind("granted")
    assert len(grants) == 3 and all(e.detail["unthrottled"] for e in grants)
    assert "ConnectionError" in grants[0].detail["error"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "UNTHROTTLED" in warnings[0]


def test_a_hung_server_times_out(hung_url: str, key: str) -> None:
    async def main() -> None:
        limiter = SharedGCRA(hung_url, key, rate=10, timeout=0.2)
        started = time.monotonic()
        with pytest.raises(SharedLimitUnavailable, match="Timeout"):
            await limiter.acquire()
        assert time.monotonic() - started < 1.0

    real(main())


@pytest.mark.usefixtures("redis_binary")
def test_recovers_when_redis_comes_up(key: str, caplog: pytest.LogCaptureFixture) -> None:
    port = _free_port()
    server = RedisServer(port)

    async def main() -> SharedGCRA:
        limiter = SharedGCRA(f"redis://127.0.0.1:{port}/0", key, rate=100, on_error="fail_open", recheck=0.05)
        assert (await limiter.acquire()).unthrottled
        await asyncio.to_thread(server.start)
        await asyncio.sleep(0.06)
        reservation = await limiter.acquire()
        assert not reservation.unthrottled and reservation.at is not None
        await limiter.aclose()
        return limiter

    try:
        with caplog.at_level(logging.WARNING, logger="throttle_lab.shared"):
            limiter = real(main())
    finally:
        server.close()
    assert limiter.statistics().unthrottled == 1
    assert "reachable again" in caplog.records[-1].getMessage()


@pytest.mark.parametrize("crash", [False, True], ids=["restart", "crash"])
def test_fail_closed_holds_the_limit_across_a_restart_mid_run(
    own_server: RedisServer, key: str, crash: bool
) -> None:
    """Workers keep going while Redis goes down and comes back; every grant that happened was booked."""
    limit, window_us = 5, 100_000

    async def main() -> tuple[list[tuple[int, float]], int, SharedSlidingWindowLog]:
        log = SharedSlidingWindowLog(
            own_server.url, key, max_requests=limit, window_seconds=0.1, recheck=0.02
        )
        bookings: list[tuple[int, float]] = []
        refused = 0

        async def worker() -> None:
            nonlocal refused
            for _ in range(12):
                while True:
                    try:
                        reservation = await log.acquire()
                        break
                    except SharedLimitUnavailable:
                        refused += 1
                        await asyncio.sleep(0.02)
                assert reservation.at_us is not None
                bookings.append((reservation.at_us, 1.0))

        async def outage() -> None:
            await asyncio.sleep(0.3)
            await asyncio.to_thread(own_server.restart, 0.3, crash=crash)

        await asyncio.gather(*(worker() for _ in range(4)), outage())
        await log.aclose()
        return bookings, refused, log

    bookings, refused, log = real(main())
    assert len(bookings) == 48
    assert refused > 0  # the outage was seen...
    assert max_in_window(bookings, window_us) <= limit  # ...and never let anything through unbooked
    stats = log.statistics()
    assert stats.errors > 0 and stats.script_loads == 2  # loaded again after the restart
    assert stats.unthrottled == 0


def test_fail_open_rides_out_a_restart(own_cache_server: RedisServer, key: str) -> None:
    async def main() -> list[bool]:
        limiter = SharedGCRA(own_cache_server.url, key, rate=200, burst=5, on_error="fail_open", recheck=0.02)
        flags = [(await limiter.acquire()).unthrottled]
        own_cache_server.stop()
        flags.append((await limiter.acquire()).unthrottled)
        await asyncio.to_thread(own_cache_server.start)
        await asyncio.sleep(0.03)
        flags.append((await limiter.acquire()).unthrottled)
        await limiter.aclose()
        return flags

    assert real(main()) == [False, True, False]


@pytest.mark.usefixtures("redis_binary")
@pytest.mark.parametrize("persistent", [True, False], ids=["appendonly", "no-persistence"])
def test_state_survives_a_restart_only_with_persistence(key: str, persistent: bool) -> None:
    with RedisServer(appendonly=persistent) as server:

        async def before() -> None:
            log = SharedSlidingWindowLog(server.url, key, max_requests=3, window_seconds=30)
            for _ in range(3):
                await log.acquire()
            assert await log.peek() > 29
            await log.aclose()

        async def after() -> float:
            log = SharedSlidingWindowLog(server.url, key, max_requests=3, window_seconds=30)
            wait = await log.peek()
            await log.aclose()
            return wait

        real(before())
        server.restart()
        wait = real(after())
    # With appendonly the log is replayed: the window is still full.  Without it Redis forgot it: a
    # restart that loses data gives every worker a fresh limit (see the module docstring).
    assert (wait > 28) is persistent


def test_scripts_are_loaded_again_after_script_flush(redis_url: str, key: str) -> None:
    async def main() -> SharedGCRA:
        limiter = SharedGCRA(redis_url, key, rate=1000, burst=10)
        await limiter.acquire()
        other = aioredis.Redis.from_url(redis_url)
        await other.script_flush()
        await other.aclose()
        await limiter.acquire()  # NOSCRIPT -> SCRIPT LOAD -> EVALSHA again, invisibly
        await limiter.aclose()
        return limiter

    stats = real(main()).statistics()
    assert (stats.granted, stats.script_loads, stats.errors) == (2, 2, 0)


def test_a_refund_while_redis_is_down_is_counted_not_raised(own_cache_server: RedisServer, key: str) -> None:
    async def main() -> SharedGCRA:
        limiter = SharedGCRA(own_cache_server.url, key, rate=5)
        await limiter.acquire()
        victim = asyncio.ensure_future(limiter.acquire())  # sleeps 200 ms
        await asyncio.sleep(0.02)
        await asyncio.to_thread(own_cache_server.stop)
        victim.cancel()
        await asyncio.gather(victim, return_exceptions=True)
        await limiter.aclose()
        return limiter

    stats = real(main()).statistics()
    assert (stats.cancelled, stats.refunded, stats.not_refunded) == (1, 0, 1)
