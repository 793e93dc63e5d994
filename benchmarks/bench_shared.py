"""Shared-limit benchmarks: K worker processes × M requests against one limit in Redis, on this machine.

Run from the repository root (needs ``redis-server`` on PATH and the ``redis`` extra)::

    python benchmarks/bench_shared.py            # the full run (about 40 s)
    python benchmarks/bench_shared.py --quick    # smaller (about 20 s: most of it starting processes)

It starts its own ``redis-server`` on a free 127.0.0.1 port and prints one markdown table; progress goes to
stderr.  Nothing is asserted: this is a report, not a test.

For each configuration, K processes (released together by a barrier) each start M requests at once, all
acquiring from one limit.  Each caller stamps its loop's clock the moment ``acquire`` returns -- when it
really proceeds; every process reads the same monotonic clock, so the stamps merge onto one timeline.

* **booked**: the starts Redis booked, on its own clock.  *Utilisation* is the steady-state rate against
  the limit: for a GCRA the rate over the later half of the starts (well after the first burst); for a
  sliding log ``window`` over the mean gap between a booking and the one ``limit`` places before it (a
  full log turns over once per window).  *Overrun*: bookings earlier than the plain limit allows (GCRA
  conformance; for the log, the excess in the busiest window).  Target 0.
* **at the callers**: the same utilisation on the stamps, and the promise itself -- for a GCRA the most
  ``count - rate × T`` over any span ``T`` (the bucket bound allows ``burst``), for the log the most
  callers in any window (allowed: the limit).
* **overdue** and **lateness**: grants whose caller proceeded later than the margin after its booked start,
  and how late callers were (p50 / p99 / max, as the limiters measure it: an upper bound).  With
  ``margin 0`` this is the jitter the default margin must cover: round trip plus wake-up lateness.
* **round trip**: mean time of one script call under this load (queueing for a pooled connection
  included), and the **uncontended** cost of one ``await acquire()`` that does not wait (one process, one
  caller, sequential; best of 3).

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
    burst: float  # GCRA: the burst; log: the limit per window
    window: float = 0.0  # log only, seconds
    margin: float | None = None  # None: the limiter's default

    @property
    def label(self) -> str:
        if self.kind == "local-gcra":
            return "GCRA in-process" + (", one per process" if self.processes > 1 else "")
        name = {"shared-gcra": "SharedGCRA", "shared-log": "SharedSlidingWindowLog"}[self.kind]
        return f"{name} (Redis)"

    @property
    def limit(self) -> str:
        if self.kind == "shared-log":
            return f"{self.burst:,.0f} per {self.window:g} s"
        return f"{self.rate:,.0f}/s, burst {self.burst:g}"


# ---------------------------------------------------------------------------------------------- one process
async def _hammer(barrier: Any, url: str, key: str, config: Config) -> dict[str, Any]:
    from throttle_lab.shared import SharedGCRA, SharedSlidingWindowLog

    margin = {} if config.margin is None else {"margin": config.margin}
    limiter: Any
    if config.kind == "shared-gcra":
        limiter = SharedGCRA(url, key, rate=config.rate, burst=config.burst, **margin)
    elif config.kind == "shared-log":
        limiter = SharedSlidingWindowLog(
            url, key, max_requests=config.burst, window_seconds=config.window, **margin
        )
    else:
        limiter = GCRA(rate=config.rate, burst=config.burst)
    shared = config.kind != "local-gcra"
    if shared:
        # Warm up before the start: fill the connection pool and load the script.
        await asyncio.gather(*(limiter.peek() for _ in range(16)))
    await asyncio.to_thread(barrier.wait, 60)  # every process starts at the same moment
    loop = asyncio.get_running_loop()
    booked: list[int] = []
    woke: list[float] = []
    late: list[float] = []

    async def request() -> None:
        reservation = await limiter.acquire()
        woke.append(loop.time())
        if shared:
            booked.append(reservation.at_us)
            late.append(reservation.lateness)

    await asyncio.gather(*(request() for _ in range(config.per_process)))  # all M at once
    outcome: dict[str, Any] = {"booked": booked, "woke": woke, "late": late}
    if shared:
        stats = limiter.statistics()
        outcome |= {"round_trip": stats.round_trip_mean, "overdue": stats.overdue, "margin": stats.margin}
        await limiter.aclose()
    return outcome


def _process(barrier: Any, results: Any, url: str, key: str, config: Config) -> None:
    results.put(asyncio.run(_hammer(barrier, url, key, config)))


def run_config(config: Config, url: str) -> dict[str, Any]:
    """Run one configuration: K processes released together; merge what they report."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(config.processes)
    results = ctx.Queue()
    key = f"bench-{uuid.uuid4().hex[:8]}"
    procs = [
        ctx.Process(target=_process, args=(barrier, results, url, key, config))
        for _ in range(config.processes)
    ]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join()
    merged: dict[str, Any] = {"booked": [], "woke": [], "late": [], "round_trip": [], "overdue": 0}
    for outcome in outcomes:
        for name in ("booked", "woke", "late"):
            merged[name] += outcome[name]
        if "round_trip" in outcome:
            merged["round_trip"].append(outcome["round_trip"])
            merged["overdue"] += outcome["overdue"]
            merged["margin"] = outcome["margin"]
    return merged


