"""SharedThrottler against a real Redis: RPM and TPM booked together, all or nothing, in arrival order.

Tests of exact booked starts use ``margin=0`` (the arithmetic in Redis time); the ``margin`` test checks
what a margin changes, and ``test_real_loop`` what it buys at the callers.
"""

from __future__ import annotations

import asyncio
import itertools
import random

import httpx
import pytest

from throttle_lab import ThrottledTransport, Tokens, record
from throttle_lab.core.gate import CoolsDown
from throttle_lab.shared import SharedThrottler

from .helpers import gcra_violations, in_order, real


def test_tokens_bind_and_later_requests_keep_their_place(redis_url: str, key: str) -> None:
    async def main() -> list[int]:
        # 100 requests/s bursting 10; 100 tokens/s bursting 10.
        throttler = SharedThrottler(redis_url, key, rpm=6000, tpm=6000, window=0.1, margin=0)
        await throttler.peek()
        starts = await in_order(throttler.acquire, [10, 10, 0, 0])
        await throttler.aclose()
        return starts

    a, b, c, d = real(main())
    # b needs the token bucket refilled (100 ms).  c and d need no tokens and RPM has room -- but they arrived
    # after b, so they go with it, not before it.
    assert (b - a, c - a, d - a) == (100_000, 100_000, 100_000)


def test_requests_bind_when_tokens_are_plenty(redis_url: str, key: str) -> None:
    async def main() -> list[int]:
        # one per 50 ms
        throttler = SharedThrottler(redis_url, key, rpm=1200, tpm=1_000_000, window=0.05, margin=0)
        await throttler.peek()
        starts = await in_order(throttler.acquire, [5, 5, 5, 5])
        await throttler.aclose()
        return starts

    starts = real(main())
    assert [b - a for a, b in itertools.pairwise(starts)] == [50_000] * 3


def test_a_margin_spaces_both_buckets_from_the_latest_start(redis_url: str, key: str) -> None:
    async def main() -> tuple[list[int], list[int]]:
        # A budget of one request per 50 ms, tokens plenty: requests bind.
        requests = SharedThrottler(redis_url, key + "-r", rpm=1200, tpm=10**9, window=0.05, margin=0.01)
        # 100 tokens/s with a capacity of 10, requests plenty: tokens bind.
        tokens = SharedThrottler(redis_url, key + "-t", rpm=10**6, tpm=6000, window=0.1, margin=0.01)
        await requests.peek()
        await tokens.peek()
        by_requests = await in_order(requests.acquire, [1, 1, 1])
        by_tokens = await in_order(tokens.acquire, [10, 10])
        await requests.aclose()
        await tokens.aclose()
        return by_requests, by_tokens

    by_requests, by_tokens = real(main())
    assert [b - a for a, b in itertools.pairwise(by_requests)] == [60_000, 60_000]  # 50 ms + the margin
    assert by_tokens[1] - by_tokens[0] == 110_000  # 10 tokens refill in 100 ms, counted from +10 ms


def test_both_limits_hold_for_a_random_weighted_batch(redis_url: str, key: str) -> None:
    rpm, tpm, window = 12_000, 120_000, 0.1  # 200 requests/s (burst 20), 2000 tokens/s (burst 200)
    rng = random.Random(7)
    tokens = [float(rng.randint(1, 60)) for _ in range(60)]

    async def main() -> list[tuple[int, float]]:
        throttler = SharedThrottler(redis_url, key, rpm=rpm, tpm=tpm, window=window)
        out = await asyncio.gather(*(throttler.acquire(t) for t in tokens))
        assert throttler.statistics().tokens_granted == sum(tokens)
        await throttler.aclose()
        return [(r.at_us or 0, r.weight) for r in out]

    bookings = real(main())
    assert gcra_violations([(at, 1.0) for at, _ in bookings], rate=rpm / 60, burst=rpm * window / 60) == []
    assert gcra_violations(bookings, rate=tpm / 60, burst=tpm * window / 60) == []


