"""SharedGCRA against a real Redis: the ideal timeline, bursts, weights, FIFO, try/peek, refunds, TTLs.

Times are asserted on Redis time (``at_us``), which the script computes from its booking chain: when a
booking is made while the previous one is still pending, its start is exactly one interval later, whatever
the real-time jitter of the callers.  Most tests book with ``margin=0`` to check that arithmetic exactly;
the ``margin`` tests check what a margin changes (and ``test_real_loop`` what it buys at the callers).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
import redis.asyncio as aioredis

from throttle_lab import observe, record, request_scope
from throttle_lab.shared import Reservation, SharedGCRA

from .helpers import burn, gcra_violations, in_order, late_start_violations, real


def test_bookings_follow_the_ideal_timeline_exactly(redis_url: str, key: str) -> None:
    async def main() -> list[Reservation]:
        limiter = SharedGCRA(redis_url, key, rate=20, margin=0)  # one per 50 ms, no burst
        first = await limiter.acquire()  # also connects and loads the script
        rest = await asyncio.gather(*(limiter.acquire() for _ in range(8)))
        await limiter.aclose()
        return [first, *rest]

    bookings = real(main())
    starts = sorted(r.at_us for r in bookings if r.at_us is not None)
    # Each booking starts exactly 50 ms after the previous one: scheduled from the timeline, not from
    # "now + interval", so nobody's late wake-up shifts anybody else.
    assert [b - a for a, b in itertools.pairwise(starts)] == [50_000] * 8
    assert bookings[0].waited < 0.5 and not bookings[0].unthrottled


def test_a_burst_goes_at_once_then_the_rate_holds(redis_url: str, key: str) -> None:
    async def main() -> list[Reservation]:
        limiter = SharedGCRA(redis_url, key, rate=50, burst=5, margin=0)
        out = await asyncio.gather(*(limiter.acquire() for _ in range(15)))
        await limiter.aclose()
        return list(out)

    bookings = real(main())
    pairs = [(r.at_us, r.weight) for r in bookings if r.at_us is not None]
    assert gcra_violations(pairs, rate=50, burst=5) == []
    waited = sorted(r.waited for r in bookings)
    assert waited[4] < 0.1  # the burst did not wait
    assert 0.15 < waited[-1] < 0.5  # the 15th: (15 - 5) / 50 s = 0.2 s after the first


def test_per_minute_and_the_level_in_events(redis_url: str, key: str) -> None:
    async def main() -> None:
        limiter = SharedGCRA(redis_url, key, per_minute=6000, burst=3, name="shared", margin=0)
        assert limiter.rate == 100
        for _ in range(3):
            await limiter.acquire()
        await limiter.aclose()

    with record() as trace:
        real(main())
    tokens = [e.detail["tokens"] for e in trace.of_kind("granted")]
    assert tokens[0] == pytest.approx(2.0, abs=0.2)  # 3 - 1, plus a little refill
    assert all(e.source == "shared" and "at" in e.detail for e in trace)


def test_weights_and_a_heavy_request_at_the_head_is_not_overtaken(redis_url: str, key: str) -> None:
    async def main() -> list[int]:
        limiter = SharedGCRA(redis_url, key, rate=100, burst=10, margin=0)
        await limiter.acquire(10)  # drain the bucket: TAT = now + 100 ms
        starts = await in_order(limiter.acquire, [8, 1])
        await limiter.aclose()
        return starts

    heavy, light = real(main())
    # The light request arrived second: it starts one interval after the heavy one, not before it.
    assert light - heavy == 10_000


def test_arrival_order_is_grant_order(redis_url: str, key: str) -> None:
    """FIFO by arrival at Redis: whoever's script ran first starts (and wakes) first, heavy or light."""

    async def main() -> tuple[list[int], list[int]]:
        limiter = SharedGCRA(redis_url, key, rate=200, burst=2, margin=0)
        await limiter.acquire(2)
        woke: list[int] = []

        async def acquire(weight: float) -> Reservation:
            reservation = await limiter.acquire(weight)
            woke.append(reservation.at_us or 0)
            return reservation

        starts = await in_order(acquire, [2, 1, 1, 2, 1, 2, 1, 1, 2, 1])
        await limiter.aclose()
        return starts, woke

    starts, woke = real(main())
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert woke == starts  # they also woke in that order


