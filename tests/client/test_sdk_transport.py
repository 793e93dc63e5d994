"""The official openai SDK, unchanged, through ThrottledTransport, against the in-process mock server."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from mock_server import ServerConfig, create_app
from throttle_lab import RetryPolicy, ThrottledTransport, Throttler, record, run


def sdk_client(app: object, limiter: Throttler | None, retry: RetryPolicy | None) -> openai.AsyncOpenAI:
    transport = ThrottledTransport(httpx.ASGITransport(app=app), limiter=limiter, retry=retry)  # type: ignore[arg-type]
    http_client = httpx.AsyncClient(transport=transport)
    return openai.AsyncOpenAI(
        base_url="http://mock/v1", api_key="sk-test", http_client=http_client, max_retries=0
    )


def test_sdk_burst_through_the_throttler_gets_no_429s() -> None:
    async def main() -> list[str]:
        app = create_app(ServerConfig(rpm=30, tpm=20_000, window=10))
        client = sdk_client(app, Throttler(max_concurrent=4, rpm=30, tpm=20_000, window=10), RetryPolicy())

        async def ask(i: int) -> str:
            reply = await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"question {i}"}], max_tokens=20
            )
            return reply.choices[0].message.content or ""

        answers = await asyncio.gather(*(ask(i) for i in range(12)))
        await client.close()
        return answers

    with record() as trace:
        answers = run(main())
    assert len(answers) == 12 and all(answers)
    assert trace.count("429") == 0
    sent = trace.filter(kind="sent", source="client").times()
    assert sent[:5] == [0.0] * 4 + sent[4:5] and sent[4] > 0  # 4 at once (concurrency), then paced


def test_sdk_streams_through_the_transport() -> None:
    async def main() -> tuple[str, int | None]:
        app = create_app(ServerConfig(rpm=60))
        client = sdk_client(app, Throttler(max_concurrent=1), RetryPolicy())
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "stream please"}],
            max_tokens=30,
            stream=True,
            stream_options={"include_usage": True},
        )
        text, total = "", None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            if chunk.usage is not None:
                total = chunk.usage.total_tokens
        await client.close()
        return text, total

    with record() as trace:
        text, total = run(main())
    assert text and total is not None
    done = trace.filter(kind="done", source="client")
    released = trace.filter(kind="released", source="throttler")
    assert len(done) == 1 and len(released) == 1
    assert released[0].t == done[0].t > 0  # the slot was held until the stream ended


def test_transport_retries_for_the_sdk_and_the_sdk_sees_success() -> None:
    async def main() -> int:
        app = create_app(ServerConfig(rpm=6, window=10))  # a bucket of 1 request, refilling every 10 s
        client = sdk_client(app, None, RetryPolicy(max_attempts=5))
        for i in range(3):
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": str(i)}], max_tokens=5
            )
        await client.close()
        return 3

    with record() as trace:
        assert run(main()) == 3
    assert trace.count("429") >= 1 and trace.count("done") == 3 and trace.count("failed") == 0


def test_when_retries_run_out_the_sdk_raises_rate_limit_error() -> None:
    async def main() -> None:
        app = create_app(ServerConfig(rpm=6, window=10))
        client = sdk_client(app, None, RetryPolicy.never())
        await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "a"}])
        with pytest.raises(openai.RateLimitError) as info:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "b"}]
            )
        assert info.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
        await client.close()

    run(main())
