"""Tests for throttle_lab.client.adaptive: AIMD and the SRE client-side throttle, with explicit times."""

from __future__ import annotations

import asyncio
import math
import random
from typing import Any

import pytest

from throttle_lab.client.adaptive import (
    AIMD,
    AIMDStatistics,
    ClientSideThrottle,
    ClientSideThrottleStatistics,
)

# ----------------------------------------------------------------------------------------------------------
# AIMD
# ----------------------------------------------------------------------------------------------------------


def make_aimd(**overrides: Any) -> AIMD:
    options: dict[str, Any] = {
        "initial": 10.0,
        "floor": 1.0,
        "ceiling": 20.0,
        "increase": 1.0,
        "decrease": 0.5,
        "cooldown": 0.0,
    }
    options.update(overrides)
    initial = options.pop("initial")
    return AIMD(initial, **options)


def test_aimd_sawtooth() -> None:
    aimd = make_aimd(initial=4.0, ceiling=100.0)
    rates = []
    t = 0.0
    for _ in range(3):
        for _ in range(4):
            t += 1.0
            rates.append(aimd.on_success(now=t))
        t += 1.0
        rates.append(aimd.on_rate_limited(now=t))
    assert rates == [5.0, 6.0, 7.0, 8.0, 4.0, 5.0, 6.0, 7.0, 8.0, 4.0, 5.0, 6.0, 7.0, 8.0, 4.0]
    assert aimd.rate == 4.0


def test_aimd_converges_below_a_hidden_limit() -> None:
    # A server that refuses whenever the rate is above 50: the controller saws between 25 and 51.
    aimd = make_aimd(initial=1.0, floor=1.0, ceiling=1000.0, increase=1.0)
    seen = []
    for step in range(2000):
        if aimd.rate > 50.0:
            aimd.on_rate_limited(now=float(step))
        else:
            aimd.on_success(now=float(step))
        seen.append(aimd.rate)
    tail = seen[500:]
    assert max(tail) <= 51.0
    assert min(tail) >= 25.0
    assert sum(tail) / len(tail) == pytest.approx(38.0, abs=1.5)  # about 3/4 of the limit


def test_aimd_ceiling() -> None:
    aimd = make_aimd(initial=19.5, ceiling=20.0)
    assert aimd.on_success(now=0.0) == 20.0
    assert aimd.on_success(now=1.0) == 20.0
    assert aimd.statistics().increases == 1
    assert aimd.statistics().successes == 2


def test_aimd_floor() -> None:
    aimd = make_aimd(initial=3.0, floor=1.0)
    assert [aimd.on_rate_limited(now=float(t)) for t in range(4)] == [1.5, 1.0, 1.0, 1.0]
    stats = aimd.statistics()
    assert (stats.rate_limited, stats.cuts, stats.ignored) == (4, 4, 0)


def test_aimd_initial_may_equal_floor_and_ceiling() -> None:
    aimd = make_aimd(initial=5.0, floor=5.0, ceiling=5.0)
    assert aimd.on_success(now=0.0) == 5.0
    assert aimd.on_rate_limited(now=1.0) == 5.0


def test_aimd_cooldown_makes_a_burst_one_signal() -> None:
    aimd = make_aimd(initial=16.0, cooldown=2.0)
    # Eight in-flight requests come back 429 within half a second: one cut, not eight.
    rates = [aimd.on_rate_limited(now=10.0 + i / 16) for i in range(8)]
    assert rates == [8.0] * 8
    stats = aimd.statistics()
    assert (stats.rate_limited, stats.cuts, stats.ignored, stats.last_cut_at) == (8, 1, 7, 10.0)
    assert aimd.on_rate_limited(now=11.999) == 8.0  # still cooling down
    assert aimd.on_rate_limited(now=12.0) == 4.0  # exactly at the deadline: a new signal
    assert aimd.statistics().last_cut_at == 12.0


def test_aimd_cooldown_uses_a_deadline_not_a_difference() -> None:
    # 0.1 + 0.2 > 0.3 in floats; the cut is allowed once the computed deadline is reached.
    aimd = make_aimd(initial=16.0, cooldown=0.2)
    aimd.on_rate_limited(now=0.1)
    assert aimd.on_rate_limited(now=0.1 + 0.2) == 4.0


def test_aimd_successes_still_count_during_cooldown() -> None:
    aimd = make_aimd(initial=16.0, cooldown=5.0)
    aimd.on_rate_limited(now=0.0)
    assert aimd.on_success(now=1.0) == 9.0


