"""The official ``anthropic`` SDK, unchanged, against the Messages dialect: in-process and over real HTTP.

The anthropic SDK (2.x) is built on ``httpx2``, so the in-process client is an ``httpx2.AsyncClient`` over
``httpx2.ASGITransport``; on throttle_lab's virtual-time loop the SDK's own retry sleeps cost nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mock_server import MockServerApp, ServerConfig, create_app
from tests.mock_server.helpers import INSTANT, real_server, vrun

anthropic = pytest.importorskip("anthropic")
httpx2 = pytest.importorskip("httpx2")

MODEL = "claude-sonnet-4-6"
HELLO = [{"role": "user", "content": "Hello!"}]
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"],
    },
}


def app_with(**overrides: Any) -> MockServerApp:
    return create_app(dataclasses.replace(INSTANT, **overrides))


def client(app: MockServerApp, *, retries: int = 0, key: str = "sk-ant-test") -> Any:
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app))
    return anthropic.AsyncAnthropic(
        api_key=key, base_url="http://mock", http_client=http, max_retries=retries
    )


def test_create_stream_and_final_message() -> None:
    app = app_with(ttft=0.1, per_token=0.01, itpm=30_000, otpm=8_000, rpm=50)

    async def go() -> tuple[Any, Any, list[str], float]:
        async with client(app) as c:
            created = await c.messages.create(model=MODEL, max_tokens=64, messages=HELLO, system="Be brief.")
            loop = asyncio.get_running_loop()
            start = loop.time()
            async with c.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
                texts = [text async for text in stream.text_stream]
                final = await stream.get_final_message()
            return created, final, texts, loop.time() - start

    created, final, texts, took = vrun(go())
    assert (
        created.type == "message"
        and created.role == "assistant"
        and created.stop_reason in ("end_turn", "max_tokens")
    )
    assert created.usage.input_tokens == 3 + 4 + 2 + 3  # "Hello!" and the system "Be brief." (9 chars)
    assert final.content[0].text == "".join(texts) and final.usage.output_tokens == -(
        -len("".join(texts)) // 4
    )
    assert final.usage.input_tokens == 9
    assert took > 0.1  # the time to first token, then the tokens


def test_tools_give_schema_valid_input_and_count_tokens_matches() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    app = app_with()

    async def go() -> tuple[Any, Any, Any]:
        async with client(app) as c:
            kwargs: dict[str, Any] = {
                "model": MODEL,
                "tools": [WEATHER],
                "messages": [{"role": "user", "content": "Paris?"}],
            }
            created = await c.messages.create(max_tokens=200, tool_choice={"type": "any"}, **kwargs)
            async with c.messages.stream(
                max_tokens=200, tool_choice={"type": "tool", "name": "get_weather"}, **kwargs
            ) as s:
                streamed = await s.get_final_message()
            counted = await c.messages.count_tokens(**kwargs)
            return created, streamed, counted

    created, streamed, counted = vrun(go())
    for reply in (created, streamed):
        assert reply.stop_reason == "tool_use"
        [call] = reply.content
        assert call.type == "tool_use" and call.id.startswith("toolu_") and call.name == "get_weather"
        jsonschema.validate(call.input, WEATHER["input_schema"])
    assert counted.input_tokens == created.usage.input_tokens


def test_models_list_pages_through_everything() -> None:
    async def go() -> list[Any]:
        async with client(app_with()) as c:
            return [model async for model in c.models.list(limit=7)]

    models = vrun(go())
    ids = [m.id for m in models]
    assert len(ids) == len(ServerConfig().models) == len(set(ids))
    assert ids[0].startswith("claude-") and models[0].display_name.startswith("Claude")


def test_wrong_key_is_an_authentication_error() -> None:
    async def go() -> None:
        async with client(app_with(api_keys=("sk-ant-good",)), key="sk-ant-bad") as c:
            await c.messages.create(model=MODEL, max_tokens=5, messages=HELLO)

    with pytest.raises(anthropic.AuthenticationError) as caught:
        vrun(go())
    assert caught.value.status_code == 401 and caught.value.body["error"]["type"] == "authentication_error"


def test_429_is_a_rate_limit_error_without_retries_and_gets_through_with_them() -> None:
    app = app_with(rpm=60, window=1.0)  # one request per second

    async def go(retries: int) -> tuple[Any, float]:
        async with client(app, retries=retries) as c:
            loop = asyncio.get_running_loop()
            await c.messages.create(model=MODEL, max_tokens=5, messages=HELLO)
            reply = await c.messages.create(model=MODEL, max_tokens=5, messages=HELLO)
            return reply, loop.time()

    with pytest.raises(anthropic.RateLimitError) as caught:
        vrun(go(0))
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert caught.value.response.headers["retry-after"] == "1"
    reply, when = vrun(go(2))
    assert reply.type == "message" and when == pytest.approx(1.0)  # the SDK waited exactly retry-after
    attempts = [e["detail"]["attempt"] for e in app.events if e["kind"] == "arrived"]
    assert attempts[-2:] == [0, 1]  # x-stainless-retry-count reached the server


def test_overloaded_is_the_sdks_overloaded_error() -> None:
    async def go() -> None:
        async with client(app_with(overloaded_rate=1.0)) as c:
            await c.messages.create(model=MODEL, max_tokens=5, messages=HELLO)

    with pytest.raises(anthropic.InternalServerError) as caught:
        vrun(go())
    assert caught.value.status_code == 529 and type(caught.value).__name__ == "OverloadedError"


def test_bad_request_is_a_bad_request_error() -> None:
    async def go() -> None:
        async with client(app_with()) as c:
            await c.messages.create(
                model=MODEL, max_tokens=5, messages=[{"role": "assistant", "content": "hi"}]
            )

    with pytest.raises(anthropic.BadRequestError):
        vrun(go())


# -- the real server ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live() -> Iterator[str]:
    args = ("--per-key", "--rpm", "60", "--window", "1", "--itpm", "100000", "--otpm", "20000")
    with real_server(*args, "--ttft", "0.01", "--per-token", "0.0005", "--seed", "2") as (base, _):
        yield base


def live_client(base: str, key: str, retries: int = 0) -> Any:
    return anthropic.AsyncAnthropic(api_key=key, base_url=base, max_retries=retries)


@pytest.mark.server
def test_real_server_create_stream_tools_and_count(live: str) -> None:
    async def go() -> tuple[Any, Any, Any, Any]:
        async with live_client(live, "sk-live-1") as c:
            created = await c.messages.create(model=MODEL, max_tokens=40, messages=HELLO)
            await asyncio.sleep(1.0)
            async with c.messages.stream(model=MODEL, max_tokens=40, messages=HELLO) as s:
                final = await s.get_final_message()
            await asyncio.sleep(1.0)
            tool = await c.messages.create(
                model=MODEL, max_tokens=200, messages=HELLO, tools=[WEATHER], tool_choice={"type": "any"}
            )
            counted = await c.messages.count_tokens(model=MODEL, messages=HELLO, tools=[WEATHER])
            return created, final, tool, counted

    created, final, tool, counted = asyncio.run(go())
    assert created.usage.input_tokens == final.usage.input_tokens == 9
    assert final.content[0].text and final.stop_reason in ("end_turn", "max_tokens")
    assert tool.stop_reason == "tool_use" and set(tool.content[0].input) == {"city", "unit"}
    assert counted.input_tokens == tool.usage.input_tokens


@pytest.mark.server
def test_real_server_429_then_retries_through(live: str) -> None:
    async def burst(retries: int, key: str) -> list[Any]:
        async with live_client(live, key, retries) as c:
            return await asyncio.gather(
                *(c.messages.create(model=MODEL, max_tokens=5, messages=HELLO) for _ in range(2)),
                return_exceptions=True,
            )

    outcomes = asyncio.run(burst(0, "sk-live-2"))
    assert sum(isinstance(o, anthropic.RateLimitError) for o in outcomes) == 1
    outcomes = asyncio.run(burst(3, "sk-live-3"))
    assert all(o.type == "message" for o in outcomes)
    raw = httpx.post(
        live + "/v1/messages",
        headers={"x-api-key": "sk-live-4", "anthropic-version": "2023-06-01"},
        content=json.dumps({"model": MODEL, "max_tokens": 5, "messages": HELLO}),
    )
    assert raw.headers["anthropic-ratelimit-requests-limit"] == "60"
    assert raw.headers["anthropic-ratelimit-output-tokens-remaining"] == str(round(20000 / 60) - 5)
    assert raw.headers["anthropic-ratelimit-tokens-reset"].endswith("Z")
