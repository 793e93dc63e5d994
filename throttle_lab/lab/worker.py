"""One worker process of lesson 10: send requests to the mock server through a limiter, report the trace.

    python -m throttle_lab.lab.worker --base-url http://127.0.0.1:8000 --name w1 --requests 15 \\
        --rpm 600 --burst 3 [--redis redis://127.0.0.1:6379/0 --key lesson-10]

Without ``--redis`` the worker paces itself with its own in-process :class:`~throttle_lab.GCRA` -- the
mistake the lesson shows: four workers, four limiters, four times the limit.  With ``--redis`` all workers
share one :class:`~throttle_lab.shared.SharedGCRA` under ``--key``.

Protocol (so a parent can start several workers at the same instant): the worker sets everything up,
prints ``ready`` and waits for a line on stdin (``--no-wait`` skips that); then it sends ``--requests``
requests at once through a :class:`~throttle_lab.ThrottledTransport` (no retries: a 429 stays a 429) and
prints its trace as one line of JSON (:meth:`throttle_lab.Trace.to_json`).  Event times are the loop's
clock, which on one machine is the same monotonic clock in every process, so traces merge directly.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import httpx

from ..client.transport import ThrottledTransport
from ..core.events import record
from ..core.limiters.gcra import GCRA

if TYPE_CHECKING:
    from ..shared.gcra import SharedGCRA

__all__ = ["main", "work"]


async def work(
    base_url: str,
    name: str,
    requests: int,
    rpm: float,
    burst: float,
    redis_url: str | None = None,
    key: str = "lesson-10",
) -> None:
    """Send ``requests`` chat completions at once through a GCRA (shared through Redis if ``redis_url``)."""
    limiter: GCRA | SharedGCRA
    if redis_url is None:
        limiter = GCRA(per_minute=rpm, burst=burst, name=f"{name}.limiter")
    else:
        from ..shared.gcra import SharedGCRA  # needs the redis package; the local mode does not

        limiter = SharedGCRA(redis_url, key, per_minute=rpm, burst=burst, name=f"{name}.limiter")
    transport = ThrottledTransport(
        httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=200)), limiter=limiter, name=name
    )
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    async with httpx.AsyncClient(transport=transport, base_url=base_url, timeout=30) as client:

        async def one(i: int) -> None:
            await client.post("/v1/chat/completions", json=body, headers={"x-request-id": f"{name}-{i}"})

        await asyncio.gather(*(one(i) for i in range(1, requests + 1)))
    if not isinstance(limiter, GCRA):
        await limiter.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m throttle_lab.lab.worker", description=__doc__)
    parser.add_argument("--base-url", required=True, help="the mock server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--name", required=True, help="this worker's name (event source, request ids)")
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--rpm", type=float, required=True, help="the limit this worker enforces")
    parser.add_argument("--burst", type=float, default=1.0)
    parser.add_argument("--redis", default=None, help="share the limit through this Redis URL")
    parser.add_argument("--key", default="lesson-10", help="the shared limit's key")
    parser.add_argument("--no-wait", action="store_true", help="start at once, without waiting for a go")
    args = parser.parse_args(argv)
    if not args.no_wait:
        print("ready", flush=True)
        sys.stdin.readline()
    with record() as trace:
        asyncio.run(work(args.base_url, args.name, args.requests, args.rpm, args.burst, args.redis, args.key))
    print(trace.to_json(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