def test_a_margin_at_burst_1_spaces_bookings_by_interval_plus_margin(redis_url: str, key: str) -> None:
    async def main() -> list[int]:
        limiter = SharedGCRA(redis_url, key, rate=20, margin=0.01)
        await limiter.peek()
        starts = await in_order(limiter.acquire, [1] * 5)
        await limiter.aclose()
        return starts

    starts = real(main())
    # A burst of one allows no two callers closer than 50 ms: the next booking is spaced from the latest
    # this caller may start, its booked start + 10 ms.
    assert [b - a for a, b in itertools.pairwise(starts)] == [60_000] * 4


def test_a_margin_shrinks_the_burst_and_keeps_the_rate(redis_url: str, key: str) -> None:
    async def main() -> list[int]:
        limiter = SharedGCRA(redis_url, key, rate=10, burst=3, margin=0.01)
        await limiter.peek()
        starts = await in_order(limiter.acquire, [1] * 6)
        await limiter.aclose()
        return starts

    starts = real(main())
    relative = [at - starts[0] for at in starts]
    # Two go at once; the third waits for the margin (the burst shrank by rate * margin = 0.1 of a
    # request); from then on, one per 100 ms exactly: the rate is untouched.
    assert relative[1] < 10_000
    assert relative[2:] == [10_000, 110_000, 210_000, 310_000]
    assert late_start_violations([(at, 1.0) for at in starts], 10, 3, 10_000) == []


