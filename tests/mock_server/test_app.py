"""Response shapes, streaming framing, latency on virtual time, event records, routes and housekeeping."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest

from mock_server import MockServerApp, ServerConfig, create_app
from mock_server.asgi import request_id
from mock_server.tokens import estimate_tokens
from tests.mock_server.helpers import CHAT, at, chat, chunks_of, client_for, instant, sse_events, vrun

EVENT_KEYS = {"t", "kind", "source", "request", "weight", "detail"}


def post_all(app: MockServerApp, bodies: list[dict[str, Any]], **headers: str) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        async with client_for(app) as c:
            return [await c.post(CHAT, json=b, headers=headers) for b in bodies]

    return vrun(main())


def test_completion_shape() -> None:
    (r,) = post_all(instant(), [chat("hello world", max_tokens=50)])
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int) and body["created"] > 1_600_000_000
    assert body["model"] == "gpt-4o-mini"
    (choice,) = body["choices"]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["prompt_tokens"] == 3 + 4 + 3  # "hello world" is 11 chars → 3 tokens
    assert usage["completion_tokens"] == estimate_tokens(content)
    assert 25 <= usage["completion_tokens"] <= 50  # completion_fraction (0.5, 1.0) of max_tokens
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert re.fullmatch(r"req_[0-9a-f]{32}", r.headers["x-request-id"])


def test_same_seed_same_replies_other_seed_other_replies() -> None:
    bodies = [chat(max_tokens=30), chat(max_tokens=30, stream=True), chat(max_tokens=5)]

    def texts(seed: int) -> list[str]:
        # ``created`` is the one wall-clock field; everything else must repeat exactly.
        return [re.sub(r'"created":\d+', '"created":0', r.text) for r in post_all(instant(seed=seed), bodies)]

    assert texts(1) == texts(1)
    assert texts(1) != texts(2)


def test_streaming_framing_with_usage() -> None:
    (r,) = post_all(instant(), [chat(max_tokens=40, stream=True, stream_options={"include_usage": True})])
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert "x-ratelimit-limit-requests" not in r.headers
    payloads = sse_events(r.text)
    assert payloads[-1] == "[DONE]"
    chunks = chunks_of(r.text)
    assert len({c["id"] for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    first, *content, finish, usage_chunk = chunks
    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert all(set(c["choices"][0]["delta"]) == {"content"} for c in content)
    assert finish["choices"][0]["delta"] == {} and finish["choices"][0]["finish_reason"] in ("stop", "length")
    assert all(c["choices"][0]["finish_reason"] is None for c in [first, *content])
    assert all(c["usage"] is None for c in [first, *content, finish])
    text = "".join(c["choices"][0]["delta"]["content"] for c in content)
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == estimate_tokens(text)
    assert usage_chunk["usage"]["total_tokens"] == usage_chunk["usage"]["prompt_tokens"] + estimate_tokens(
        text
    )


def test_streaming_without_usage_has_no_usage_field() -> None:
    (r,) = post_all(instant(), [chat(stream=True)])
    chunks = chunks_of(r.text)
    assert sse_events(r.text)[-1] == "[DONE]"
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_stream_and_non_stream_texts_agree_for_the_same_arrival() -> None:
    plain = post_all(instant(seed=4), [chat(max_tokens=30)])[0].json()["choices"][0]["message"]["content"]
    streamed = post_all(instant(seed=4), [chat(max_tokens=30, stream=True)])[0]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks_of(streamed.text))
    assert text == plain


def test_latency_on_virtual_time() -> None:
    app = create_app(ServerConfig(ttft=0.5, per_token=0.1, jitter=0.0))

    async def main() -> list[float]:
        async with client_for(app) as c:
            loop = asyncio.get_running_loop()
            r = await c.post(CHAT, json=chat(max_tokens=20))
            done_plain = loop.time()
            await at(100.0)
            await c.post(CHAT, json=chat(max_tokens=20, stream=True))
            return [done_plain, loop.time(), r.json()["usage"]["completion_tokens"]]

    done_plain, done_stream, tokens = vrun(main())
    assert done_plain == pytest.approx(0.5 + 0.1 * tokens)
    completed = [e for e in app.events if e["kind"] == "completed"]
    assert completed[0]["t"] == pytest.approx(0.5 + 0.1 * tokens)
    stream_tokens = completed[1]["detail"]["completion_tokens"]
    assert done_stream == pytest.approx(100.0 + 0.5 + 0.1 * stream_tokens)
    accepted = [e for e in app.events if e["kind"] == "accepted"]
    assert [e["t"] for e in accepted] == [0.0, 100.0]
    assert accepted[0]["detail"]["latency"] == pytest.approx(0.5 + 0.1 * tokens)


def test_jitter_and_load_slowdown() -> None:
    app = create_app(ServerConfig(ttft=1.0, per_token=0.0, jitter=0.0, load_slowdown=0.5))

    async def main() -> None:
        async with client_for(app) as c:
            await asyncio.gather(*(c.post(CHAT, json=chat()) for _ in range(3)))

    vrun(main())
    latencies = [e["detail"]["latency"] for e in app.events if e["kind"] == "accepted"]
    assert latencies == [1.0, 1.5, 2.0]  # 0, 1 and 2 others in flight

    jittery = create_app(ServerConfig(ttft=1.0, per_token=0.0, jitter=0.2, seed=3))
    post_all(jittery, [chat()] * 50)
    spread = [e["detail"]["latency"] for e in jittery.events if e["kind"] == "accepted"]
    assert all(0.8 <= x <= 1.2 for x in spread)
    assert len(set(spread)) == 50


def test_event_records() -> None:
    app = instant(rpm=1)
    seen: list[dict[str, Any]] = []
    app.on_event = seen.append
    post_all(app, [chat(), chat(), {"model": 3}], **{"x-request-id": "req-7", "x-stainless-retry-count": "2"})
    assert seen == app.events
    assert all(set(e) == EVENT_KEYS and e["source"] == "server" for e in app.events)
    assert all(e["request"] == "req-7" and e["detail"]["attempt"] == 2 for e in app.events)
    kinds = [e["kind"] for e in app.events]
    assert kinds == ["arrived", "accepted", "completed", "arrived", "limited", "arrived", "rejected"]
    by_kind = {e["kind"]: e for e in app.events}
    assert by_kind["accepted"]["weight"] == 18 and by_kind["completed"]["weight"] == 18
    assert by_kind["limited"]["weight"] == 0 and by_kind["rejected"]["weight"] == 0
    assert by_kind["arrived"]["weight"] == 0
    completed = by_kind["completed"]["detail"]
    assert completed["status"] == 200 and completed["model"] == "gpt-4o-mini"
    assert completed["prompt_tokens"] == 8
    assert completed["total_tokens"] == 8 + completed["completion_tokens"]
    limited = by_kind["limited"]["detail"]
    assert limited["status"] == 429 and limited["limit_type"] == "requests"
    assert limited["retry_after_ms"] == 60_000 and limited["remaining_requests"] == 0
    assert limited["requested_tokens"] == 18
    rejected = by_kind["rejected"]["detail"]
    assert (rejected["status"], rejected["param"], rejected["code"]) == (400, "model", "invalid_type")
    assert json.loads(json.dumps(app.events)) == app.events  # plain, JSON-friendly data


def test_server_assigned_request_ids_follow_seed_and_arrival() -> None:
    app = instant()
    responses = post_all(app, [chat(), chat()])
    ids = [r.headers["x-request-id"] for r in responses]
    assert ids == [request_id(0, 1), request_id(0, 2)] and ids[0] != ids[1]
    assert [e["request"] for e in app.events if e["kind"] == "arrived"] == ids
    assert all(e["detail"]["request_id"] == e["request"] for e in app.events)
    assert app.events[0]["detail"]["attempt"] is None


def test_a_failing_observer_does_not_break_replies(caplog: pytest.LogCaptureFixture) -> None:
    app = instant()

    def explode(record: dict[str, Any]) -> None:
        raise RuntimeError("observer bug")

    app.on_event = explode
    (r,) = post_all(app, [chat()])
    assert r.status_code == 200
    assert len(app.events) == 3
    assert "observer" in caplog.text


def test_max_events_keeps_the_newest() -> None:
    app = instant(max_events=8)
    post_all(app, [chat()] * 20)
    assert 8 <= len(app.events) <= 10
    assert app.events[-1]["kind"] == "completed" and app.events[-1]["request"] == request_id(0, 20)
    assert app.stats()["by_kind"]["completed"] == 20


def test_events_since_and_the_events_route() -> None:
    app = instant(max_events=4)

    async def main() -> list[dict[str, Any]]:
        async with client_for(app) as c:
            await c.post(CHAT, json=chat())
            first = (await c.get("/events")).json()
            await c.post(CHAT, json=chat())
            newer = (await c.get("/events", params={"since": first["next"]})).json()
            for _ in range(3):
                await c.post(CHAT, json=chat())
            trimmed = (await c.get("/events?since=0")).json()
            bad = (await c.get("/events?since=-1")).json()
            return [first, newer, trimmed, bad]

    first, newer, trimmed, bad = vrun(main())
    assert [e["kind"] for e in first["events"]] == ["arrived", "accepted", "completed"]
    assert first["next"] == 3 and first["dropped"] == 0
    assert [e["request"] for e in newer["events"]] == [request_id(0, 2)] * 3 and newer["next"] == 6
    assert trimmed["next"] == 15 and trimmed["dropped"] == 15 - len(trimmed["events"])
    assert trimmed["events"] == app.events
    assert bad["error"]["param"] == "since"


def test_routes() -> None:
    app = instant(models=("m-1", "m-2"))

    async def main() -> dict[str, httpx.Response]:
        async with client_for(app) as c:
            return {
                "models": await c.get("/v1/models"),
                "model": await c.get("/v1/models/m-2"),
                "no_model": await c.get("/v1/models/zzz"),
                "health": await c.get("/health"),
                "head": await c.head("/health"),
                "post_health": await c.post("/health"),
                "unknown": await c.get("/v2/whatever"),
                "get_chat": await c.get(CHAT),
                "stats": await c.get("/stats"),
            }

    r = vrun(main())
    assert r["models"].json() == {
        "object": "list",
        "data": [
            {"id": "m-1", "object": "model", "created": 1_700_000_000, "owned_by": "mock_server"},
            {"id": "m-2", "object": "model", "created": 1_700_000_000, "owned_by": "mock_server"},
        ],
    }
    assert r["model"].json()["id"] == "m-2"
    assert r["no_model"].status_code == 404 and r["no_model"].json()["error"]["code"] == "model_not_found"
    assert r["health"].json() == {"status": "ok"}
    assert r["head"].status_code == 200
    assert r["stats"].json()["arrivals"] == 1  # only the GET on the chat route counts as an arrival
    assert r["post_health"].status_code == 405 and r["post_health"].headers["allow"] == "GET, HEAD"
    assert r["unknown"].status_code == 404
    assert r["unknown"].json()["error"]["type"] == "invalid_request_error"
    assert r["get_chat"].status_code == 405 and r["get_chat"].headers["allow"] == "POST"


def test_any_model_when_models_is_empty() -> None:
    (r,) = post_all(instant(models=()), [chat(model="my-own-model")])
    assert r.status_code == 200 and r.json()["model"] == "my-own-model"


def test_reset_and_a_new_loop() -> None:
    app = instant(rpm=2)
    assert [r.status_code for r in post_all(app, [chat()] * 3)] == [200, 200, 429]
    # A new run is a new loop with its own clock origin: buckets start full again; events are kept.
    assert [r.status_code for r in post_all(app, [chat()] * 2)] == [200, 200]
    assert len(app.events) == 3 * 3 - 1 + 2 * 3
    app.reset()
    assert app.events == [] and app.stats()["arrivals"] == 0 and app.stats()["by_status"] == {}
    (r,) = post_all(app, [chat()])
    assert r.headers["x-request-id"] == request_id(0, 1)  # the numbering starts over
    assert "rpm=2" in repr(app)


def test_websocket_scope_is_closed() -> None:
    app = instant()
    sent: list[Any] = []

    async def main() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "websocket.connect"}

        async def send(message: Any) -> None:
            sent.append(message)

        await app({"type": "websocket", "path": "/"}, receive, send)

    vrun(main())
    assert sent == [{"type": "websocket.close", "code": 1000}]
