"""A 429 means the server's budget is spent: the shared cool-down drains the client's own meters.

Measured end to end as a user would see it: another worker has spent half of the key's minute, then our
client -- a ``Throttler`` behind ``ThrottledTransport`` -- sends 45 requests to the mock server.  A pause
that only delays grants lets the client's buckets refill underneath it, and each pause ends in a burst and
a new round of 429s (18 of them, in bursts of 38, 8 and 6, before the fix).  Drained, the client learns
from one 429 and then goes at the limit's pace.
"""

from __future__ import annotations

import asyncio

import httpx

from mock_server import ServerConfig, create_app
from throttle_lab import RetryPolicy, ThrottledTransport, Throttler, Trace, record, run
from throttle_lab.client.backoff import FullJitter

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 20}


def test_a_429_after_another_worker_spent_the_budget_costs_at_most_one_more() -> None:
    config = ServerConfig(rpm=60, ttft=0.0, per_token=0.0, jitter=0.0)

    async def main() -> list[int]:
        app = create_app(config)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as other:
            for _ in range(30):  # another worker on the same key spends half of the minute
                assert (await other.post("/v1/chat/completions", json=BODY)).status_code == 200
        transport = ThrottledTransport(
            httpx.ASGITransport(app=app),
            limiter=Throttler(max_concurrent=10, rpm=60),
            retry=RetryPolicy(max_attempts=10, backoff=FullJitter(base=0.5, cap=8.0, seed=1)),
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
            responses = await asyncio.gather(
                *(client.post("/v1/chat/completions", json=BODY) for _ in range(45))
            )
        return [r.status_code for r in responses]

    with record() as trace:
        statuses = run(main())
    assert statuses == [200] * 45
    client_429s = trace.filter(kind="429", source="client")
    assert len(client_429s) <= 2, [round(e.t, 2) for e in client_429s]
    assert sent_at_once(trace) <= 2  # no burst at the end of a pause


def sent_at_once(trace: Trace) -> int:
    """The most requests the client sent at one instant after the first 429."""
    first_429 = trace.filter(kind="429", source="client")[0].t
    counts: dict[float, int] = {}
    for event in trace.filter(kind="sent", source="client"):
        if event.t > first_429:
            counts[event.t] = counts.get(event.t, 0) + 1
    return max(counts.values())
