"""A bounded load test on loopback: 500 concurrent connections, a few thousand requests, flat memory.

Bounded in count (a fixed number of requests) and in time (a timeout on the whole run); the only target
is a server this test starts on 127.0.0.1, and it stops by itself.
"""

from __future__ import annotations

import asyncio
import collections
import sys

import httpx
import pytest

from tests.mock_server.helpers import http_request, raw_load, real_server, rss_bytes

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RSS from /proc"),
]

CONNECTIONS = 500
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "load"}], "max_tokens": 8}


def hammer(base: str, total: int) -> collections.Counter[int]:
    host, port = base.removeprefix("http://").split(":")
    request = http_request(host, int(port), "/v1/chat/completions", BODY)

    async def bounded() -> collections.Counter[int]:
        async with asyncio.timeout(120):
            return await raw_load(host, int(port), request, CONNECTIONS, total)

    return asyncio.run(bounded())


def test_500_connections_thousands_of_requests_memory_steady() -> None:
    # A little latency so hundreds of requests really are in flight at once; generous limits so the
    # only 429s would come from a bug. Events are capped, so memory must plateau.
    args = ["--rpm", "1000000", "--tpm", "1000000000", "--ttft", "0.02", "--per-token", "0.0005"]
    with real_server(*args, "--max-events", "2000") as (base, proc):
        warm = hammer(base, 1500)
        rss_warm = rss_bytes(proc.pid)
        main = hammer(base, 3000)
        rss_after = rss_bytes(proc.pid)
        stats = httpx.get(base + "/stats").json()

    assert warm == {200: 1500}
    assert main == {200: 3000}
    assert stats["by_status"] == {"200": 4500}
    assert stats["in_flight"] == 0
    growth = rss_after - rss_warm
    print(f"RSS warm {rss_warm / 2**20:.1f} MiB, after {rss_after / 2**20:.1f} MiB")
    assert growth < 16 * 2**20, f"server RSS grew by {growth / 2**20:.1f} MiB over 3000 requests"
