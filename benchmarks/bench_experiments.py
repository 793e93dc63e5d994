"""How fast experiments replay on virtual time: a whole client stack against the in-process mock server.

    python benchmarks/bench_experiments.py [--quick]

Prints one table.  Each row sends a seeded workload through a client design (limiter + retries + the
httpx transport) to the in-process mock server on virtual time, and reports the time of the whole run next
to the virtual time it covered.  The targets: 10,000 requests spread over one virtual hour through
throttler + retry + server in at most 2 s, and at most 1.2x *the floor* measured in the same
run: the same 10,000 requests, at the same virtual moments, as plain ``httpx.AsyncClient`` +
``httpx.ASGITransport`` round trips to a trivial ASGI app (no limiter, no retries, no recording, a server
that only answers ``{"ok": true}``).  Each run is timed in process CPU seconds (a run is one busy thread:
its CPU time is its wall time on an idle machine, and it is not inflated when other processes take the
CPU away on a shared one).  Rows are measured round-robin, ``repeats`` times, and the medians
reported, so load from elsewhere on the machine spoils one repeat of every row rather than every repeat of
one.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx

from mock_server import ServerConfig
from throttle_lab import run
from throttle_lab.lab.experiments import Workload, simulate


def measure_design(design: str, workload: Workload, server: ServerConfig) -> tuple[float, float, int, int]:
    start = time.process_time()
    trace = simulate(design, workload, server)
    wall = time.process_time() - start
    summary = trace.summary()
    return wall, trace.end - trace.start, summary.completed, summary.rate_limited


async def _trivial_app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    """The least an ASGI server can do for a request: read it, answer a small JSON body."""
    while (await receive()).get("more_body"):
        pass
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": b'{"ok": true}'})


def measure_floor(workload: Workload) -> tuple[float, float, int, int]:
    """The same requests at the same virtual moments, as plain httpx round trips to a trivial app."""
    items = workload.items()

    async def main() -> tuple[float, int]:
        loop = asyncio.get_running_loop()
        done = 0
        transport = httpx.ASGITransport(app=_trivial_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://floor") as client:

            async def one(at: float, body: dict[str, Any]) -> None:
                nonlocal done
                await asyncio.sleep(at)
                response = await client.post("/v1/chat/completions", json=body)
                done += response.status_code == 200

            await asyncio.gather(*(one(item.at, item.body(workload.model)) for item in items))
        return loop.time(), done

    start = time.process_time()
    virtual, done = run(main())
    return time.process_time() - start, virtual, done, 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat, smaller last row")
    parser.add_argument(
        "--repeats", type=int, default=None, help="rounds of every row (default 5; 1 with --quick)"
    )
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 5)
    hour = Workload(requests=10_000, arrival="poisson", per_minute=10_000 / 60, seed=1)
    server = ServerConfig(rpm=200, tpm=None, ttft=0.3, per_token=0.005, seed=1)
    rows: list[tuple[str, Callable[[], tuple[float, float, int, int]], str]] = [
        (
            "throttler, 10,000 over an hour",
            lambda: measure_design("throttler", hour, server),
            "≤ 2 s; ≤ 1.2 × floor",
        ),
        ("adaptive, 10,000 over an hour", lambda: measure_design("adaptive", hour, server), "-"),
        (
            "floor: the same 10,000 as plain httpx ASGITransport round trips to a trivial app",
            lambda: measure_floor(hour),
            "-",
        ),
        (
            "unthrottled burst of 2,000 (retries, 429s)",
            lambda: measure_design(
                "unthrottled",
                Workload(requests=500 if args.quick else 2_000),
                ServerConfig(rpm=600, window=10, seed=1),
            ),
            "-",
        ),
    ]
    walls: list[list[float]] = [[] for _ in rows]
    facts: list[tuple[float, int, int]] = [(0.0, 0, 0) for _ in rows]
    for _ in range(repeats):
        for index, (_, measure, _) in enumerate(rows):
            wall, virtual, completed, limited = measure()
            walls[index].append(wall)
            facts[index] = (virtual, completed, limited)
    floor = statistics.median(walls[2])
    print(
        f"python benchmarks/bench_experiments.py{' --quick' if args.quick else ''} — Python "
        f"{platform.python_version()}, {platform.machine()}, median of {repeats} (round-robin)"
    )
    print()
    print("| run | CPU s (min–max) | × floor | virtual s | completed | 429s | target |")
    print("|---|---|---|---|---|---|---|")
    for (label, _, target), runs, (virtual, completed, limited) in zip(rows, walls, facts, strict=True):
        wall = statistics.median(runs)
        spread = f" ({min(runs):.2f}–{max(runs):.2f})" if len(runs) > 1 else ""
        print(
            f"| {label} | {wall:.2f}{spread} | {wall / floor:.2f} | {virtual:,.0f} | {completed:,} | "
            f"{limited:,} | {target} |"
        )


if __name__ == "__main__":
    main()
