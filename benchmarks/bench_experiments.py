"""How fast experiments replay on virtual time: a whole client stack against the in-process mock server.

    python benchmarks/bench_experiments.py [--quick]

Prints one table.  Each row sends a seeded workload through a client design (limiter + retries + the
httpx transport) to the in-process mock server on virtual time, and reports the wall time of the whole run
next to the virtual time it covered.  The issue's target: 10,000 requests spread over one virtual hour through
throttler + retry + server in at most 2 s of wall time.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from mock_server import ServerConfig
from throttle_lab.lab.experiments import Workload, simulate


def measure(
    design: str, workload: Workload, server: ServerConfig, repeats: int
) -> tuple[float, float, int, int]:
    walls = []
    trace = None
    for _ in range(repeats):
        start = time.perf_counter()
        trace = simulate(design, workload, server)
        walls.append(time.perf_counter() - start)
    assert trace is not None
    summary = trace.summary()
    return statistics.median(walls), trace.end - trace.start, summary.completed, summary.rate_limited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat, smaller second row")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    hour = Workload(requests=10_000, arrival="poisson", per_minute=10_000 / 60, seed=1)
    server = ServerConfig(rpm=200, tpm=None, ttft=0.3, per_token=0.005, seed=1)
    rows = [
        ("throttler, 10,000 over an hour", "throttler", hour, server),
        ("adaptive, 10,000 over an hour", "adaptive", hour, server),
        (
            "unthrottled burst of 2,000 (retries, 429s)",
            "unthrottled",
            Workload(requests=500 if args.quick else 2_000),
            ServerConfig(rpm=600, window=10, seed=1),
        ),
    ]
    print(
        f"python benchmarks/bench_experiments.py{' --quick' if args.quick else ''} — Python "
        f"{platform.python_version()}, {platform.machine()}, median of {repeats}"
    )
    print()
    print("| run | wall s | virtual s | completed | 429s | target |")
    print("|---|---|---|---|---|---|")
    for label, design, workload, config in rows:
        wall, virtual, completed, limited = measure(design, workload, config, repeats)
        target = "≤ 2 s" if "hour" in label else "-"
        print(f"| {label} | {wall:.2f} | {virtual:,.0f} | {completed:,} | {limited:,} | {target} |")


if __name__ == "__main__":
    main()
