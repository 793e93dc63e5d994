"""Shared-limit benchmarks: K worker processes × M requests against one limit in Redis, on this machine.

Run from the repository root (needs ``redis-server`` on PATH and the ``redis`` extra)::

    python benchmarks/bench_shared.py            # the full run (about 20 s)
    python benchmarks/bench_shared.py --quick    # smaller, a few seconds

It starts its own ``redis-server`` on a free 127.0.0.1 port and prints one markdown table; progress goes to
stderr.  Nothing is asserted: this is a report, not a test.

For each configuration, K processes (released together by a barrier) each start M requests at once, all
acquiring from one limit.  Measured:

* **achieved (booked)**: the aggregate rate of the starts Redis booked (its own clock), steady state:
  ``(n - burst) / (last start - first start)``, against the limit.  Target >= 99 %.
* **overrun (booked)**: bookings earlier than the limit allows (GCRA conformance; for the sliding log, the
  excess in the busiest window).  Target 0.
* **achieved (woke)** and **max in 100 ms (woke)**: the same, measured on when callers actually woke up
  (every process reads the same monotonic clock) -- what a server would see, jitter included.
* **round trip**: mean time of one script call under this load (queueing for a pooled connection included),
  and the **uncontended** cost of one ``await acquire()`` that does not wait (one process, one caller,
  sequential; best of 3).

Side by side: the in-process :class:`throttle_lab.GCRA` in one process (the same n requests), and K
processes each with its *own* in-process GCRA -- the mistake shared limits fix.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import math
import multiprocessing
import os
import platform
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from throttle_lab import GCRA
from throttle_lab.shared.server import INSTALL_HINT, RedisServer, redis_server_path, redis_server_version


@dataclass(frozen=True)
class Config:
    kind: str  # "shared-gcra", "shared-log", "local-gcra"
    processes: int
    per_process: int
    rate: float  # per second
    burst: float


# ---------------------------------------------------------------------------------------------- one process
async def _hammer(
    barrier: Any, kind: str, url: str, key: str, rate: float, burst: float, n: int
) -> dict[str, Any]:
    from throttle_lab.shared import SharedGCRA, SharedSlidingWindowLog

    limiter: Any
    if kind == "shared-gcra":
        limiter = SharedGCRA(url, key, rate=rate, burst=burst)
    elif kind == "shared-log":  # `burst` per `burst / rate` seconds: the same average rate
        limiter = SharedSlidingWindowLog(url, key, max_requests=burst, window_seconds=burst / rate)
    else:
        limiter = GCRA(rate=rate, burst=burst)
    if kind != "local-gcra":
        # Warm up before the start: fill the connection pool and load the script.
        await asyncio.gather(*(limiter.peek() for _ in range(60)))
    await asyncio.to_thread(barrier.wait, 60)  # every process starts at the same moment
    loop = asyncio.get_running_loop()
    booked: list[int] = []
    woke: list[float] = []
    late: list[float] = []

    async def request() -> None:
        reservation = await limiter.acquire()
        woke.append(loop.time())
        if kind != "local-gcra":
            booked.append(reservation.at_us)
            late.append(reservation.waited - (reservation.at_us - reservation.booked_at_us) / 1e6)

    await asyncio.gather(*(request() for _ in range(n)))  # all M at once: each books its slot, then sleeps
    round_trip = limiter.statistics().round_trip_mean if kind != "local-gcra" else math.nan
    if kind != "local-gcra":
        await limiter.aclose()
    return {"booked": booked, "woke": woke, "late": late, "round_trip": round_trip}


def _process(barrier: Any, results: Any, kind: str, url: str, key: str, config: Config) -> None:
    outcome = asyncio.run(_hammer(barrier, kind, url, key, config.rate, config.burst, config.per_process))
    results.put(outcome)


def run_config(config: Config, url: str) -> dict[str, Any]:
    """Run one configuration: K processes released together; merge what they report."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(config.processes)
    results = ctx.Queue()
    key = f"bench-{uuid.uuid4().hex[:8]}"
    procs = [
        ctx.Process(target=_process, args=(barrier, results, config.kind, url, key, config))
        for _ in range(config.processes)
    ]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join()
    merged: dict[str, Any] = {"booked": [], "woke": [], "late": [], "round_trip": []}
    for outcome in outcomes:
        for name in ("booked", "woke", "late"):
            merged[name] += outcome[name]
        merged["round_trip"].append(outcome["round_trip"])
    return merged


# ---------------------------------------------------------------------------------------------- measures
def steady_rate(times: list[float], burst: float) -> float:
    """(n - burst) / span: the rate after the first burst, which went at once."""
    times = sorted(times)
    span = times[-1] - times[0]
    return (len(times) - burst) / span if span > 0 else math.inf


