"""The real HTTP server (``python -m mock_server`` under uvicorn) with the official ``openai`` SDK, unchanged.

These tests run in real time on 127.0.0.1 only, and take a few seconds in all.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from tests.mock_server.helpers import malformed_bodies, real_server

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.server

MESSAGES = [{"role": "user", "content": "Say something."}]


@pytest.fixture(scope="module")
def burst_server() -> Iterator[str]:
    # 600 RPM enforced per second: bursts of 10, refilled 10/s. Refused requests are not counted, so a
    # herd that honours retry-after gets through one wave at a time.
    args = ["--rpm", "600", "--window", "1", "--tpm", "1000000", "--no-count-rejected"]
    with real_server(*args, "--ttft", "0.01", "--per-token", "0.0005", "--seed", "1") as (base, _):
        yield base


@pytest.fixture(scope="module")
def strict_server() -> Iterator[str]:
    # One request per minute and 500 tokens per minute, per API key: each test uses its own key.
    args = ("--per-key", "--rpm", "1", "--tpm", "500", "--ttft", "0", "--per-token", "0", "--flag-too-large")
    with real_server(*args) as (
        base,
        _,
    ):
        yield base


def sdk(base: str, *, retries: int, key: str = "test") -> Any:
    return openai.AsyncOpenAI(base_url=base + "/v1", api_key=key, max_retries=retries)


def test_sdk_burst_completes_through_its_own_retries(burst_server: str) -> None:
    before = httpx.get(burst_server + "/stats").json()

    async def main() -> list[Any]:
        client = sdk(burst_server, retries=15)
        async with client:
            calls = [
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=16)
                for _ in range(20)
            ]
            return list(await asyncio.gather(*calls))

    started = time.monotonic()
    completions = asyncio.run(main())
    elapsed = time.monotonic() - started
    assert len(completions) == 20
    for completion in completions:
        assert completion.id.startswith("chatcmpl-")
        assert completion.choices[0].message.role == "assistant"
        assert completion.choices[0].message.content
        usage = completion.usage
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens <= usage.prompt_tokens + 16
    after = httpx.get(burst_server + "/stats").json()
    assert after["by_status"]["200"] - before["by_status"].get("200", 0) == 20
    assert after["by_status"]["429"] - before["by_status"].get("429", 0) >= 10  # the SDK did retry
    # 10 at once, then one per 0.1 s as the bucket refills: about a second, not the SDK's 8 s backoffs.
    assert elapsed < 6.0
    events = httpx.get(burst_server + "/events").json()["events"]
    attempts = {e["detail"]["attempt"] for e in events if e["kind"] == "arrived"}
    assert 0 in attempts and max(attempts) >= 1  # x-stainless-retry-count reached the server


def test_sdk_parses_streams(burst_server: str) -> None:
    async def main() -> list[Any]:
        async with sdk(burst_server, retries=5) as client:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                max_tokens=40,
                stream=True,
                stream_options={"include_usage": True},
            )
            return [chunk async for chunk in stream]

    chunks = asyncio.run(main())
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.endswith(".")
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == -(-len(text) // 4)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")


def test_sdk_lists_models(burst_server: str) -> None:
    async def main() -> list[str]:
        async with sdk(burst_server, retries=0) as client:
            page = await client.models.list()
            return [m.id for m in page.data]

    assert "gpt-4o-mini" in asyncio.run(main())


def test_sdk_raises_rate_limit_error_without_retries(strict_server: str) -> None:
    async def main() -> Any:
        async with sdk(strict_server, retries=0, key="key-rle") as client:
            await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)
            with pytest.raises(openai.RateLimitError) as info:
                await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)
            return info.value

    err = asyncio.run(main())
    assert err.status_code == 429
    assert err.code == "rate_limit_exceeded"
    assert err.type == "requests"
    assert err.param is None
    assert "requests per min (RPM): Limit 1" in err.message
    headers = err.response.headers
    # One request per minute, just spent: the hint is (a few real milliseconds less than) a minute.
    assert headers["retry-after"] == "60" and 59_000 < int(headers["retry-after-ms"]) <= 60_000
    assert headers["x-ratelimit-limit-requests"] == "1" and headers["x-ratelimit-remaining-requests"] == "0"


def test_sdk_does_not_retry_a_request_too_large(strict_server: str) -> None:
    before = httpx.get(strict_server + "/stats").json()["arrivals"]

    async def main() -> Any:
        async with sdk(strict_server, retries=3, key="key-big") as client:
            with pytest.raises(openai.RateLimitError) as info:
                await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=600)
            return info.value

    err = asyncio.run(main())
    assert err.code == "request_too_large" and err.type == "tokens"
    assert httpx.get(strict_server + "/stats").json()["arrivals"] == before + 1  # x-should-retry: false


def test_sdk_sees_bad_requests_as_4xx(strict_server: str) -> None:
    async def main() -> list[Any]:
        async with sdk(strict_server, retries=2, key="key-bad") as client:
            errors = []
            for kwargs in ({"model": "no-such-model"}, {"model": "gpt-4o-mini", "max_tokens": 0}):
                with pytest.raises(openai.APIStatusError) as info:
                    await client.chat.completions.create(messages=MESSAGES, **kwargs)
                errors.append(info.value)
            return errors

    not_found, bad = asyncio.run(main())
    assert isinstance(not_found, openai.NotFoundError) and not_found.code == "model_not_found"
    assert isinstance(bad, openai.BadRequestError) and bad.param == "max_tokens"


# -- robustness over real HTTP ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_client(burst_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=burst_server, timeout=10) as client:
        yield client


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(content=malformed_bodies())
def test_generated_malformed_requests_over_http_get_only_4xx(
    fuzz_client: httpx.Client, content: bytes
) -> None:
    r = fuzz_client.post(
        "/v1/chat/completions", content=content, headers={"content-type": "application/json"}
    )
    assert 400 <= r.status_code < 500, r.text
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_garbage_on_the_socket_leaves_the_server_healthy(burst_server: str) -> None:
    host, port = burst_server.removeprefix("http://").split(":")
    rng = random.Random(0)
    blobs = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(40)]
    blobs += [b"GET / HTTP/9.9\r\n\r\n", b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 5\r\n\r\n{"]
    blobs += [b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n{}"]
    for blob in blobs:
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(blob)
            sock.shutdown(socket.SHUT_WR)
            try:
                reply = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                reply = b""
            if reply:
                status = int(reply.split(b" ", 2)[1])
                assert 400 <= status < 500, reply[:200]
    assert httpx.get(burst_server + "/health").json() == {"status": "ok"}
    ok = httpx.post(
        burst_server + "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES}
    )
    assert ok.status_code in (200, 429)