def test_aimd_zero_cooldown_cuts_every_time() -> None:
    aimd = make_aimd(initial=16.0)
    assert [aimd.on_rate_limited(now=1.0) for _ in range(3)] == [8.0, 4.0, 2.0]


def test_aimd_on_change_only_on_change() -> None:
    calls: list[float] = []
    aimd = make_aimd(initial=19.0, ceiling=20.0, floor=1.0, cooldown=1.0, on_change=calls.append)
    aimd.on_success(now=0.0)  # 20
    aimd.on_success(now=0.1)  # at ceiling: no change
    aimd.on_rate_limited(now=0.2)  # 10
    aimd.on_rate_limited(now=0.3)  # cooling down: no change
    assert calls == [20.0, 10.0]


def test_aimd_on_change_can_be_wired_later() -> None:
    aimd = make_aimd()
    calls: list[float] = []
    aimd.on_change = calls.append
    aimd.on_success(now=0.0)
    assert calls == [11.0]


def test_aimd_history() -> None:
    aimd = make_aimd(initial=10.0, ceiling=11.0)
    assert aimd.history == []  # stamped at the first event, on the clock the events use
    aimd.on_success(now=5.0)
    aimd.on_success(now=6.0)  # no change, no entry
    aimd.on_rate_limited(now=7.0)
    assert aimd.history == [(5.0, 10.0), (5.0, 11.0), (7.0, 5.5)]
    aimd.history.clear()  # a copy: the controller's own history is untouched
    assert len(aimd.history) == 3


def test_aimd_history_starts_even_without_a_change() -> None:
    aimd = make_aimd(initial=20.0, ceiling=20.0)
    aimd.on_success(now=3.0)
    assert aimd.history == [(3.0, 20.0)]


def test_aimd_statistics_and_repr() -> None:
    aimd = make_aimd()
    aimd.on_success(now=0.0)
    aimd.on_rate_limited(now=1.0)
    stats = aimd.statistics()
    assert stats == AIMDStatistics(
        rate=5.5,
        floor=1.0,
        ceiling=20.0,
        successes=1,
        increases=1,
        rate_limited=1,
        cuts=1,
        ignored=0,
        last_cut_at=1.0,
    )
    with pytest.raises(AttributeError):
        stats.rate = 1.0  # type: ignore[misc]
    assert repr(aimd) == ("<AIMD rate=5.5 floor=1 ceiling=20 +1/success ×0.5/429 successes=1 429s=1 cuts=1>")
    assert (aimd.floor, aimd.ceiling) == (1.0, 20.0)


def test_aimd_uses_the_running_loop_clock() -> None:
    async def main() -> tuple[float, float, list[tuple[float, float]]]:
        loop = asyncio.get_running_loop()
        aimd = make_aimd(cooldown=10.0)
        start = loop.time()
        aimd.on_success()
        aimd.on_rate_limited()
        end = loop.time()
        return start, end, aimd.history

    start, end, history = asyncio.run(main())
    assert len(history) == 3
    assert all(start <= t <= end for t, _ in history)


def test_aimd_outside_a_loop_needs_now() -> None:
    aimd = make_aimd()
    with pytest.raises(RuntimeError, match="now="):
        aimd.on_success()
    with pytest.raises(RuntimeError, match="now="):
        aimd.on_rate_limited()


BAD_AIMD: list[tuple[dict[str, Any], str]] = [
    ({"floor": 0.0}, "floor"),
    ({"floor": -1.0}, "floor"),
    ({"floor": math.nan}, "floor"),
    ({"ceiling": math.inf}, "ceiling"),
    ({"ceiling": 0.5}, "ceiling"),  # below floor
    ({"initial": 0.5}, "initial"),  # below floor
    ({"initial": 21.0}, "initial"),  # above ceiling
    ({"initial": math.nan}, "initial"),
    ({"increase": 0.0}, "increase"),
    ({"increase": -1.0}, "increase"),
    ({"increase": math.inf}, "increase"),
    ({"decrease": 1.0}, "decrease"),
    ({"decrease": 0.0}, "decrease"),
    ({"decrease": 1.5}, "decrease"),
    ({"decrease": math.nan}, "decrease"),
    ({"cooldown": -0.1}, "cooldown"),
    ({"cooldown": math.inf}, "cooldown"),
]