# ---------------------------------------------------------------------------------------------- measures
def steady_rate(times: list[float]) -> float:
    """The rate over the later half of the starts: well after the first burst, which went at once (and
    which a margin shortens, so counting from the first start would understate the rate)."""
    times = sorted(times)[len(times) // 2 :]
    span = times[-1] - times[0]
    return (len(times) - 1) / span if span > 0 else math.inf


def log_utilisation(times: list[float], limit: int, window: float) -> float:
    """``window`` over the mean gap from each start to the one ``limit`` places later: 1.0 when a full log
    turns over exactly once per window."""
    times = sorted(times)
    gaps = [b - a for a, b in zip(times, times[limit:], strict=False)]
    return window / (sum(gaps) / len(gaps)) if gaps else math.nan


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


def bucket_peak(times: list[float], rate: float) -> float:
    """The most ``count - rate × T`` over any span of length T: a token bucket's bound allows its burst."""
    worst = -math.inf
    lowest = math.inf
    for count, t in enumerate(sorted(times)):
        lowest = min(lowest, count - rate * t)
        worst = max(worst, count + 1 - rate * t - lowest)
    return worst


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


def row(config: Config, out: dict[str, Any], cost: dict[str, float]) -> list[str]:
    shared = config.kind != "local-gcra"
    woke = out["woke"]
    if config.kind == "shared-log":
        limit = int(config.burst)
        booked_s = [b / 1e6 for b in out["booked"]]
        booked_use = f"{log_utilisation(booked_s, limit, config.window):.1%}"
        busiest = max_in_window(booked_s, config.window)  # float seconds: fine for an excess count
        overrun = str(max(0, busiest - limit))
        callers_use = f"{log_utilisation(woke, limit, config.window):.1%}"
        bound = f"{max_in_window(woke, config.window):,} in {config.window:g} s (allowed {limit:,})"
    else:
        callers_use = f"{steady_rate(woke) / config.rate:.1%}"
        bound = f"{bucket_peak(woke, config.rate):,.1f} (allowed {config.burst:g})"
        booked_use = overrun = "-"
        if shared:
            booked_use = f"{steady_rate([b / 1e6 for b in out['booked']]) / config.rate:.1%}"
            overrun = str(gcra_overrun(out["booked"], config.rate, config.burst))
    margin = overdue = lateness = round_trip = "-"
    if shared:
        margin = f"{out['margin'] * 1e3:g}"
        overdue = f"{out['overdue']:,}"
        late = out["late"]
        figures = (percentile(late, 50), percentile(late, 99), max(late))
        lateness = " / ".join(f"{x * 1e3:.1f}" for x in figures)
        round_trip = f"{sum(out['round_trip']) / len(out['round_trip']) * 1e6:,.0f}"
    return [
        config.label,
        f"{config.processes} × {config.per_process}",
        config.limit,
        margin,
        booked_use,
        overrun,
        callers_use,
        bound,
        overdue,
        lateness,
        round_trip,
        f"{cost['shared' if shared else 'local'] * 1e6:,.1f}",
        f"{len(woke):,}",
    ]


# ---------------------------------------------------------------------------------------------- report
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about 20 s)")
    args = parser.parse_args(argv)
    if redis_server_path() is None:
        print(INSTALL_HINT)
        return 1
    command = "python benchmarks/bench_shared.py" + (" --quick" if args.quick else "")
    n = 250 if args.quick else 1000
    rate = 1000.0 if args.quick else 2000.0
    burst = rate / 20  # 50 ms of burst: more than 1 + rate × margin, so the margin costs burst, not rate
    per_window = float(n)  # the log: K × M requests make K windows of one second
    configs = [
        Config("shared-gcra", 1, n, rate, burst),
        Config("shared-gcra", 4, n, rate, burst),
        Config("shared-gcra", 8, n // 2, rate, burst),
        Config("shared-gcra", 4, n, rate, burst, margin=0.0),
        # 5 ms of burst, less than the margin: bookings space out (few requests: they go slowly)
        Config("shared-gcra", 4, n // 20, rate, 10.0),
        Config("shared-log", 4, n, per_window, per_window, window=1.0),
        Config("shared-log", 4, n, per_window, per_window, window=1.0, margin=0.0),
        Config("local-gcra", 1, 4 * n, rate, burst),
        Config("local-gcra", 4, n, rate, burst),
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
            margin = "" if config.margin is None else f", margin {config.margin:g}"
            print(f"{config.label}: {config.processes} x {config.per_process}{margin}", file=sys.stderr)
            rows.append(row(config, run_config(config, server.url), cost))
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
        "margin ms",
        "utilisation (booked)",
        "overrun (booked)",
        "utilisation (at callers)",
        "bound at callers",
        "overdue",
        "lateness p50 / p99 / max ms",
        "round trip µs (loaded)",
        "uncontended acquire µs",
        "grants",
    ]
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    print()
    print(
        "Targets: utilisation >= 95 % of the limit, overrun 0, and the bound at the callers within what is "
        "allowed.  Utilisation is steady state, after the first burst.  'bound at callers': for a GCRA the "
        "most count - rate x T over any span T (a bucket allows its burst); for a log the most callers in "
        "any window.  'margin 0' rows book exactly in Redis and show the jitter callers add; the last row "
        "is K workers with a limiter each: K times the limit."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
