"""One suite, every limiter: the promises all of them make (DESIGN.md, "Limiters").

Each factory builds a limiter that admits 4 units per 2 seconds (the concurrency limiter: 4 at once, and
callers hold their slot 2 s).  The suite never assumes *when* a limiter grants -- that is each algorithm's
own business, tested with exact timestamps in its own module -- only that it behaves like a limiter:
FIFO, fails fast on the impossible, conserves capacity when waiters are cancelled, releases on error,
validates its configuration, and reports what it does.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable
from typing import Any

import pytest

from throttle_lab import (
    GCRA,
    ConcurrencyLimiter,
    FixedWindow,
    SlidingWindowCounter,
    SlidingWindowLog,
    Throttler,
    TokenBucket,
    record,
    run,
)
from throttle_lab.core.runtime import VirtualTimeLoop

from ..helpers import Request, drive

HOLD = 2.0  # how long callers hold what they got (matters for the concurrency limiter only)

FACTORIES: dict[str, Callable[[], Any]] = {
    "concurrency": lambda: ConcurrencyLimiter(max_concurrent=4),
    "token_bucket": lambda: TokenBucket(rate=2.0, capacity=4),
    "gcra": lambda: GCRA(rate=2.0, burst=4),
    "sliding_log": lambda: SlidingWindowLog(max_requests=4, window_seconds=2),
    "sliding_counter": lambda: SlidingWindowCounter(max_requests=4, window_seconds=2),
    "fixed_window": lambda: FixedWindow(max_requests=4, window_seconds=2),
    "throttler_tpm": lambda: Throttler(tpm=120, burst_seconds=2.0),
    "throttler_all": lambda: Throttler(max_concurrent=4, rpm=600, tpm=120, burst_seconds=2.0),
}
# Bad constructor calls, each with the argument name the error must mention.
INVALID: dict[str, list[tuple[Callable[[], Any], str]]] = {
    "concurrency": [
        (lambda: ConcurrencyLimiter(0), "max_concurrent"),
        (lambda: ConcurrencyLimiter(2.5), "max_concurrent"),  # type: ignore[arg-type]
        (lambda: ConcurrencyLimiter(-1), "max_concurrent"),
    ],
    "token_bucket": [
        (lambda: TokenBucket(rate=0, capacity=1), "rate"),
        (lambda: TokenBucket(rate=math.nan, capacity=1), "rate"),
        (lambda: TokenBucket(rate=1, capacity=-1), "capacity"),
        (lambda: TokenBucket(per_minute=-60, capacity=1), "per_minute"),
        (lambda: TokenBucket(rate=1, capacity=2, initial_tokens=3), "initial_tokens"),
        (lambda: TokenBucket(capacity=2), "rate"),
        (lambda: TokenBucket(rate=1, per_minute=60), "rate"),
    ],
    "gcra": [
        (lambda: GCRA(rate=math.inf), "rate"),
        (lambda: GCRA(rate=1, burst=0), "burst"),
    ],
    "sliding_log": [
        (lambda: SlidingWindowLog(0, 60), "max_requests"),
        (lambda: SlidingWindowLog(10, 0), "window_seconds"),
        (lambda: SlidingWindowLog(10, math.nan), "window_seconds"),
    ],
    "sliding_counter": [
        (lambda: SlidingWindowCounter(-5, 60), "max_requests"),
        (lambda: SlidingWindowCounter(5, -1), "window_seconds"),
    ],
    "fixed_window": [
        (lambda: FixedWindow(math.inf, 60), "max_requests"),
        (lambda: FixedWindow(5, "60"), "window_seconds"),  # type: ignore[arg-type]
    ],
    "throttler_tpm": [
        (lambda: Throttler(tpm=0), "tpm"),
        (lambda: Throttler(rpm=-1), "rpm"),
        (lambda: Throttler(max_concurrent=0), "max_concurrent"),
        (lambda: Throttler(rpm=60, window=0), "window"),
    ],
    "throttler_all": [
        (lambda: Throttler(rpm=60, requests=SlidingWindowLog(60)), "rpm"),
        (lambda: Throttler(tokens=ConcurrencyLimiter(3)), "max_concurrent"),
    ],
}

pytestmark = pytest.mark.parametrize("kind", list(FACTORIES))


def schedule(n: int, *, weight: float = 1, spacing: float = 0.0) -> list[Request]:
    return [Request(f"r{i}", at=i * spacing, weight=weight, hold=HOLD) for i in range(n)]


def test_everyone_gets_through_in_arrival_order(kind: str) -> None:
    requests = schedule(12, spacing=0.1)
    out = drive(FACTORIES[kind], requests)
    assert out.order == [r.name for r in requests]
    times = [out.granted[r.name] for r in requests]
    assert times == sorted(times)
    # Capacity 4: the first four go at once on arrival, the fifth has to wait.
    assert [out.granted[f"r{i}"] for i in range(4)] == [r.at for r in requests[:4]]
    assert out.granted["r4"] > requests[4].at


def test_a_heavy_head_is_not_overtaken(kind: str) -> None:
    requests = [
        Request("small0", at=0.0, weight=3, hold=HOLD),
        Request("heavy", at=0.1, weight=4, hold=HOLD),  # must wait for all capacity
        Request("light", at=0.2, weight=1, hold=HOLD),  # would fit earlier, but queues behind
    ]
    out = drive(FACTORIES[kind], requests)
    assert out.order == ["small0", "heavy", "light"]
    assert out.granted["light"] >= out.granted["heavy"]


def test_a_request_that_can_never_fit_fails_at_once(kind: str) -> None:
    async def main() -> tuple[float, str]:
        limiter = FACTORIES[kind]()
        loop = asyncio.get_running_loop()
        with pytest.raises(ValueError) as info:
            await limiter.acquire(5)
        return loop.time(), str(info.value)

    with record() as trace:
        at, message = run(main())
    assert at == 0.0  # no waiting at all
    assert "exceeds" in message or "never fit" in message
    assert [e.kind for e in trace] == ["rejected"]


@pytest.mark.parametrize("weight", [-1, math.nan, math.inf, "1", True, None])
def test_invalid_weights_raise(kind: str, weight: Any) -> None:
    async def main() -> None:
        limiter = FACTORIES[kind]()
        with pytest.raises(ValueError):
            await limiter.acquire(weight)
        with pytest.raises(ValueError):
            limiter.try_acquire(weight)

    run(main())


def test_invalid_configuration_names_the_argument(kind: str) -> None:
    for make, argument in INVALID[kind]:
        with pytest.raises(ValueError, match=argument):
            make()


def test_cancelled_while_waiting_gives_nothing_away(kind: str) -> None:
    base = schedule(10, spacing=0.1)
    with_cancel = [*base[:6], Request("quitter", at=0.55, weight=2, hold=HOLD, cancel_at=0.6), *base[6:]]
    reference = drive(FACTORIES[kind], base)
    out = drive(FACTORIES[kind], with_cancel)
    assert out.cancelled == ["quitter"]
    assert "quitter" not in out.granted
    assert out.granted == reference.granted


def test_cancelled_right_after_its_grant_gives_capacity_back(kind: str) -> None:
    base = schedule(10, spacing=0.1)
    quitter = Request("quitter", at=0.45, weight=1, hold=HOLD, cancel_on_grant=True)
    reference = drive(FACTORIES[kind], base)
    out = drive(FACTORIES[kind], [*base[:5], quitter, *base[5:]])
    assert out.cancelled == ["quitter"]
    grant_events = [e for e in out.events if e.kind == "granted" and e.request == "quitter"]
    assert len(grant_events) == 1, "the quitter was granted, then cancelled before it could run"
    cancel = [e for e in out.events if e.kind == "cancelled" and e.request == "quitter"]
    assert cancel and cancel[0].detail["after_grant"] is True
    assert out.granted == reference.granted


def test_an_exception_inside_the_slot_does_not_leak_capacity(kind: str) -> None:
    async def main() -> list[float]:
        limiter = FACTORIES[kind]()
        loop = asyncio.get_running_loop()
        for _ in range(4):
            with pytest.raises(RuntimeError):
                async with limiter.slot(1):
                    raise RuntimeError("the API call failed")
        started = []
        for _ in range(2):
            async with limiter.slot(1):
                started.append(loop.time())
        return started

    started = run(main())
    if kind == "concurrency":
        assert started == [0.0, 0.0]  # slots came back at once
    else:
        assert started[0] > 0.0  # a rate limiter spends capacity even when the call fails


def test_try_acquire_never_jumps_the_queue(kind: str) -> None:
    async def main() -> list[bool]:
        limiter = FACTORIES[kind]()
        results = [bool(limiter.try_acquire(2)), bool(limiter.try_acquire(2)), bool(limiter.try_acquire(1))]
        waiter = asyncio.create_task(limiter.acquire(1))
        await asyncio.sleep(0)
        # Somebody is waiting now, so even a request that would fit must not go first.
        results.append(bool(limiter.try_acquire(1)))
        waiter.cancel()
        return results

    assert run(main()) == [True, True, False, False]


def test_statistics_and_repr_tell_the_story(kind: str) -> None:
    async def main() -> tuple[Any, str]:
        limiter = FACTORIES[kind]()

        async def call() -> None:
            async with limiter.slot(1):
                await asyncio.sleep(HOLD)

        await asyncio.gather(*(call() for _ in range(6)))
        return limiter.statistics(), repr(limiter)

    stats, text = run(main())
    assert stats.granted == 6
    assert stats.queued == 2
    assert stats.waiting == 0
    assert stats.max_waited > 0
    assert stats.total_waited >= stats.max_waited
    assert "waiting=0" in text and "granted=6" in text


def test_events_record_each_step(kind: str) -> None:
    out = drive(FACTORIES[kind], schedule(6))
    kinds = [e.kind for e in out.events]
    assert kinds.count("granted") == 6
    assert kinds.count("queued") == 2
    granted = [e for e in out.events if e.kind == "granted"]
    assert all("waited" in e.detail for e in granted)
    assert [e.request for e in granted] == [f"r{i}" for i in range(6)]
    assert all(e.t == out.granted[str(e.request)] for e in granted)


async def four_in_a_row(limiter: Any) -> list[float]:
    """Take four units one after another (a fresh limiter's whole budget); when each was granted."""
    loop = asyncio.get_running_loop()
    times = []
    for _ in range(4):
        async with limiter.slot(1):
            times.append(loop.time())
    return times


def test_reuse_on_a_new_loop_starts_afresh(kind: str) -> None:
    limiter = FACTORIES[kind]()
    assert run(four_in_a_row(limiter)) == [0.0] * 4
    assert run(four_in_a_row(limiter)) == [0.0] * 4  # a second run() is a new loop with a new clock


def test_reuse_on_a_new_loop_after_one_that_only_stopped(kind: str) -> None:
    # The fast path asks whether its own loop is running in this thread (not `asyncio.get_running_loop()`):
    # a loop that stopped without being closed must still hand the limiter over to the next one.
    limiter = FACTORIES[kind]()
    first, second = VirtualTimeLoop(), VirtualTimeLoop()
    try:
        assert first.run_until_complete(four_in_a_row(limiter)) == [0.0] * 4
        # Not 0.5 s apart: started afresh.
        assert second.run_until_complete(four_in_a_row(limiter)) == [0.0] * 4
    finally:
        first.close()
        second.close()


def test_reuse_while_its_old_loop_still_runs_in_another_thread(kind: str) -> None:
    # The old loop is still running -- in another thread -- so "is my loop running?" alone would say yes.
    limiter = FACTORIES[kind]()
    elsewhere = asyncio.new_event_loop()
    thread = threading.Thread(target=elsewhere.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(four_in_a_row(limiter), elsewhere).result(timeout=10)
        # This thread's loop, with its own clock, from a fresh start.
        assert run(four_in_a_row(limiter)) == [0.0] * 4
    finally:
        elsewhere.call_soon_threadsafe(elsewhere.stop)
        thread.join(timeout=10)
        elsewhere.close()
