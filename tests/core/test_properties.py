"""Property-based tests: random arrivals, weights and cancellations; the promises hold every time."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from throttle_lab import (
    GCRA,
    ConcurrencyLimiter,
    Event,
    FixedWindow,
    SlidingWindowCounter,
    SlidingWindowLog,
    Throttler,
    TokenBucket,
    Trace,
)

from ..helpers import Request, drive

LIMIT = 5.0
WINDOW = 2.0
RATE = LIMIT / WINDOW

FACTORIES: dict[str, Callable[[], Any]] = {
    "concurrency": lambda: ConcurrencyLimiter(int(LIMIT)),
    "token_bucket": lambda: TokenBucket(rate=RATE, capacity=LIMIT),
    "gcra": lambda: GCRA(rate=RATE, burst=LIMIT),
    "sliding_log": lambda: SlidingWindowLog(LIMIT, WINDOW),
    "sliding_counter": lambda: SlidingWindowCounter(LIMIT, WINDOW),
    "fixed_window": lambda: FixedWindow(LIMIT, WINDOW),
    "throttler": lambda: Throttler(max_concurrent=3, tpm=LIMIT * 60 / WINDOW, window=WINDOW),
}

requests_strategy = st.lists(
    st.tuples(
        st.floats(0, 8, allow_nan=False).map(lambda t: round(t, 3)),  # arrival
        st.integers(1, int(LIMIT)),  # weight
        st.floats(0, 3, allow_nan=False),  # hold
        st.one_of(st.none(), st.floats(0, 12, allow_nan=False)),  # cancel at
    ),
    min_size=1,
    max_size=25,
)


def build(raw: list[tuple[float, int, float, float | None]]) -> list[Request]:
    return [
        Request(f"r{i}", at=at, weight=w, hold=hold, cancel_at=cancel)
        for i, (at, w, hold, cancel) in enumerate(raw)
    ]


def effective_grants(events: list[Event], source_prefix: str = "") -> list[Event]:
    """Grants that kept their capacity (a grant cancelled before its task ran was refunded)."""
    refunded = {e.request for e in events if e.kind == "cancelled" and e.detail.get("after_grant")}
    return [e for e in events if e.kind == "granted" and e.request not in refunded]


def check_common(kind: str, requests: list[Request]) -> tuple[list[Event], Any]:
    out = drive(FACTORIES[kind], requests)
    events = out.events
    # Liveness: every request either got through or was cancelled.
    assert set(out.granted) | set(out.cancelled) == {r.name for r in requests}
    # FIFO: grants happen in the order requests entered the limiter (their first event there).
    entered = list(dict.fromkeys(e.request for e in events if e.kind in ("queued", "granted")))
    granted_order = [e.request for e in events if e.kind == "granted"]
    assert granted_order == [r for r in entered if r in set(granted_order)]
    # Conservation: nobody left waiting, every grant counted.
    stats = out.limiter.statistics()
    assert stats.waiting == 0
    assert stats.granted == len(granted_order)
    return events, out.limiter


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(requests_strategy)
def test_sliding_log_never_exceeds_its_limit_in_any_window(
    raw: list[tuple[float, int, float, float | None]],
) -> None:
    events, _ = check_common("sliding_log", build(raw))
    assert Trace(effective_grants(events)).max_in_window("granted", WINDOW, weighted=True) <= LIMIT


@SETTINGS
@given(requests_strategy)
def test_fixed_window_never_exceeds_its_limit_in_an_aligned_window(
    raw: list[tuple[float, int, float, float | None]],
) -> None:
    events, _ = check_common("fixed_window", build(raw))
    per_window: dict[int, float] = {}
    for e in effective_grants(events):
        per_window[math.floor(e.t / WINDOW)] = per_window.get(math.floor(e.t / WINDOW), 0) + e.weight
    assert all(total <= LIMIT for total in per_window.values())


@SETTINGS
@given(requests_strategy)
def test_sliding_counter_keeps_its_estimate_and_each_window_within_the_limit(
    raw: list[tuple[float, int, float, float | None]],
) -> None:
    events, _ = check_common("sliding_counter", build(raw))
    grants = effective_grants(events)
    assert all(e.detail["estimate"] <= LIMIT + 1e-9 for e in grants)
    per_window: dict[int, float] = {}
    for e in grants:
        per_window[math.floor(e.t / WINDOW)] = per_window.get(math.floor(e.t / WINDOW), 0) + e.weight
    assert all(total <= LIMIT for total in per_window.values())
    # The approximation can exceed the limit in a sliding window, but never by more than 2x.
    assert Trace(grants).max_in_window("granted", WINDOW, weighted=True) <= 2 * LIMIT


def bucket_bound_holds(grants: list[Event], capacity: float, rate: float) -> bool:
    """Over any span [a, b] a bucket grants at most capacity + rate x (b - a)."""
    grants = sorted(grants, key=lambda e: e.t)
    for i in range(len(grants)):
        total = 0.0
        for j in range(i, len(grants)):
            total += grants[j].weight
            if total > capacity + rate * (grants[j].t - grants[i].t) + 1e-9:
                return False
    return True


@SETTINGS
@given(requests_strategy)
def test_token_bucket_bound(raw: list[tuple[float, int, float, float | None]]) -> None:
    events, _ = check_common("token_bucket", build(raw))
    assert bucket_bound_holds(effective_grants(events), LIMIT, RATE)


@SETTINGS
@given(requests_strategy)
def test_gcra_bound(raw: list[tuple[float, int, float, float | None]]) -> None:
    events, _ = check_common("gcra", build(raw))
    assert bucket_bound_holds(effective_grants(events), LIMIT, RATE)


@SETTINGS
@given(requests_strategy)
def test_concurrency_never_over_the_cap_and_all_slots_come_back(
    raw: list[tuple[float, int, float, float | None]],
) -> None:
    events, limiter = check_common("concurrency", build(raw))
    assert all(e.detail["in_use"] <= LIMIT for e in events if e.kind == "granted")
    assert limiter.in_use == 0


@SETTINGS
@given(requests_strategy)
def test_throttler_keeps_tokens_and_concurrency(raw: list[tuple[float, int, float, float | None]]) -> None:
    events, throttler = check_common("throttler", build(raw))
    grants = effective_grants(events)
    assert bucket_bound_holds(grants, LIMIT, RATE)
    assert all(e.detail["in_flight"] <= 3 for e in grants)
    assert throttler.in_flight == 0


timeouts_strategy = st.lists(
    st.tuples(
        st.floats(0, 4, allow_nan=False).map(lambda t: round(t, 3)),  # arrival
        st.integers(1, int(LIMIT)),  # weight
        st.floats(0, 2, allow_nan=False),  # hold
        st.one_of(st.none(), st.floats(0.001, 3, allow_nan=False)),  # timeout, from arrival
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(FACTORIES)), timeouts_strategy)
def test_waiters_timing_out_mid_queue_leave_nothing_behind(
    kind: str, raw: list[tuple[float, int, float, float | None]]
) -> None:
    requests = [
        Request(f"r{i}", at=at, weight=w, hold=hold, timeout=timeout)
        for i, (at, w, hold, timeout) in enumerate(raw)
    ]
    out = drive(FACTORIES[kind], requests)
    assert set(out.granted) | set(out.cancelled) == {r.name for r in requests}
    entered = list(dict.fromkeys(e.request for e in out.events if e.kind in ("queued", "granted")))
    granted_order = [e.request for e in out.events if e.kind == "granted"]
    assert granted_order == [r for r in entered if r in set(granted_order)]  # FIFO among the survivors
    limiter = out.limiter
    assert limiter.statistics().waiting == 0
    assert not limiter._waiters  # no abandoned entry left in the queue
    grants = effective_grants(out.events)
    if kind in ("token_bucket", "gcra", "throttler"):
        assert bucket_bound_holds(grants, LIMIT, RATE)
    elif kind == "sliding_log":
        assert Trace(grants).max_in_window("granted", WINDOW, weighted=True) <= LIMIT
