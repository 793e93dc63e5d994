from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

import pytest

from throttle_lab import (
    GCRA,
    FixedWindow,
    SlidingWindowCounter,
    SlidingWindowLog,
    Throttler,
    record,
    run,
)
from throttle_lab.lab.naive import RateThenSemaphore

from ..helpers import Request, drive, max_in_any_window


def test_tokens_bind_when_they_run_out_first() -> None:
    requests = [Request(f"r{i}", weight=100) for i in range(8)]
    out = drive(lambda: Throttler(rpm=60, tpm=600), requests)
    # 600 tokens: six requests at once; then 10 tokens/s -> one 100-token request every 10 s.
    assert list(out.granted.values()) == [0.0] * 6 + [10.0, 20.0]


def test_requests_bind_when_they_run_out_first() -> None:
    out = drive(
        lambda: Throttler(rpm=3, tpm=10_000, window=60), [Request(f"r{i}", weight=10) for i in range(5)]
    )
    assert list(out.granted.values()) == [0.0, 0.0, 0.0, 20.0, 40.0]


def test_concurrency_binds_when_calls_are_slow() -> None:
    requests = [Request(f"r{i}", weight=1, hold=5.0) for i in range(4)]
    out = drive(lambda: Throttler(max_concurrent=2, rpm=600, tpm=10_000), requests)
    assert list(out.granted.values()) == [0.0, 0.0, 5.0, 5.0]


def test_all_or_nothing_a_free_slot_is_not_taken_while_tokens_are_missing() -> None:
    async def main() -> tuple[float, float, float]:
        throttler = Throttler(max_concurrent=5, tpm=60, window=60)
        await throttler.acquire(tokens=60)  # the whole token budget
        waiter = asyncio.create_task(throttler.acquire(tokens=30))
        await asyncio.sleep(1)
        in_flight_while_waiting = throttler.in_flight
        permit = await waiter
        return in_flight_while_waiting, asyncio.get_running_loop().time(), permit.tokens

    assert run(main()) == (1, 30.0, 30)


def test_all_or_nothing_a_free_slot_is_not_taken_while_a_request_is_missing() -> None:
    # The same with the requests budget refusing: the fast path takes the slot first and must give it
    # back exactly when a rate says no.
    async def main() -> tuple[float, float, float]:
        throttler = Throttler(max_concurrent=5, rpm=60, tpm=6_000, burst_seconds=1.0)  # 1 request, 100 tokens
        await throttler.acquire(tokens=10)
        waiter = asyncio.create_task(throttler.acquire(tokens=10))
        await asyncio.sleep(0.5)
        in_flight_while_waiting = throttler.in_flight
        await waiter
        return in_flight_while_waiting, asyncio.get_running_loop().time(), throttler.in_flight

    assert run(main()) == (1, 1.0, 2)


def test_heavy_token_request_at_the_head_is_not_starved() -> None:
    requests = [
        Request("first", weight=100),
        Request("heavy", at=0.1, weight=100),
        *[Request(f"light{i}", at=0.1 + i * 0.1, weight=5) for i in range(1, 5)],
    ]
    out = drive(lambda: Throttler(tpm=6000, window=1.0), requests)  # bucket of 100, 100 tokens/s
    # The lights would fit long before the heavy one (5 tokens at 0.2 s), but they queue behind it.
    assert out.order == ["first", "heavy", "light1", "light2", "light3", "light4"]
    assert out.granted["heavy"] == 1.0
    assert [out.granted[f"light{i}"] for i in range(1, 5)] == pytest.approx([1.05, 1.1, 1.15, 1.2])


def test_reserving_at_send_time_keeps_the_server_in_its_limit_where_rate_first_does_not() -> None:
    # 10 slow calls fill the 10 slots for 90 s; 20 more arrive at once; 10 per minute allowed.
    requests = [Request(f"r{i:02}", hold=90.0 if i < 10 else 1.0) for i in range(30)]
    naive = drive(lambda: RateThenSemaphore(max_concurrent=10, max_per_minute=10), requests)
    ours = drive(lambda: Throttler(max_concurrent=10, requests=SlidingWindowLog(10, 60)), requests)
    # The article's design booked rate slots at t=60 while waiting for a seat, then sent them all at 90,
    # and booked the next ten at 120: twenty sends within one minute.
    assert max_in_any_window(list(naive.granted.values()), 60) == 20
    assert max_in_any_window(list(ours.granted.values()), 60) == 10
    assert sorted(set(ours.granted.values())) == [0.0, 90.0, 150.0]


def test_pause_holds_everyone_once() -> None:
    async def main() -> list[float]:
        throttler = Throttler(max_concurrent=10, rpm=600)
        loop = asyncio.get_running_loop()
        sent = []

        async def call(i: int) -> None:
            async with throttler.slot():
                sent.append(loop.time())
                if i == 0:
                    throttler.pause(5.0)  # "the server said 429, retry after 5 s"
                    throttler.pause(2.0)  # a shorter pause changes nothing

        await asyncio.gather(*(call(i) for i in range(4)))
        return sent

    with record() as trace:
        sent = run(main())
    assert sent == [0.0, 5.0, 5.0, 5.0]
    paused = trace.of_kind("paused")
    assert len(paused) == 1 and paused[0].detail["until"] == 5.0