def test_rpm_only_and_tpm_only(redis_url: str, key: str) -> None:
    async def main() -> None:
        rpm_only = SharedThrottler(redis_url, key + "-r", rpm=600, window=1)
        assert rpm_only.max_weight == float("inf")
        assert await rpm_only.acquire(10**9)  # tokens are not limited
        tpm_only = SharedThrottler(redis_url, key + "-t", tpm=600, window=1)
        assert tpm_only.max_weight == 10
        assert await tpm_only.acquire(10)
        assert await tpm_only.try_acquire(1) is None
        assert await tpm_only.try_acquire(0)  # no tokens, no RPM limit: always fits
        await rpm_only.aclose()
        await tpm_only.aclose()

    real(main())


def test_oversize_tokens_fail_at_once(key: str) -> None:
    async def main() -> SharedThrottler:
        throttler = SharedThrottler("redis://127.0.0.1:1/0", key, rpm=60, tpm=6000, window=1)
        with pytest.raises(ValueError, match=r"101 tokens can never fit .* \(100 at most"):
            await throttler.acquire(101)
        with pytest.raises(ValueError, match="tokens must be a non-negative"):
            await throttler.acquire(-1)
        return throttler

    with record() as trace:
        throttler = real(main())
    assert throttler.statistics().rejected == 1 and throttler.statistics().round_trips == 0
    assert trace.count("rejected") == 1


def test_cancelled_latest_booking_is_undone_both_halves(redis_url: str, key: str) -> None:
    async def main() -> tuple[int, int, int]:
        throttler = SharedThrottler(redis_url, key, rpm=6000, tpm=6000, window=0.1, margin=0)
        first = await throttler.acquire(10)
        victim = asyncio.ensure_future(throttler.acquire(10))  # first + 100 ms
        await asyncio.sleep(0.01)
        victim.cancel()
        await asyncio.gather(victim, return_exceptions=True)
        await throttler.wait_refunds()
        newcomer = await throttler.acquire(10)  # gets the victim's slot
        again = await throttler.acquire(10)
        stats = throttler.statistics()
        assert (stats.refunded, stats.cancelled, stats.tokens_granted) == (1, 1, 30)
        await throttler.aclose()
        return first.at_us or 0, newcomer.at_us or 0, again.at_us or 0

    first, newcomer, again = real(main())
    assert (newcomer - first, again - first) == (100_000, 200_000)


