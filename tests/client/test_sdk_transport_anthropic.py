"""The official anthropic SDK, unchanged, through ThrottledTransport (over the httpx2 bridge).

In-process on virtual time (exact, fast), and once against the real HTTP server on a real loop.
"""

from __future__ import annotations

import asyncio

import anthropic
import httpx
import httpx2
import pytest

from mock_server import ServerConfig, create_app
from throttle_lab import RetryPolicy, ThrottledTransport, Throttler, estimate_tokens, record, run
from throttle_lab.client.httpx2_bridge import Httpx2Transport

from ..mock_server.helpers import real_server

MODEL = "claude-sonnet-4-6"
QUESTION = [{"role": "user", "content": "What does a token bucket do?"}]


def sdk_client(
    inner: httpx.AsyncBaseTransport, throttler: Throttler, base_url: str
) -> anthropic.AsyncAnthropic:
    transport = ThrottledTransport(inner, limiter=throttler, retry=RetryPolicy())
    http_client = httpx2.AsyncClient(transport=Httpx2Transport(transport))
    return anthropic.AsyncAnthropic(
        base_url=base_url, api_key="sk-ant-test", http_client=http_client, max_retries=0
    )


def test_create_is_charged_its_estimate_and_reconciled_with_its_usage() -> None:
    async def main() -> tuple[anthropic.types.Message, Throttler]:
        throttler = Throttler(rpm=60, itpm=6_000, otpm=6_000)
        client = sdk_client(
            httpx.ASGITransport(app=create_app(ServerConfig(seed=3))), throttler, "http://mock"
        )
        message = await client.messages.create(model=MODEL, max_tokens=200, messages=QUESTION)
        await client.close()
        return message, throttler

    with record() as trace:
        message, throttler = run(main())
    (granted,) = trace.filter(kind="granted")
    assert granted.weight == estimate_tokens({"max_tokens": 200, "messages": QUESTION}, path="/v1/messages")
    usage = message.usage
    assert granted.weight.input == usage.input_tokens  # the client's estimate is the server's count
    # Anthropic gives the unused reply budget back: the books hold what the reply really used.
    assert throttler.statistics().tokens_granted == usage.input_tokens + usage.output_tokens


def test_a_stream_is_reconciled_from_its_events() -> None:
    async def main() -> tuple[str, anthropic.types.Message, Throttler]:
        throttler = Throttler(max_concurrent=1, itpm=6_000, otpm=6_000)
        client = sdk_client(
            httpx.ASGITransport(app=create_app(ServerConfig(seed=3))), throttler, "http://mock"
        )
        async with client.messages.stream(model=MODEL, max_tokens=300, messages=QUESTION) as stream:
            text = "".join([piece async for piece in stream.text_stream])
            final = await stream.get_final_message()
        assert throttler.in_flight == 0  # the slot came back when the stream ended
        await client.close()
        return text, final, throttler

    with record() as trace:
        text, final, throttler = run(main())
    assert text and final.stop_reason in ("end_turn", "max_tokens")
    usage = final.usage
    assert throttler.statistics().tokens_granted == usage.input_tokens + usage.output_tokens
    (adjusted,) = trace.filter(kind="adjusted")  # booked max_tokens=300; given back what was not written
    assert adjusted.weight == usage.output_tokens - 300


def test_a_429_pauses_the_throttler_with_anthropics_hint_and_the_retry_gets_through() -> None:
    async def main() -> list[anthropic.types.Message]:
        # The server's output budget holds 200 tokens (1,200 per minute over 10 s); the client's throttler
        # believes in 12,000, so its burst runs into the server's 429s.
        app = create_app(ServerConfig(seed=4, otpm=1_200, window=10, completion_fraction=(1.0, 1.0)))
        client = sdk_client(
            httpx.ASGITransport(app=app), Throttler(otpm=12_000, burst_seconds=10), "http://mock"
        )
        replies = await asyncio.gather(
            *(client.messages.create(model=MODEL, max_tokens=100, messages=QUESTION) for _ in range(4))
        )
        await client.close()
        return list(replies)

    with record() as trace:
        replies = run(main())
    assert len(replies) == 4
    limited = trace.filter(kind="429")
    assert limited and {e.detail["type"] for e in limited} == {"output_tokens"}
    assert all(e.detail["hint"] is not None and e.detail["hint"] > 0 for e in limited)
    assert trace.count("paused") >= 1


@pytest.mark.server
def test_the_sdk_through_the_transport_against_the_real_server() -> None:
    with real_server("--rpm", "600", "--itpm", "60000", "--otpm", "12000", "--window", "1") as (base, _):

        async def main() -> tuple[str, int, int, float]:
            throttler = Throttler(max_concurrent=4, rpm=540, itpm=54_000, otpm=10_800, burst_seconds=1)
            client = sdk_client(httpx.AsyncHTTPTransport(), throttler, base)
            replies = await asyncio.gather(
                *(client.messages.create(model=MODEL, max_tokens=50, messages=QUESTION) for _ in range(8))
            )
            async with client.messages.stream(model=MODEL, max_tokens=50, messages=QUESTION) as stream:
                streamed = await stream.get_final_message()
            await client.close()
            used = sum(r.usage.input_tokens + r.usage.output_tokens for r in [*replies, streamed])
            return (
                replies[0].content[0].type,
                len(replies),
                streamed.usage.output_tokens,
                used - throttler.statistics().tokens_granted,
            )

        with record() as trace:
            kind, count, streamed_output, unbooked = asyncio.run(main())
    assert (kind, count) == ("text", 8) and streamed_output > 0
    assert unbooked == 0  # every reply, streamed or not, reconciled to what it really used
    assert trace.count("429") == 0


def test_a_request_that_can_never_fit_is_not_retried() -> None:
    # The server's output budget holds 100 tokens; the client's throttler (wrongly) believes in more, so the
    # request is sent -- and the server answers at once that it can never fit (x-should-retry: false).
    async def main() -> tuple[int, int]:
        app = create_app(ServerConfig(otpm=600, window=10))
        transport = ThrottledTransport(
            httpx.ASGITransport(app=app), limiter=Throttler(otpm=60_000), retry=RetryPolicy(max_attempts=5)
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
            body = {"model": MODEL, "max_tokens": 500, "messages": QUESTION}
            response = await client.post(
                "/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}
            )
        return response.status_code, len([e for e in app.events if e["kind"] == "arrived"])

    with record() as trace:
        status, arrivals = run(main())
    assert (status, arrivals) == (429, 1)
    assert trace.count("retry") == 0