def test_pause_drains_the_buckets_a_429_says_are_empty() -> None:
    # Our books say 30 of 60 are left, but the server answered 429 (another worker spent the key's
    # minute).  Held only, the 50 callers would get 35 grants at t = 5.0 (30 left + 5 earned); drained,
    # the bucket earns from the 429 on: 5 at the pause's end, then one a second -- the limit's pace.
    async def main() -> list[float]:
        throttler = Throttler(rpm=60)
        loop = asyncio.get_running_loop()
        for _ in range(30):
            await throttler.acquire()
        throttler.pause(5)
        sent: list[float] = []

        async def call() -> None:
            await throttler.acquire()
            sent.append(loop.time())

        await asyncio.gather(*(call() for _ in range(50)))
        return sent

    with record() as trace:
        sent = run(main())
    assert sent[:6] == [5.0] * 5 + [6.0]
    assert sent[-1] == 50.0
    assert trace.of_kind("paused")[0].detail == {"until": 5.0, "seconds": 5.0, "drained": True}


def test_pause_without_drain_only_holds() -> None:
    async def main() -> list[float]:
        throttler = Throttler(rpm=60)
        loop = asyncio.get_running_loop()
        for _ in range(55):
            await throttler.acquire()
        throttler.pause(5, drain=False)
        times = []
        for _ in range(11):
            await throttler.acquire()
            times.append(loop.time())
        return times

    assert run(main()) == [5.0] * 10 + [6.0]  # 5 left + 5 earned during the pause


@pytest.mark.parametrize(
    "make",
    [
        lambda: Throttler(requests=SlidingWindowLog(max_requests=4, window_seconds=4)),
        lambda: Throttler(requests=GCRA(rate=1.0, burst=4)),
        lambda: Throttler(requests=SlidingWindowCounter(max_requests=4, window_seconds=4)),
    ],
    ids=["sliding_log", "gcra", "sliding_counter"],
)
def test_pause_drains_every_kind_of_meter(make: Callable[[], Throttler]) -> None:
    # With the window / bucket untouched, four requests could go the moment the pause ends; drained, the
    # window is full at the 429 and room comes back no faster than the limit allows.
    async def main() -> list[float]:
        throttler = make()
        loop = asyncio.get_running_loop()
        throttler.pause(1.0)
        times = []
        for _ in range(4):
            await throttler.acquire()
            times.append(loop.time())
        return times

    times = run(main())
    assert times[0] >= 1.0
    assert times.count(times[0]) < 4  # no full burst at the pause's end
    assert times[-1] >= 3.0  # four units of room take (at least) three of the four seconds to come back


def test_pause_fills_a_fixed_window_until_its_end() -> None:
    # A fixed window has no pace to resume at: drained, it is full until the clock-aligned boundary.
    async def main() -> list[float]:
        throttler = Throttler(requests=FixedWindow(max_requests=4, window_seconds=4))
        loop = asyncio.get_running_loop()
        await asyncio.sleep(1)
        throttler.pause(1.0)
        times = []
        for _ in range(5):
            await throttler.acquire()
            times.append(loop.time())
        return times

    assert run(main()) == [4.0] * 4 + [8.0]


def test_reconcile_is_capped_at_the_whole_budget() -> None:
    # A bogus usage of 2**31 tokens at 1,000 TPM would put the next request 1,491 days away; no server
    # admits more than its whole budget in one request, so that is the most a reconcile charges.
    async def main() -> float:
        throttler = Throttler(tpm=1000)
        loop = asyncio.get_running_loop()
        permit = await throttler.acquire(tokens=10)
        permit.reconcile(2**31)
        assert permit.tokens == 1000
        await throttler.acquire(tokens=10)
        return loop.time()

    # Charged the whole budget (not 2**31): the bucket is empty, and 10 more tokens take 0.6 s.
    assert run(main()) == pytest.approx(0.6)


def test_set_limits_is_all_or_nothing() -> None:
    throttler = Throttler(rpm=60, tokens=SlidingWindowLog(max_requests=1000, window_seconds=60))
    with pytest.raises(ValueError, match="tpm"):
        throttler.set_limits(rpm=120, tpm=2000)  # the window log has no rate to set
    assert throttler.requests is not None and throttler.requests.rate == 1.0  # rpm untouched
    with pytest.raises(ValueError, match="tpm"):
        Throttler(rpm=60, tpm=600).set_limits(rpm=120, tpm=-1)


def test_a_meter_serves_one_throttler() -> None:
    # Two throttlers on one meter would each restart it when they bind and double-book it.
    meter = GCRA(rate=1.0, burst=2)
    first = Throttler(requests=meter)
    with pytest.raises(ValueError, match="already meters"):
        Throttler(requests=meter)
    with pytest.raises(ValueError, match="different"):
        Throttler(requests=(log := SlidingWindowLog(5, 1)), tokens=log)
    del first
    gc.collect()
    Throttler(requests=meter)  # the first one is gone: the meter is free again


