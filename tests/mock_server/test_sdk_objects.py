"""What SDK objects expect: ``n`` choices, usage details, current model ids, the service headers,
messages whose content the spec lets be null, a keep-alive timeout — checked with httpx, the spec and the
openai SDK."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import socket
import time
from typing import Any

import httpx
import pytest

from mock_server import MockServerApp, ServerConfig, create_app
from mock_server.config import DEFAULT_MODELS
from tests.mock_server.helpers import (
    CHAT,
    EMBEDDINGS,
    assert_matches_spec,
    chat,
    chunks_of,
    client_for,
    http_request,
    instant,
    real_server,
    sdk_client,
    vrun,
)

REQUEST_ID = re.compile(r"req_[0-9a-f]{32}")


def post(app: MockServerApp, *bodies: dict[str, Any], **headers: str) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        async with client_for(app) as c:
            return [await c.post(CHAT, json=b, headers=headers) for b in bodies]

    return vrun(main())


# -- n > 1 ------------------------------------------------------------------------------------------------


def test_n_choices_each_with_its_own_text_and_summed_usage() -> None:
    app = instant()
    (r,) = post(app, chat(max_tokens=40, n=3))
    body = r.json()
    assert_matches_spec("CreateChatCompletionResponse", body)
    choices = body["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2]
    assert len({c["message"]["content"] for c in choices}) == 3
    completion = sum(-(-len(c["message"]["content"]) // 4) for c in choices)
    assert body["usage"]["completion_tokens"] == completion
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + completion


def test_n_charges_n_times_max_tokens() -> None:
    # OpenAI counts prompt + n × max_tokens against TPM at admission; the context check is per choice.
    app = instant(tpm=100)
    one, refused = post(app, chat(max_tokens=20, n=4), chat(max_tokens=20, n=2))
    assert one.status_code == 200 and refused.status_code == 429
    accepted = next(e for e in app.events if e["kind"] == "accepted")
    assert accepted["weight"] == 8 + 4 * 20 and accepted["detail"]["n"] == 4
    assert "Requested 48" in refused.json()["error"]["message"]
    (too_big,) = post(instant(tpm=100), chat(max_tokens=20, n=5))
    assert "Request too large" in too_big.json()["error"]["message"]


def test_n_is_one_by_default_and_changes_no_other_draw() -> None:
    def texts(**extra: Any) -> list[str]:
        (r,) = post(instant(seed=4), chat(max_tokens=30, **extra))
        return [c["message"]["content"] for c in r.json()["choices"]]

    assert texts() == texts(n=1) == texts(n=None)
    assert texts(n=2)[0] == texts()[0]  # the first choice is the text n=1 would have given


def test_n_streams_carry_their_index() -> None:
    app = instant()
    (r,) = post(app, chat(max_tokens=30, n=2, stream=True, stream_options={"include_usage": True}))
    chunks = chunks_of(r.text)
    for chunk in chunks:
        assert_matches_spec("CreateChatCompletionStreamResponse", chunk)
    *content_chunks, usage_chunk = chunks
    by_index: dict[int, list[dict[str, Any]]] = {0: [], 1: []}
    for chunk in content_chunks:
        (choice,) = chunk["choices"]
        by_index[choice["index"]].append(choice)
    for choices in by_index.values():
        assert choices[0]["delta"]["role"] == "assistant"
        assert choices[-1]["finish_reason"] in ("stop", "length")
        assert all(c["finish_reason"] is None for c in choices[:-1])
    text = ["".join(c["delta"].get("content") or "" for c in by_index[i]) for i in (0, 1)]
    assert usage_chunk["usage"]["completion_tokens"] == sum(-(-len(t) // 4) for t in text)


def test_n_streams_interleave_on_virtual_time() -> None:
    # Driven through ASGI directly: httpx's ASGITransport hands over a body only once it is complete.
    app = create_app(ServerConfig(ttft=0.1, per_token=0.05, jitter=0.0))
    arrivals: list[tuple[float, int]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        body = json.dumps(chat(max_tokens=40, n=2, stream=True)).encode()

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Any) -> None:
            if message["type"] == "http.response.body":
                for chunk in chunks_of(message["body"].decode()) if message["body"].strip() else []:
                    arrivals.append((loop.time(), chunk["choices"][0]["index"]))

        await app({"type": "http", "method": "POST", "path": CHAT, "headers": []}, receive, send)

    vrun(main())
    times = [t for t, _ in arrivals]
    assert times == sorted(times) and times[0] > 0.1  # the role chunks go with the first piece
    indices = [i for _, i in arrivals]
    assert indices[:2] == [0, 1]  # both role chunks first
    switches = sum(a != b for a, b in itertools.pairwise(indices))
    assert switches > 2  # the choices are generated side by side, not one after the other
    assert len(set(times)) > 10  # and sent as they are generated


# -- usage details, models, headers -----------------------------------------------------------------------


def test_usage_details_per_spec() -> None:
    (r,) = post(instant(), chat())
    usage = r.json()["usage"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0, "audio_tokens": 0}
    assert usage["completion_tokens_details"] == {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    }
    assert_matches_spec("CompletionUsage", usage)


@pytest.mark.parametrize(
    "model",
    [
        *("gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o"),
        *("gpt-4o-mini", "o3", "o3-mini", "o4-mini", "o1", "gpt-5.5", "mock-llm"),
    ],
)
def test_current_chat_models_are_served_by_default(model: str) -> None:
    (r,) = post(instant(), chat(model=model))
    assert r.status_code == 200 and r.json()["model"] == model


def test_models_list_and_object_per_spec() -> None:
    async def main() -> tuple[httpx.Response, httpx.Response]:
        async with client_for(instant()) as c:
            return await c.get("/v1/models"), await c.get("/v1/models/text-embedding-3-large")

    listing, one = vrun(main())
    assert_matches_spec("ListModelsResponse", listing.json())
    assert_matches_spec("Model", one.json())
    assert [m["id"] for m in listing.json()["data"]] == list(DEFAULT_MODELS)
    assert {"text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"} <= set(
        DEFAULT_MODELS
    )


def test_every_response_carries_the_service_headers() -> None:
    app = instant(rpm=1, max_body_bytes=200, api_keys=("sk-1",))
    key = {"authorization": "Bearer sk-1"}

    async def main() -> dict[str, httpx.Response]:
        async with client_for(app) as c:
            return {
                "200": await c.post(CHAT, json=chat(), headers=key),
                "429": await c.post(CHAT, json=chat(), headers=key),
                "400": await c.post(CHAT, content=b"{", headers=key),
                "401": await c.post(EMBEDDINGS, json={}),
                "413": await c.post(CHAT, content=b"x" * 300, headers=key),
                "404": await c.get("/nowhere"),
                "405": await c.post("/health"),
                "health": await c.get("/health"),
                "models": await c.get("/v1/models", headers=key),
                "model 404": await c.get("/v1/models/none", headers=key),
                "stats": await c.get("/stats"),
            }

    for name, r in vrun(main()).items():
        assert REQUEST_ID.fullmatch(r.headers["x-request-id"]), name
        assert r.headers["openai-version"] == "2020-10-01", name
        assert r.headers["openai-processing-ms"].isdigit(), name
        if r.status_code >= 400:
            assert_matches_spec("ErrorResponse", r.json())


def test_processing_ms_is_the_planned_time() -> None:
    app = create_app(ServerConfig(ttft=0.25, per_token=0.01, jitter=0.0, error_rate_500=0.0))
    plain, streamed = post(app, chat(max_tokens=40), chat(max_tokens=40, stream=True))
    latency = [e["detail"]["latency"] for e in app.events if e["kind"] == "accepted"]
    assert int(plain.headers["openai-processing-ms"]) == round(1000 * latency[0])
    assert int(streamed.headers["openai-processing-ms"]) == round(1000 * latency[1])
    failing = create_app(ServerConfig(ttft=0.25, per_token=0.01, jitter=0.0, error_rate_500=1.0))
    (error,) = post(failing, chat(max_tokens=40))
    assert error.status_code == 500 and error.headers["openai-processing-ms"] == "250"


def test_the_response_id_is_the_one_the_events_record() -> None:
    app = instant()
    (r,) = post(app, chat(), **{"x-request-id": "client-7"})
    assert {e["request"] for e in app.events} == {"client-7"}  # the client's name, for matching traces
    assert {e["detail"]["request_id"] for e in app.events} == {r.headers["x-request-id"]}


# -- messages whose content may be null --------------------------------------------------------------------

TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}


@pytest.mark.parametrize(
    "messages",
    [
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
        ],
        [
            {"role": "assistant", "tool_calls": [TOOL_CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "x"},
        ],
        [{"role": "function", "name": "get_weather", "content": None}],
        [{"role": "function", "name": "get_weather", "content": "sunny"}],
        [{"role": "assistant", "content": None, "refusal": "no"}],
        [{"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]}],
        [{"role": "tool", "tool_call_id": "c", "content": [{"type": "text", "text": "x"}]}],
        [{"role": "developer", "content": [{"type": "text", "text": "be brief"}]}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}],
    ],
)
def test_messages_the_spec_allows(messages: list[dict[str, Any]]) -> None:
    (r,) = post(instant(), {"model": "gpt-4o-mini", "messages": messages})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("messages", "code", "param"),
    [
        ([{"role": "user", "content": None}], "invalid_type", "messages[0].content"),
        ([{"role": "system", "content": None}], "invalid_type", "messages[0].content"),
        ([{"role": "tool", "content": None, "tool_call_id": "c"}], "invalid_type", "messages[0].content"),
        ([{"role": "tool", "content": "x"}], "missing_required_parameter", "messages[0].tool_call_id"),
        ([{"role": "tool", "content": "x", "tool_call_id": 5}], "invalid_type", "messages[0].tool_call_id"),
        ([{"role": "function", "content": None}], "missing_required_parameter", "messages[0].name"),
        ([{"role": "function", "name": "f"}], "missing_required_parameter", "messages[0].content"),
        ([{"role": "function", "name": "f", "content": []}], "invalid_type", "messages[0].content"),
        ([{"role": "user", "content": []}], "empty_array", "messages[0].content"),
        (
            [{"role": "system", "content": [{"type": "image_url", "image_url": {}}]}],
            "invalid_value",
            "messages[0].content[0].type",
        ),
        (
            [{"role": "assistant", "content": [{"type": "refusal"}]}],
            "invalid_type",
            "messages[0].content[0].refusal",
        ),
        ([{"role": "assistant", "tool_calls": {}}], "invalid_type", "messages[0].tool_calls"),
        ([{"role": "assistant", "tool_calls": [5]}], "invalid_type", "messages[0].tool_calls[0]"),
        (
            [{"role": "assistant", "tool_calls": [{"type": "function"}]}],
            "missing_required_parameter",
            "messages[0].tool_calls[0].id",
        ),
        ([{"role": "assistant", "refusal": 3}], "invalid_type", "messages[0].refusal"),
    ],
)
def test_messages_the_spec_forbids(messages: list[dict[str, Any]], code: str, param: str) -> None:
    app = instant()
    (r,) = post(app, {"model": "gpt-4o-mini", "messages": messages})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["code"], error["param"]) == (code, param)
    assert app.events[-1]["kind"] == "rejected"


# -- the official SDK -------------------------------------------------------------------------------------


def test_sdk_objects() -> None:
    app = instant(organization="org-mock")

    async def main() -> dict[str, Any]:
        async with sdk_client(app) as client:
            raw = await client.chat.completions.with_raw_response.create(
                model="gpt-5-mini",
                messages=[{"role": "user", "content": "hi"}],
                n=2,
                max_completion_tokens=30,
            )
            stream = await client.chat.completions.create(
                model="gpt-4.1-nano",
                messages=[{"role": "user", "content": "hi"}],
                n=2,
                max_tokens=20,
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = [chunk async for chunk in stream]
            models = [m.id async for m in client.models.list()]
            o3 = await client.models.retrieve("o3")
            tool_turn = await client.chat.completions.create(
                model="gpt-4o",
                messages=[
                    {"role": "user", "content": "weather?"},
                    {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                    {"role": "function", "name": "get_weather", "content": None},
                ],
            )
            return {"raw": raw, "chunks": chunks, "models": models, "o3": o3, "tool_turn": tool_turn}

    out = vrun(main())
    raw = out["raw"]
    assert REQUEST_ID.fullmatch(raw.headers["x-request-id"])
    assert raw.headers["openai-version"] == "2020-10-01"
    assert raw.headers["openai-organization"] == "org-mock"
    assert raw.headers["openai-processing-ms"] == "0"
    completion = raw.parse()
    assert completion._request_id == raw.headers["x-request-id"]
    assert [c.index for c in completion.choices] == [0, 1]
    usage = completion.usage
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details.reasoning_tokens == 0
    assert usage.completion_tokens_details.accepted_prediction_tokens == 0
    assert usage.completion_tokens == sum(-(-len(c.message.content) // 4) for c in completion.choices)

    chunks = out["chunks"]
    assert {c.choices[0].index for c in chunks if c.choices} == {0, 1}
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens_details.reasoning_tokens == 0

    assert "gpt-5-mini" in out["models"] and "text-embedding-3-small" in out["models"]
    assert out["o3"].id == "o3" and out["o3"].object == "model"
    assert out["tool_turn"].choices[0].message.content


# -- the real server's keep-alive timeout ----------------------------------------------------------------


@pytest.mark.server
def test_keep_alive_closes_an_idle_connection() -> None:
    with real_server("--keep-alive", "1", "--ttft", "0", "--per-token", "0") as (base, _):
        host, port = base.removeprefix("http://").split(":")
        request = http_request(host, int(port), CHAT, chat())
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(request)
            reply = b""
            while b"\r\n\r\n" not in reply:
                reply += sock.recv(65536)
            assert reply.startswith(b"HTTP/1.1 200")
            head, _, rest = reply.partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            while len(rest) < length:
                rest += sock.recv(65536)
            # The connection is kept alive at first: a second request on it is answered.
            sock.sendall(request)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            sock.settimeout(5)
            while sock.recv(65536):  # drain whatever is left of the second reply, then wait for EOF
                pass
            idle = time.monotonic() - started
        assert 0.5 < idle < 3.0  # closed after about a second idle, not uvicorn's default 5 s