def gcra_overrun(starts_us: list[int], rate: float, burst: float) -> int:
    """How many starts came earlier than a GCRA of ``rate``/s and ``burst`` allows (1 µs tolerance)."""
    interval = 1e6 / rate
    tat = -math.inf
    early = 0
    for at in sorted(starts_us):
        if tat + (1 - burst) * interval > at + 1:
            early += 1
        tat = max(tat, at) + interval
    return early


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max((bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def _uncontended(kind: str, url: str, iterations: int) -> float:
    """Mean seconds per ``await acquire()`` that never waits (a limit far above what we ask)."""
    from throttle_lab.shared import SharedGCRA

    limiter: Any = (
        GCRA(rate=1e9, burst=1e9)
        if kind == "local-gcra"
        else SharedGCRA(url, f"bench-{uuid.uuid4().hex[:8]}", rate=1e9, burst=1e9)
    )
    await limiter.acquire()  # connect and load the script outside the timing
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(iterations):
            await limiter.acquire()
        best = min(best, (time.perf_counter() - started) / iterations)
    if kind != "local-gcra":
        await limiter.aclose()
    return best


# ---------------------------------------------------------------------------------------------- report
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a few seconds")
    args = parser.parse_args(argv)
    if redis_server_path() is None:
        print(INSTALL_HINT)
        return 1
    command = "python benchmarks/bench_shared.py" + (" --quick" if args.quick else "")
    per_process = 250 if args.quick else 1000
    rate = 1000.0 if args.quick else 2000.0
    burst = 10.0
    configs = [
        Config("shared-gcra", 1, per_process, rate, burst),
        Config("shared-gcra", 4, per_process, rate, burst),
        Config("shared-gcra", 8, per_process // 2, rate, burst),
        Config("shared-log", 4, per_process, rate, burst),
        Config("local-gcra", 1, 4 * per_process, rate, burst),
        Config("local-gcra", 4, per_process, rate, burst),
    ]
    started = time.perf_counter()
    rows = []
    with RedisServer() as server:
        iterations = 500 if args.quick else 2000
        print("uncontended acquire cost", file=sys.stderr, flush=True)
        cost = {
            "shared": asyncio.run(_uncontended("shared-gcra", server.url, iterations)),
            "local": asyncio.run(_uncontended("local-gcra", server.url, iterations * 10)),
        }
        for config in configs:
            label = {
                "shared-gcra": "SharedGCRA (Redis)",
                "shared-log": "SharedSlidingWindowLog (Redis)",
                "local-gcra": "GCRA in-process" + (", one per process" if config.processes > 1 else ""),
            }[config.kind]
            print(f"{label}: {config.processes} x {config.per_process}", file=sys.stderr, flush=True)
            out = run_config(config, server.url)
            n = len(out["woke"])
            # The limit all processes share; with a limiter each, each process has the whole limit.
            woke_rate = steady_rate(out["woke"], burst)
            allowed_100ms = burst + rate * 0.1
            if config.kind == "local-gcra":
                booked_rate, overrun = "-", "-"
                late = "-"
            else:
                booked_rate = f"{steady_rate([b / 1e6 for b in out['booked']], burst) / rate:.2%}"
                if config.kind == "shared-gcra":
                    overrun = str(gcra_overrun(out["booked"], rate, burst))
                else:
                    starts = sorted(out["booked"])
                    window_us = round(burst / rate * 1e6)
                    busiest = max(bisect.bisect_left(starts, s + window_us) - i for i, s in enumerate(starts))
                    overrun = str(max(0, busiest - int(burst)))
                late = f"{percentile(out['late'], 50) * 1e3:.2f} / {percentile(out['late'], 99) * 1e3:.2f}"
            round_trip = [r for r in out["round_trip"] if not math.isnan(r)]
            rows.append(
                [
                    label,
                    f"{config.processes} × {config.per_process}",
                    f"{rate:,.0f}/s, burst {burst:g}",
                    booked_rate,
                    overrun,
                    f"{woke_rate / rate:.1%}",
                    f"{max_in_window(out['woke'], 0.1)} (allowed {allowed_100ms:g})",
                    late,
                    f"{sum(round_trip) / len(round_trip) * 1e6:,.0f}" if round_trip else "-",
                    f"{cost['local' if config.kind == 'local-gcra' else 'shared'] * 1e6:,.1f}",
                    str(n),
                ]
            )
    total = time.perf_counter() - started
    version = ".".join(str(x) for x in redis_server_version() or ())
    import redis

    print("# throttle_lab shared-limit benchmarks")
    print()
    print(f"- command: `{command}`")
    print(
        f"- Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs; "
        f"redis-server {version}, redis-py {redis.__version__}"
    )
    print(f"- total wall time {total:.1f} s; progress went to stderr")
    print()
    headers = [
        "limiter",
        "processes × requests",
        "limit",
        "achieved (booked)",
        "overrun (booked)",
        "achieved (woke)",
        "max in 100 ms (woke)",
        "wake lag p50 / p99 ms",
        "round trip µs (loaded)",
        "uncontended acquire µs",
        "grants",
    ]
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    print(
        "Targets: achieved (booked) >= 99 % with overrun 0.  'achieved' is steady state, after the first "
        "burst.  'wake lag' is how long after its booked start a caller actually ran (the reply's trip back "
        "plus timer lateness).  The last row is K workers with a limiter each: K times the limit."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
