"""Atomicity across processes and clocks: many clients in several worker processes, one limit.

Each worker process runs several concurrent callers on an event loop whose clock is set hours away from the
others' (hosts with skewed clocks).  Every booking's start comes back in Redis time, and the union of all
of them must respect the limit exactly -- in every window, not on average -- with the default margin left
between them (what the callers' side of the promise needs: see ``test_real_loop``).
"""

from __future__ import annotations

import multiprocessing
import queue
import random
from typing import Any

from throttle_lab.shared import DEFAULT_MARGIN

from .helpers import (
    SkewedLoop,
    hammer,
    late_start_violations,
    max_in_window,
    process_worker,
)

PROCESSES = 4
TASKS = 3  # concurrent callers per process
PER_PROCESS = 30
OFFSETS = [-3600.0, -1.5, 0.0, 86_400.0]  # each process's clock: an hour behind ... a day ahead


def _run_processes(kind: str, url: str, key: str, config: dict[str, Any], weights: list[list[float]]) -> Any:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    workers = [
        ctx.Process(
            target=process_worker,
            args=(barrier, results, i, kind, url, key, config, weights[i], TASKS, OFFSETS[i]),
            daemon=True,
        )
        for i in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    collected: dict[int, list[tuple[int, float, float]]] = {}
    try:
        for _ in range(PROCESSES):
            index, bookings, _elapsed = results.get(timeout=60)
            collected[index] = bookings
    except queue.Empty:  # pragma: no cover - a worker died; its exit code says more
        codes = [w.exitcode for w in workers]
        raise AssertionError(f"worker processes did not report (exit codes {codes})") from None
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():  # pragma: no cover
                worker.kill()
    return collected


def _weights(seed: int, low: int, high: int) -> list[list[float]]:
    rng = random.Random(seed)
    return [[float(rng.randint(low, high)) for _ in range(PER_PROCESS)] for _ in range(PROCESSES)]


def test_sliding_log_from_several_processes_never_exceeds_any_window(redis_url: str, key: str) -> None:
    limit, window = 40.0, 0.1  # 400 units/s
    weights = _weights(1, 1, 5)
    collected = _run_processes(
        "log", redis_url, key, {"max_requests": limit, "window_seconds": window}, weights
    )
    bookings = [(at, w) for per in collected.values() for at, w, _ in per]
    assert len(bookings) == PROCESSES * PER_PROCESS
    occupied = window + DEFAULT_MARGIN  # what each booking occupies the log for
    assert max_in_window(bookings, int(occupied * 1e6)) <= limit
    # Busy, too: while anyone queues, the head waits only if its weight (<= 5) does not fit, so every
    # span of `occupied` holds more than limit - 5.  No capacity is lost to the race between processes.
    starts = sorted(at for at, _ in bookings)
    total = sum(w for _, w in bookings)
    assert (starts[-1] - starts[0]) / 1e6 <= (total / (limit - 4) + 1) * occupied


def test_gcra_from_several_processes_conforms(redis_url: str, key: str) -> None:
    rate, burst = 200.0, 10.0
    collected = _run_processes(
        "gcra", redis_url, key, {"rate": rate, "burst": burst}, [[1.0] * PER_PROCESS] * PROCESSES
    )
    bookings = [(at, w) for per in collected.values() for at, w, _ in per]
    assert len(bookings) == PROCESSES * PER_PROCESS
    assert late_start_violations(bookings, rate, burst, round(DEFAULT_MARGIN * 1e6)) == []
    starts = sorted(at for at, _ in bookings)
    achieved = (len(starts) - burst) / ((starts[-1] - starts[0]) / 1e6)
    # The bookings run at the rate, back to back: no capacity lost to the race between processes, nor to
    # the margin (burst >= 1 + rate * margin, so it costs burst, not rate).
    assert achieved >= 0.95 * rate


def test_throttler_from_several_processes_holds_both_limits(redis_url: str, key: str) -> None:
    rpm, tpm, window = 12_000.0, 240_000.0, 0.05  # 200 requests/s burst 10, 4000 tokens/s burst 200
    weights = _weights(2, 1, 50)
    config = {"rpm": rpm, "tpm": tpm, "window": window}
    collected = _run_processes("throttler", redis_url, key, config, weights)
    bookings = [(at, w) for per in collected.values() for at, w, _ in per]
    assert len(bookings) == PROCESSES * PER_PROCESS
    margin_us = round(DEFAULT_MARGIN * 1e6)
    requests = [(at, 1.0) for at, _ in bookings]
    assert late_start_violations(requests, rpm / 60, rpm * window / 60, margin_us) == []
    assert late_start_violations(bookings, tpm / 60, tpm * window / 60, margin_us) == []


def test_skewed_client_clocks_agree_because_redis_decides(redis_url: str, key: str) -> None:
    """Three clients in threads, each on a loop whose clock reads hours apart from the others'."""
    import threading

    offsets = [-7200.0, 0.0, 3600.0]
    config = {"max_requests": 5.0, "window_seconds": 0.05}
    out: dict[float, list[tuple[int, float, float]]] = {}

    def client(offset: float) -> None:
        import asyncio

        with asyncio.Runner(loop_factory=lambda: SkewedLoop(offset)) as runner:
            out[offset] = runner.run(hammer("log", redis_url, key, config, [1.0] * 20, 2))

    threads = [threading.Thread(target=client, args=(offset,)) for offset in offsets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    bookings = [(at, w) for per in out.values() for at, w, _ in per]
    assert len(bookings) == 60
    assert max_in_window(bookings, 50_000) <= 5
    # The clients' own clocks really did disagree by hours...
    grant_clock = {offset: min(t for _, _, t in per) for offset, per in out.items()}
    assert grant_clock[3600.0] - grant_clock[-7200.0] > 10_000
    # ...and each still slept exactly as long as Redis said: its grant came when Redis had booked it.
    for offset, per in out.items():
        lateness = [(t - offset) - at / 1e6 for at, _, t in per]
        spread = max(lateness) - min(lateness)
        assert spread < 0.05, (offset, spread)
