"""The real-loop tier for the shared limiters: each promise measured where users measure it -- at the callers,
in four worker processes on plain asyncio loops, all sharing one key.

Redis books exactly (``test_processes`` checks that on Redis time).  But a caller proceeds when ``acquire``
returns, and that is never exactly at its booked start: the reply travels, the loop wakes late, and a caller
that burns CPU right after ``acquire`` makes every caller behind it in its process late.  Here each worker
process starts its callers at once; every caller stamps ``time.monotonic()`` the moment ``acquire`` returns
(the clock is system-wide on Linux, so the stamps of all four processes merge onto one timeline), then
burns 1-4 ms of CPU.  The promise is checked over the merged stamps.  Only bounds and counts are asserted.

The margin.  The default covers the limiters' own jitter: round trip and wake-up, measured on this 2-core
machine.  These callers' CPU work is their own: when a burst is due, a process's callers resume one after
another, each after the others' work, and on this loaded machine that has made callers up to ~60 ms late.
So these tests book with ``MARGIN`` -- what a user whose callers work like this should choose -- and one
test shows that without a margin the callers see a breach that the bookings never had.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from .helpers import bucket_excess, max_in_window, most_in_window_at, run_processes, stamping_worker

pytestmark = pytest.mark.realloop

PROCESSES = 4
PER_PROCESS = 16
WORK = (0.001, 0.004)  # seconds of CPU each caller burns right after acquire returns
MARGIN = 0.1  # seconds: covers this workload's lateness (see the module docstring)
ROUNDING = 1e-6  # booked starts are whole µs, rounded up: bounds over a span hold to within 1 µs of rate


def _stamps(kind: str, url: str, key: str, config: dict[str, Any], weights: list[list[float]]) -> Any:
    """Run the workers; return the merged stamps and the overdue grants the limiters counted."""
    per_process = [(kind, url, key, config, weights[i], WORK) for i in range(PROCESSES)]
    reports = run_processes(stamping_worker, per_process)
    stamps = [stamp for _, per, _ in reports for stamp in per]
    overdue = sum(count for _, _, count in reports)
    return stamps, overdue


def _unit_weights() -> list[list[float]]:
    return [[1.0] * PER_PROCESS for _ in range(PROCESSES)]


def _diagnosis(stamps: list[tuple[float, float, float, int]], overdue: int) -> str:
    late = max(lateness for _, _, lateness, _ in stamps)
    return f"{overdue} grants overdue (latest {late * 1e3:.1f} ms after its booked start; margin {MARGIN}s)"


def test_sliding_log_never_more_than_the_limit_in_any_window_at_the_callers(redis_url: str, key: str) -> None:
    limit, window = 8.0, 0.2
    config = {"max_requests": limit, "window_seconds": window, "margin": MARGIN}
    stamps, overdue = _stamps("log", redis_url, key, config, _unit_weights())
    assert len(stamps) == PROCESSES * PER_PROCESS  # every request completed
    at_callers = most_in_window_at([(t, w) for t, w, _, _ in stamps], window)
    assert at_callers <= limit, _diagnosis(stamps, overdue)


def test_sliding_log_without_a_margin_is_exact_in_redis_but_not_at_the_callers(
    redis_url: str, key: str
) -> None:
    """The bug the margin fixes, kept as a control: if this stopped failing to hold, the measurement above
    could no longer see a breach."""
    limit, window = 8.0, 0.2
    config = {"max_requests": limit, "window_seconds": window, "margin": 0}
    stamps, _ = _stamps("log", redis_url, key, config, _unit_weights())
    assert len(stamps) == PROCESSES * PER_PROCESS
    assert max_in_window([(at, w) for _, w, _, at in stamps], int(window * 1e6)) <= limit  # Redis: exact
    # A window of the callers' own clock holds callers of two windows of bookings: some of the first
    # proceeded late, some of the second on time.
    assert most_in_window_at([(t, w) for t, w, _, _ in stamps], window) > limit


def test_gcra_keeps_the_bucket_bound_at_the_callers(redis_url: str, key: str) -> None:
    rate, burst = 50.0, 8.0  # burst >= 1 + rate * MARGIN: the margin costs burst, not rate
    config = {"rate": rate, "burst": burst, "margin": MARGIN}
    stamps, overdue = _stamps("gcra", redis_url, key, config, _unit_weights())
    assert len(stamps) == PROCESSES * PER_PROCESS
    excess = bucket_excess([(t, w) for t, w, _, _ in stamps], rate, burst)
    assert excess <= ROUNDING * rate, f"{excess:.3f} over burst + rate*T; " + _diagnosis(stamps, overdue)


def test_throttler_keeps_both_budgets_at_the_callers(redis_url: str, key: str) -> None:
    # 50 requests/s with a capacity of 8; 1,000 tokens/s with a capacity of 160; requests of 1-40 tokens,
    # so each budget binds in turn.
    rpm, tpm, window = 3000.0, 60_000.0, 0.16
    rng = random.Random(5)
    weights = [[float(rng.randint(1, 40)) for _ in range(PER_PROCESS)] for _ in range(PROCESSES)]
    config = {"rpm": rpm, "tpm": tpm, "window": window, "margin": MARGIN}
    stamps, overdue = _stamps("throttler", redis_url, key, config, weights)
    assert len(stamps) == PROCESSES * PER_PROCESS
    requests = bucket_excess([(t, 1.0) for t, _, _, _ in stamps], rpm / 60, rpm * window / 60)
    tokens = bucket_excess([(t, w) for t, w, _, _ in stamps], tpm / 60, tpm * window / 60)
    assert requests <= ROUNDING * rpm / 60, f"requests {requests:.3f} over; " + _diagnosis(stamps, overdue)
    assert tokens <= ROUNDING * tpm / 60, f"tokens {tokens:.3f} over; " + _diagnosis(stamps, overdue)