def test_statistics_and_repr(redis_url: str, key: str) -> None:
    async def main() -> SharedThrottler:
        throttler = SharedThrottler(redis_url, key, rpm=600, tpm=60_000, window=1, name="openai", margin=0)
        async with throttler.slot(100) as reservation:
            assert reservation.weight == 100
        await throttler.aclose()
        return throttler

    throttler = real(main())
    text = repr(throttler)
    assert text.startswith("<SharedThrottler 'openai'") and "rpm=600 tpm=60000 window=1s" in text
    assert "requests_left=9.00" in text and "tokens_left=900.00" in text
    stats = throttler.statistics()
    assert (stats.rpm, stats.tpm, stats.window, stats.tokens_granted, stats.granted) == (
        600,
        60_000,
        1,
        100,
        1,
    )


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({}, "at least one of rpm=, tpm=, itpm= and otpm="),
        ({"itpm": 0}, "itpm"),
        ({"otpm": float("nan")}, "otpm"),
        ({"rpm": 0}, "rpm"),
        ({"tpm": -5}, "tpm"),
        ({"rpm": 60, "window": 0}, "window"),
        ({"rpm": 60, "window": float("inf")}, "window"),
        ({"rpm": 60, "margin": -0.5}, "margin"),
        ({"rpm": 60, "margin": float("nan")}, "margin"),
    ],
)
def test_invalid_configuration_names_the_argument(kwargs: dict[str, float], argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        SharedThrottler("redis://127.0.0.1:6379", "k", **kwargs)  # type: ignore[arg-type]


# -- Anthropic's split budgets: input and output tokens per minute, in the same one script -----------


def test_output_binds_across_the_split_budgets(redis_url: str, key: str) -> None:
    async def main() -> list[int]:
        # input: 1000 tokens/s bursting 100; output: 100 tokens/s bursting 10 -> output binds.
        throttler = SharedThrottler(redis_url, key, itpm=60_000, otpm=6_000, window=0.1, margin=0)
        await throttler.peek()
        starts = await in_order(throttler.acquire, [Tokens(20, 10), Tokens(20, 10), Tokens(20, 10)])
        await throttler.aclose()
        return starts

    a, b, c = real(main())
    assert (b - a, c - a) == (100_000, 200_000)


def test_all_or_nothing_and_refunds_cover_every_budget(redis_url: str, key: str) -> None:
    async def main() -> tuple[int, int, int, SharedThrottler]:
        throttler = SharedThrottler(redis_url, key, rpm=60_000, itpm=6_000, otpm=6_000, window=0.1, margin=0)
        first = await throttler.acquire(Tokens(10, 10))  # both budgets spent
        victim = asyncio.ensure_future(throttler.acquire(Tokens(10, 1)))  # input binds: first + 100 ms
        await asyncio.sleep(0.01)
        victim.cancel()
        await asyncio.gather(victim, return_exceptions=True)
        await throttler.wait_refunds()
        # The victim's input AND output go back: this one needs 10 of each again, first + 100 ms.
        newcomer = await throttler.acquire(Tokens(10, 10))
        small = await throttler.acquire(Tokens(0, 5))  # output binds (5 more at 100 per s): + 50 ms
        await throttler.aclose()
        return first.at_us or 0, newcomer.at_us or 0, small.at_us or 0, throttler

    first, newcomer, small, throttler = real(main())
    assert (newcomer - first, small - first) == (100_000, 150_000)
    stats = throttler.statistics()
    assert (stats.itpm, stats.otpm, stats.refunded, stats.tokens_granted) == (6_000, 6_000, 1, 45)
    assert "itpm=6000 otpm=6000" in repr(throttler) and "output_tokens_left" in repr(throttler)


def test_split_budgets_refuse_plain_numbers_and_oversize_parts(key: str) -> None:
    async def main() -> SharedThrottler:
        throttler = SharedThrottler("redis://127.0.0.1:1/0", key, itpm=600, otpm=60, window=1)
        with pytest.raises(ValueError, match=r"Tokens\(input=..., output=...\)"):
            await throttler.acquire(5)
        with pytest.raises(ValueError, match=r"output tokens 2 exceed the otpm budget \(1"):
            await throttler.acquire(Tokens(1, 2))
        with pytest.raises(ValueError, match="input tokens 11 exceed"):
            await throttler.acquire(Tokens(11, 1))
        return throttler

    throttler = real(main())
    assert throttler.statistics().round_trips == 0 and throttler.statistics().rejected == 2


# -- the shared cool-down: a 429 in one worker holds every worker --------------------------------------


def test_pause_holds_every_worker_and_drains_the_budgets(redis_url: str, key: str) -> None:
    async def main() -> list[int]:
        # 600 requests a minute over 1 s: 10 held, 10 per second.  Two workers share the limit.
        one = SharedThrottler(redis_url, key, rpm=600, window=1, margin=0)
        other = SharedThrottler(redis_url, key, rpm=600, window=1, margin=0)
        for _ in range(3):
            await one.acquire()  # 7 left in Redis
        one.pause(0.2)  # a 429: the server's budget is spent after all
        await one.wait_pauses()
        starts = await in_order(other.acquire, [0, 0, 0, 0])
        await one.aclose()
        await other.aclose()
        return starts

    a, b, c, d = real(main())
    # Drained, then held 0.2 s: 2 requests earned during the pause go at its end, then one per 100 ms.
    assert (b - a, c - a, d - a) == (0, 100_000, 200_000)


def test_the_transport_cools_every_worker_down_on_a_429(redis_url: str, key: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"retry-after": "1"}, json={"error": {"type": "requests"}})

    async def main() -> float:
        hit = SharedThrottler(redis_url, key, rpm=6_000, window=1, margin=0)
        assert isinstance(hit, CoolsDown)
        bystander = SharedThrottler(redis_url, key, rpm=6_000, window=1, margin=0)
        async with httpx.AsyncClient(
            transport=ThrottledTransport(httpx.MockTransport(handler), limiter=hit)
        ) as client:
            assert (await client.post("http://api/v1/chat/completions", json={})).status_code == 429
        await hit.wait_pauses()
        waited = (await bystander.acquire()).waited  # another worker, another throttler, the same key
        await hit.aclose()
        await bystander.aclose()
        return waited

    assert real(main()) >= 0.9