@pytest.mark.parametrize(("overrides", "argument"), BAD_AIMD, ids=[str(o) for o, _ in BAD_AIMD])
def test_aimd_invalid_configuration(overrides: dict[str, Any], argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        make_aimd(**overrides)


@pytest.mark.parametrize("now", [math.nan, math.inf])
def test_aimd_invalid_now(now: float) -> None:
    with pytest.raises(ValueError, match="now"):
        make_aimd().on_success(now=now)


# ----------------------------------------------------------------------------------------------------------
# ClientSideThrottle
# ----------------------------------------------------------------------------------------------------------


def feed(throttle: ClientSideThrottle, accepted: int, rejected: int, now: float) -> None:
    for _ in range(accepted):
        throttle.record(True, now=now)
    for _ in range(rejected):
        throttle.record(False, now=now)


@pytest.mark.parametrize(
    ("k", "accepted", "rejected", "expected"),
    [
        (2.0, 0, 0, 0.0),  # nothing seen yet
        (2.0, 10, 0, 0.0),  # all accepted
        (2.0, 5, 5, 0.0),  # 10 requests = 2·5 accepts: exactly at the cut-off
        (2.0, 2, 8, 6 / 11),  # (10 − 4) / 11
        (2.0, 0, 9, 9 / 10),  # nothing accepted: n / (n + 1)
        (1.0, 9, 1, 1 / 11),  # k = 1: every rejection shows
        (1.1, 10, 10, (20 - 11) / 21),
        (3.0, 1, 5, (6 - 3) / 7),
    ],
)
def test_probability_formula(k: float, accepted: int, rejected: int, expected: float) -> None:
    throttle = ClientSideThrottle(k=k)
    feed(throttle, accepted, rejected, now=0.0)
    assert throttle.rejection_probability(now=0.0) == pytest.approx(expected, abs=1e-15)


def test_window_expiry_is_bucketed() -> None:
    throttle = ClientSideThrottle(k=2.0, window=120.0, resolution=1.0)
    feed(throttle, 0, 9, now=0.25)  # bucket [0, 1): leaves once 1 + 120 <= now
    assert throttle.rejection_probability(now=120.5) == pytest.approx(0.9)
    assert throttle.rejection_probability(now=120.999) == pytest.approx(0.9)
    assert throttle.rejection_probability(now=121.0) == 0.0
    assert throttle.statistics().requests == 0
    assert throttle.statistics().total_requests == 9


def test_window_keeps_recent_and_drops_old() -> None:
    throttle = ClientSideThrottle(k=2.0, window=10.0)
    feed(throttle, 0, 4, now=0.0)  # old failures
    feed(throttle, 3, 0, now=8.0)  # recent successes
    assert throttle.rejection_probability(now=9.0) == pytest.approx(1 / 8)  # (7 − 6) / 8
    stats = throttle.statistics(now=11.0)  # the failures have left the window
    assert (stats.requests, stats.accepts, stats.rejection_probability) == (3, 3, 0.0)


def test_recovery_after_the_window() -> None:
    throttle = ClientSideThrottle(k=2.0, window=120.0)
    feed(throttle, 0, 100, now=0.0)
    assert throttle.rejection_probability(now=1.0) > 0.99
    assert throttle.rejection_probability(now=121.0) == 0.0


def test_local_rejections_count_as_requests() -> None:
    throttle = ClientSideThrottle(k=2.0, seed=0)
    feed(throttle, 0, 20, now=0.0)
    before = throttle.statistics(now=0.0)
    rejected = sum(throttle.should_reject(now=0.0) for _ in range(50))
    after = throttle.statistics(now=0.0)
    assert rejected > 40  # p starts at 20/21
    assert after.requests == before.requests + rejected  # refusals counted, passes not (yet)
    assert after.rejected_locally == rejected
    assert after.accepts == 0


def test_healthy_client_is_never_rejected_and_draws_nothing() -> None:
    throttle = ClientSideThrottle(seed=0)
    for t in range(1000):
        assert not throttle.should_reject(now=float(t))
        throttle.record(True, now=float(t))
    # No random numbers were consumed while healthy: the first draw is the seed's first draw.
    feed(throttle, 0, 10_000, now=1000.0)
    expected_first = random.Random(0).random() < throttle.rejection_probability(now=1000.0)
    assert throttle.should_reject(now=1000.0) is expected_first


def test_seeded_determinism() -> None:
    def decisions(seed: int) -> list[bool]:
        throttle = ClientSideThrottle(k=1.5, window=60.0, seed=seed)
        result = []
        for step in range(600):
            t = step * 0.5
            if throttle.should_reject(now=t):
                result.append(True)
                continue
            result.append(False)
            throttle.record(step % 4 == 0, now=t)  # the backend accepts one in four
        return result

    assert decisions(7) == decisions(7)
    assert decisions(7) != decisions(8)


def test_steady_state_sends_about_k_times_capacity() -> None:
    # Demand 100 requests/s against a backend that can accept 10/s.  Without the throttle it would see
    # 100/s and refuse 90 % of them; with k = 2 it sees about 2 × 10 = 20/s, and the client keeps the rest.
    throttle = ClientSideThrottle(k=2.0, window=60.0, seed=1)
    accepted_this_second: dict[int, int] = {}  # the backend: at most 10 accepts per whole second
    sent = 0
    for step in range(30_000):  # 300 s of 10 ms ticks, one request wanted per tick
        t = step * 0.01
        if throttle.should_reject(now=t):
            continue
        sent += 1
        second = step // 100
        accepted = accepted_this_second.get(second, 0) < 10
        if accepted:
            accepted_this_second[second] = accepted_this_second.get(second, 0) + 1
        throttle.record(accepted, now=t)
    stats = throttle.statistics()
    assert stats.total_accepts == pytest.approx(10 * 300, rel=0.02)  # the backend stays fully used
    assert sent / 300 == pytest.approx(20, rel=0.1)  # ~k × capacity reaches it
    assert stats.rejection_probability == pytest.approx(0.8, abs=0.03)


def test_bucket_count_stays_bounded() -> None:
    throttle = ClientSideThrottle(k=2.0, window=10.0, resolution=0.5)
    for step in range(100_000):
        throttle.record(step % 3 == 0, now=step * 0.01)
    assert len(throttle._buckets) <= 10.0 / 0.5 + 1
    stats = throttle.statistics()
    assert stats.requests == sum(b.requests for b in throttle._buckets)
    assert stats.accepts == sum(b.accepts for b in throttle._buckets)


def test_out_of_order_times_join_the_newest_bucket() -> None:
    throttle = ClientSideThrottle(window=10.0)
    throttle.record(True, now=5.0)
    throttle.record(False, now=2.0)  # earlier than the newest bucket: counted there
    assert len(throttle._buckets) == 1
    assert throttle.statistics().requests == 2


def test_throttle_statistics_and_repr() -> None:
    throttle = ClientSideThrottle(k=2.0, window=120.0)
    assert repr(throttle) == (
        "<ClientSideThrottle k=2 window=120s requests=0 accepts=0 p_reject=0.000 rejected_locally=0>"
    )
    feed(throttle, 2, 8, now=3.0)
    stats = throttle.statistics()
    assert stats == ClientSideThrottleStatistics(
        requests=10,
        accepts=2,
        rejection_probability=pytest.approx(6 / 11),  # type: ignore[arg-type]
        k=2.0,
        window=120.0,
        total_requests=10,
        total_accepts=2,
        rejected_locally=0,
    )
    assert repr(throttle) == (
        "<ClientSideThrottle k=2 window=120s requests=10 accepts=2 p_reject=0.545 rejected_locally=0 at t=3>"
    )
    assert (throttle.k, throttle.window) == (2.0, 120.0)


def test_statistics_without_now_do_not_read_a_clock() -> None:
    throttle = ClientSideThrottle()
    feed(throttle, 1, 1, now=1.0)

    async def inside_another_loop() -> int:
        # A different loop (like a notebook kernel's) must not expire the window.
        return throttle.statistics().requests

    assert asyncio.run(inside_another_loop()) == 2


def test_throttle_uses_the_running_loop_clock() -> None:
    async def main() -> float:
        throttle = ClientSideThrottle(k=2.0, window=120.0)
        for _ in range(9):
            throttle.record(False)
        return throttle.rejection_probability()

    assert asyncio.run(main()) == pytest.approx(0.9)


def test_throttle_outside_a_loop_needs_now() -> None:
    throttle = ClientSideThrottle()
    with pytest.raises(RuntimeError, match="now="):
        throttle.should_reject()
    with pytest.raises(RuntimeError, match="now="):
        throttle.record(True)


BAD_THROTTLE: list[tuple[dict[str, Any], str]] = [
    ({"k": 0.5}, "k"),
    ({"k": 0.0}, "k"),
    ({"k": -2.0}, "k"),
    ({"k": math.nan}, "k"),
    ({"k": math.inf}, "k"),
    ({"window": 0.0}, "window"),
    ({"window": -1.0}, "window"),
    ({"window": math.inf}, "window"),
    ({"resolution": 0.0}, "resolution"),
    ({"resolution": 200.0}, "resolution"),  # coarser than the window
]


@pytest.mark.parametrize(("kwargs", "argument"), BAD_THROTTLE, ids=[str(k) for k, _ in BAD_THROTTLE])
def test_throttle_invalid_configuration(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        ClientSideThrottle(**kwargs)


def test_throttle_invalid_now() -> None:
    with pytest.raises(ValueError, match="now"):
        ClientSideThrottle().record(True, now=math.nan)