def test_the_caller_sleeps_until_its_booked_start_not_wait_after_the_reply(
    redis_url: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reply that takes 100 ms to come back does not make its caller 100 ms late."""

    async def main() -> Reservation:
        limiter = SharedGCRA(redis_url, key, rate=4, margin=0)  # one per 250 ms
        for _ in range(3):
            await limiter.peek()  # quick round trips: they pin Redis's clock down on ours
        await limiter.acquire()
        quick = limiter._call

        async def slow(script: Any, args: list[str]) -> Any:
            reply = await quick(script, args)
            await asyncio.sleep(0.1)  # the reply's trip back (or a busy loop that reads it late)
            return reply

        monkeypatch.setattr(limiter, "_call", slow)
        second = await limiter.acquire()  # booked 250 ms after the first; the reply arrives at ~100 ms
        await limiter.aclose()
        return second

    second = real(main())
    assert second.lateness is not None
    # "Sleep 250 ms from the reply" would have proceeded ~100 ms late.
    assert second.lateness < 0.05


def test_a_caller_later_than_the_margin_is_counted_overdue(redis_url: str, key: str) -> None:
    async def main() -> tuple[Reservation, SharedGCRA]:
        limiter = SharedGCRA(redis_url, key, rate=20, margin=0.02)
        await limiter.peek()
        await limiter.acquire()
        queued = asyncio.Event()
        with observe(lambda event: queued.set() if event.kind == "queued" else None):
            second = asyncio.ensure_future(limiter.acquire())  # booked 70 ms from now
            await queued.wait()
        burn(0.2)  # this caller blocks the loop well past the second one's start
        reservation = await second
        await limiter.aclose()
        return reservation, limiter

    with record() as trace:
        reservation, limiter = real(main())
    assert reservation.lateness is not None and reservation.lateness > 0.1
    stats = limiter.statistics()
    assert stats.overdue >= 1 and stats.max_lateness >= reservation.lateness and stats.margin == 0.02
    last = trace.of_kind("granted")[-1]
    assert last.detail["overdue"] is True and last.detail["late"] == reservation.lateness


def test_oversize_fails_at_once_without_a_round_trip(key: str) -> None:
    # Nothing listens on port 1: a round trip would fail.  The ValueError comes first.
    async def main() -> SharedGCRA:
        limiter = SharedGCRA("redis://127.0.0.1:1/0", key, rate=10, burst=4)
        with pytest.raises(ValueError, match=r"weight 5 exceeds .* \(4\)"):
            await limiter.acquire(5)
        with pytest.raises(ValueError, match="weight must be a positive"):
            await limiter.acquire(0)
        with pytest.raises(ValueError, match="weight must be a positive"):
            await limiter.try_acquire(float("nan"))
        return limiter

    with record() as trace:
        limiter = real(main())
    stats = limiter.statistics()
    assert (stats.rejected, stats.round_trips, stats.errors) == (1, 0, 0)
    assert [(e.kind, e.detail["reason"]) for e in trace] == [("rejected", "oversize")]


def test_try_acquire_books_only_when_free_and_peek_never_books(redis_url: str, key: str) -> None:
    async def main() -> None:
        limiter = SharedGCRA(redis_url, key, rate=10, burst=2, margin=0)
        assert await limiter.peek() == 0.0
        first = await limiter.try_acquire()
        second = await limiter.try_acquire()
        assert first and second and first.waited < 0.5
        assert await limiter.try_acquire() is None  # the bucket is empty
        wait = await limiter.peek()
        assert 0.05 < wait <= 0.1
        assert await limiter.peek() <= wait  # peeking booked nothing
        reservation = await limiter.acquire()
        assert reservation.at_us is not None and first.at_us is not None
        assert reservation.at_us - first.at_us == pytest.approx(100_000, abs=2)
        stats = limiter.statistics()
        assert (stats.granted, stats.queued) == (3, 1)
        await limiter.aclose()

    real(main())


def test_cancelled_last_booking_is_refunded(redis_url: str, key: str) -> None:
    async def main() -> tuple[int, int, SharedGCRA]:
        limiter = SharedGCRA(redis_url, key, rate=20, margin=0.01)
        await limiter.acquire()
        with request_scope("victim"):
            victim = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0.01)  # booked, sleeping
        assert limiter.waiting == 1
        victim.cancel()
        await asyncio.gather(victim, return_exceptions=True)
        await limiter.wait_refunds()
        after = await limiter.acquire()  # takes the refunded slot
        again = await limiter.acquire()
        assert after.at_us is not None and again.at_us is not None
        await limiter.aclose()
        return after.at_us, again.at_us, limiter

    with record() as trace:
        after, again, limiter = real(main())
    # The refund put back the TAT the victim found, margin and all: the next two are spaced as if the
    # victim had never booked (1/rate + margin at burst 1).
    assert again - after == 60_000
    stats = limiter.statistics()
    assert (stats.cancelled, stats.refunded, stats.not_refunded, stats.waiting) == (1, 1, 0, 0)
    victim_events = [e.kind for e in trace if e.request == "victim"]
    assert victim_events == ["queued", "cancelled", "released"]


def test_cancelled_booking_with_later_bookings_is_not_refunded(redis_url: str, key: str) -> None:
    async def main() -> list[int]:
        limiter = SharedGCRA(redis_url, key, rate=20, margin=0)
        first = await limiter.acquire()
        victim = asyncio.ensure_future(limiter.acquire())  # slot +50 ms
        await asyncio.sleep(0.005)
        behind = asyncio.ensure_future(limiter.acquire())  # slot +100 ms, booked after the victim
        await asyncio.sleep(0.005)
        victim.cancel()
        await asyncio.gather(victim, return_exceptions=True)
        await limiter.wait_refunds()
        newcomer = await limiter.acquire()
        later = await behind
        stats = limiter.statistics()
        assert (stats.refunded, stats.not_refunded) == (0, 1)
        await limiter.aclose()
        return [r.at_us for r in (first, later, newcomer) if r.at_us is not None]

    first, behind, newcomer = real(main())
    # The victim's slot stays a gap: the newcomer does not share `behind`'s instant.
    assert (behind - first, newcomer - first) == (100_000, 150_000)


def test_key_has_a_ttl_and_disappears_when_idle(redis_url: str, key: str) -> None:
    async def main() -> None:
        limiter = SharedGCRA(redis_url, key, rate=100, burst=5, margin=0)
        (name,) = limiter.redis_keys()
        assert name == f"throttle_lab:{{{key}}}:gcra"
        await limiter.acquire(5)
        client = aioredis.Redis.from_url(redis_url)
        ttl = await client.pttl(name)
        assert 0 < ttl <= 51
        await asyncio.sleep(0.08)
        assert await client.exists(name) == 0
        await limiter.reset()
        await client.aclose()
        await limiter.aclose()

    real(main())


def test_statistics_and_repr(redis_url: str, key: str) -> None:
    async def main() -> SharedGCRA:
        limiter = SharedGCRA(redis_url, key, per_minute=600, burst=2, name="api", margin=0)
        assert "granted=0" in repr(limiter) and "last reply" not in repr(limiter)
        for _ in range(3):
            await limiter.acquire()
        await limiter.aclose()
        return limiter

    limiter = real(main())
    text = repr(limiter)
    assert text.startswith("<SharedGCRA 'api' key=") and "rate=10/s (600/min) burst=2" in text
    assert "last reply: tokens=" in text and "granted=3" in text and "on_error=fail_closed" in text
    stats = limiter.statistics()
    assert (stats.rate, stats.burst, stats.granted, stats.queued, stats.round_trips) == (10.0, 2.0, 3, 1, 3)
    assert stats.script_loads == 1 and 0 < stats.round_trip_mean < 0.5
    assert stats.key.endswith(":gcra")
    assert stats.margin == 0 and "margin=0ms" in text
    assert "margin=20ms" in repr(SharedGCRA(redis_url, key, rate=1))  # the default


def test_slot_yields_the_reservation_and_lets_errors_through(redis_url: str, key: str) -> None:
    async def main() -> None:
        limiter = SharedGCRA(redis_url, key, rate=100, burst=2)
        async with limiter.slot(2) as reservation:
            assert reservation.weight == 2 and reservation.at is not None
        with pytest.raises(KeyError):
            async with limiter.slot():
                raise KeyError("boom")
        assert limiter.statistics().granted == 2
        await limiter.aclose()

    real(main())


def test_a_limiter_moves_to_a_new_event_loop(redis_url: str, key: str) -> None:
    limiter = SharedGCRA(redis_url, key, rate=1000, burst=10)

    async def once() -> None:
        await limiter.acquire()
        await limiter.aclose()  # its connections belong to this loop: close them before it ends

    real(once())
    real(once())  # a new loop: a new client
    assert limiter.statistics().granted == 2


def test_a_client_you_configure_yourself(redis_url: str, key: str) -> None:
    async def main() -> None:
        client = aioredis.Redis.from_url(redis_url)  # bytes replies, redis-py's own retry policy
        limiter = SharedGCRA(client, key, rate=100, burst=1)
        for _ in range(2):
            await limiter.acquire()
        await limiter.aclose()  # not ours to close
        assert await client.ping()
        await client.aclose()

    real(main())


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: SharedGCRA("redis://127.0.0.1:6379", "k", rate=0), "rate"),
        (lambda: SharedGCRA("redis://127.0.0.1:6379", "k", rate=float("nan")), "rate"),
        (lambda: SharedGCRA("redis://127.0.0.1:6379", "k", per_minute=-1), "per_minute"),
        (lambda: SharedGCRA("redis://127.0.0.1:6379", "k", rate=1, burst=0), "burst"),
        (lambda: SharedGCRA("redis://127.0.0.1:6379", "k"), "rate"),
        (lambda: SharedGCRA("redis://127.0.0.1:6379", "", rate=1), "key"),
        (lambda: SharedGCRA("redis://127.0.0.1:6379", "a{b}", rate=1), "key"),
        (lambda: SharedGCRA("localhost:6379", "k", rate=1), "redis"),
        (lambda: SharedGCRA(6379, "k", rate=1), "redis"),  # type: ignore[arg-type]
        (lambda: SharedGCRA("redis://x", "k", rate=1, on_error="ignore"), "on_error"),  # type: ignore[arg-type]
        (lambda: SharedGCRA("redis://x", "k", rate=1, timeout=0), "timeout"),
        (lambda: SharedGCRA("redis://x", "k", rate=1, recheck=-1), "recheck"),
        (lambda: SharedGCRA("redis://x", "k", rate=1, prefix=""), "prefix"),
        (lambda: SharedGCRA("redis://x", "k", rate=1, margin=-0.001), "margin"),
        (lambda: SharedGCRA("redis://x", "k", rate=1, margin=float("nan")), "margin"),
        (lambda: SharedGCRA("redis://x", "k", rate=1, margin=float("inf")), "margin"),
        (lambda: SharedGCRA("redis://x", "k", rate=1, margin=True), "margin"),
        (lambda: SharedGCRA("redis://x", "k", rate=1, margin="10ms"), "margin"),  # type: ignore[arg-type]
    ],
)
def test_invalid_configuration_names_the_argument(make: object, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        make()  # type: ignore[operator]