def test_gcra_meter_rate_change_keeps_its_backlog() -> None:
    # AIMD drives Throttler.set_limits; with a GCRA meter, the backlog must survive the change in units.
    async def main() -> list[float]:
        throttler = Throttler(requests=GCRA(rate=10.0, burst=10))
        loop = asyncio.get_running_loop()
        for _ in range(10):
            await throttler.acquire()
        throttler.set_limits(rpm=60)  # 10/s -> 1/s
        times = []
        for _ in range(2):
            await throttler.acquire()
            times.append(round(loop.time(), 9))
        return times

    assert run(main()) == [1.0, 2.0]  # not 9 at once


def test_reconcile_gives_back_overestimates_and_charges_underestimates() -> None:
    async def main() -> list[float]:
        throttler = Throttler(tpm=600, window=60)  # 600-token bucket, 10 tokens/s
        loop = asyncio.get_running_loop()
        times = []
        permit = await throttler.acquire(tokens=600)
        permit.reconcile(300)  # the server counted only 300: 300 come back now
        await throttler.acquire(tokens=300)
        times.append(loop.time())
        permit2 = await throttler.acquire(tokens=100)  # waits 10 s for 100 tokens
        times.append(loop.time())
        permit2.reconcile(200)  # 100 more were used: debt, paid off in 10 s
        await throttler.acquire(tokens=100)
        times.append(loop.time())
        return times

    assert run(main()) == [0.0, 10.0, 30.0]


def test_reconcile_rejects_nonsense() -> None:
    async def main() -> None:
        permit = await Throttler(tpm=600).acquire(tokens=10)
        with pytest.raises(ValueError, match="actual_tokens"):
            permit.reconcile(-1)

    run(main())


def test_zero_tokens_is_not_charged_against_tpm() -> None:
    out = drive(lambda: Throttler(rpm=600, tpm=1, window=60), [Request(f"r{i}", weight=0) for i in range(5)])
    assert list(out.granted.values()) == [0.0] * 5


def test_oversize_token_request_fails_at_once() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="can never fit"):
            await Throttler(tpm=1000, window=6).acquire(tokens=101)

    run(main())


def test_permit_release_is_idempotent_and_slot_releases_on_error() -> None:
    async def main() -> float:
        throttler = Throttler(max_concurrent=1)
        permit = await throttler.acquire()
        permit.release()
        permit.release()
        with pytest.raises(RuntimeError):
            async with throttler.slot():
                raise RuntimeError("call failed")
        return throttler.in_flight

    assert run(main()) == 0


def test_set_limits_changes_the_rate() -> None:
    async def main() -> list[float]:
        throttler = Throttler(rpm=60, window=1)  # bucket of 1, one per second
        loop = asyncio.get_running_loop()
        times = []
        for i in range(4):
            if i == 2:
                throttler.set_limits(rpm=240)
            await throttler.acquire()
            times.append(loop.time())
        return times

    assert run(main()) == [0.0, 1.0, 1.25, 1.5]


def test_set_limits_needs_an_adjustable_meter() -> None:
    throttler = Throttler(requests=SlidingWindowLog(10, 60))
    with pytest.raises(ValueError, match="rpm"):
        throttler.set_limits(rpm=5)


def test_statistics_repr_and_events() -> None:
    async def main() -> tuple[object, str]:
        throttler = Throttler(max_concurrent=2, rpm=60, tpm=1000, name="openai")
        permits = [await throttler.acquire(tokens=100) for _ in range(2)]
        text = repr(throttler)
        for permit in permits:
            permit.release()
        return throttler.statistics(), text

    with record() as trace:
        stats, text = run(main())
    assert "in_flight=2/2" in text and "requests=58.0" in text and "tokens=800.0" in text
    assert stats.granted == 2 and stats.tokens_granted == 200 and stats.in_flight == 0  # type: ignore[attr-defined]
    granted = trace.of_kind("granted")
    assert [e.detail["tokens_left"] for e in granted] == [900.0, 800.0]
    assert [e.detail["in_flight"] for e in granted] == [1, 2]
    assert trace.count("released") == 2


def test_burst_seconds_is_the_new_name_of_window() -> None:
    new, old = Throttler(rpm=60, burst_seconds=2.0), Throttler(rpm=60, window=2.0)
    assert new.burst_seconds == old.burst_seconds == old.window == 2.0
    assert new.requests is not None and new.requests.max_weight == 2.0
    with pytest.raises(ValueError, match="not both"):
        Throttler(rpm=60, burst_seconds=1.0, window=2.0)
    with pytest.raises(ValueError, match="burst_seconds"):
        Throttler(rpm=60, burst_seconds=0)


def test_a_requests_budget_smaller_than_one_request_is_refused_at_once() -> None:
    # rpm 60 over 0.5 s holds half a request: before, the first acquire waited for ever.
    with pytest.raises(ValueError, match="burst_seconds"):
        Throttler(rpm=60, burst_seconds=0.5)
    Throttler(rpm=60, burst_seconds=1.0)  # exactly one request: fine
