"""The conformance suite, continued: control changes keep the promises (DESIGN.md, "Limiters").

Changing a rate, pausing, reconciling or abandoning waiters while others queue must not break what a
limiter promises.  The factories are the conformance suite's own (4 units per 2 s); each test names the
kinds it applies to, and where two limiters state the same rule (a token bucket and GCRA), they must
agree to the last timestamp after the change too.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from throttle_lab import Throttler, run

from .test_conformance import FACTORIES

RATED = ["token_bucket", "gcra", "throttler_tpm", "throttler_all"]  # 2 units per second, 4 at once
THROTTLERS = ["throttler_tpm", "throttler_all"]


def set_rate(limiter: Any, per_second: float) -> None:
    if isinstance(limiter, Throttler):
        limiter.set_limits(tpm=per_second * 60)
    else:
        limiter.set_rate(per_second)


async def one_by_one(limiter: Any, n: int, *, after: dict[int, Any] | None = None) -> list[float]:
    """``n`` callers at t = 0, one unit each; ``after[i](limiter)`` runs in caller ``i`` right after its
    grant.  Returns the grant times in order."""
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def caller(i: int) -> None:
        async with limiter.slot(1):
            times.append(loop.time())
            if after and i in after:
                after[i](limiter)

    await asyncio.gather(*(caller(i) for i in range(n)))
    return times


@pytest.mark.parametrize("kind", RATED)
def test_halving_the_rate_under_load_slows_what_follows_and_nothing_else(kind: str) -> None:
    # Four at once, then one per 0.5 s; the sixth halves the rate: the bucket is empty and refills at 1/s.
    times = run(one_by_one(FACTORIES[kind](), 10, after={5: lambda lim: set_rate(lim, 1.0)}))
    assert times == [0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize("kind", RATED)
def test_doubling_the_rate_under_load_speeds_up_what_follows_at_once(kind: str) -> None:
    times = run(one_by_one(FACTORIES[kind](), 10, after={5: lambda lim: set_rate(lim, 4.0)}))
    assert times == [0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 1.25, 1.5, 1.75, 2.0]


@pytest.mark.parametrize("kind", ["token_bucket", "gcra"])
def test_a_rate_change_on_an_idle_limiter_keeps_its_room(kind: str) -> None:
    async def main() -> list[float]:
        limiter = FACTORIES[kind]()
        loop = asyncio.get_running_loop()
        await limiter.acquire(2)  # 2 of 4 used
        set_rate(limiter, 0.5)
        times = []
        for _ in range(3):
            await limiter.acquire(1)
            times.append(loop.time())
        return times

    # Two units of room survive the change; the third waits for one unit at the new rate, counted from the
    # change (the bucket was refilling at 2/s for no time at all).
    assert run(main()) == [0.0, 0.0, 2.0]


@pytest.mark.parametrize("kind", THROTTLERS)
def test_a_pause_under_load_holds_everyone_and_drains(kind: str) -> None:
    # Two go at t = 0 and the books say 2 are left, then a 429 says "1 s": nobody goes before 1.0, and the
    # bucket refills from the 429 on (2/s), not from the 2 the books held: 2 at 1.0, then one per 0.5 s.
    times = run(one_by_one(FACTORIES[kind](), 10, after={1: lambda lim: lim.pause(1.0)}))
    assert times == [0.0, 0.0, 1.0, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]


@pytest.mark.parametrize("kind", THROTTLERS)
def test_reconciling_under_load_moves_the_queue_by_exactly_the_correction(kind: str) -> None:
    # The first request turns out to have cost 4 tokens, not 1: the bucket is empty at once, and the queue
    # behind it moves at 2/s from there.  The third booked 1 and used 0.5: half a token comes back, and the
    # next grant is a quarter second early.
    async def main() -> list[float]:
        throttler = FACTORIES[kind]()
        loop = asyncio.get_running_loop()
        times: list[float] = []

        async def caller(i: int) -> None:
            async with throttler.slot(tokens=1) as permit:
                times.append(loop.time())
                if i == 0:
                    permit.reconcile(4)
                if i == 2:
                    permit.reconcile(0.5)

        await asyncio.gather(*(caller(i) for i in range(6)))
        return times

    assert run(main()) == [0.0, 0.5, 1.0, 1.25, 1.75, 2.25]


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_waiters_that_time_out_behind_a_live_head_do_not_pile_up(kind: str) -> None:
    # 5,000 callers give up while the head waits for a long time: their entries must not stay queued
    # until the head is served (before the fix: 100,000 timeouts held ~23 MB).
    async def main() -> tuple[int, int, list[float]]:
        limiter = FACTORIES[kind]()
        loop = asyncio.get_running_loop()
        held = [await limiter.acquire(1) for _ in range(4)]  # everything is taken
        head = asyncio.create_task(limiter.acquire(1))
        await asyncio.sleep(0)

        async def impatient() -> None:
            try:
                async with asyncio.timeout(0.001):
                    await limiter.acquire(1)
            except TimeoutError:
                pass

        await asyncio.gather(*(impatient() for _ in range(5_000)))
        queued = len(limiter._waiters)
        if kind == "concurrency":
            limiter.release(1)
        elif kind == "throttler_all":
            held[0].release()
        await head  # the head is served as if nobody had queued behind it
        served_at = loop.time()
        return queued, limiter.statistics().cancelled, served_at

    queued, cancelled, served_at = run(main())
    assert cancelled == 5_000
    assert queued <= 100
    # When the head would have gone anyway: at the release (once the others gave up), or at the next unit
    # of room (buckets 0.5 s, windows at 2 s, the counter once the previous window weighs little enough).
    expected = {"concurrency": 0.001, "sliding_log": 2.0, "fixed_window": 2.0, "sliding_counter": 2.5}
    assert served_at == expected.get(kind, 0.5)
