"""Garbage and near-valid bodies on ``/v1/messages`` and count_tokens: an Anthropic answer, never a 500."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.mock_server.helpers import client_for, instant, vrun

MODEL = "claude-sonnet-4-6"
APP = instant(max_output_tokens=2_000, rpm=100_000, itpm=10_000_000, otpm=1_000_000)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
block_types = st.sampled_from(
    ["text", "image", "document", "tool_use", "tool_result", "thinking", "video", ""]
)
blocks = st.fixed_dictionaries(
    {"type": block_types},
    optional={
        "text": json_values,
        "source": json_values,
        "id": json_values,
        "name": json_values,
        "input": json_values,
        "tool_use_id": json_values,
        "content": json_values | st.lists(st.fixed_dictionaries({"type": block_types, "text": json_values})),
    },
)
messages = st.lists(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["user", "assistant", "system", 3]),
            "content": st.text(max_size=20) | st.lists(blocks, max_size=3) | json_values,
        }
    ),
    max_size=4,
)
schemas = json_values | st.fixed_dictionaries(
    {"type": st.just("object")},
    optional={
        "properties": st.dictionaries(st.text(max_size=5), json_values, max_size=3),
        "required": json_values,
    },
)
tools = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["get_weather", "x", "bad name"]) | json_values},
        optional={"description": json_values, "input_schema": schemas, "type": json_values},
    ),
    max_size=3,
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from([MODEL, "claude-nope"]) | json_values,
        "max_tokens": st.integers(-5, 5000) | json_values,
        "messages": messages | json_values,
        "system": st.text(max_size=10) | st.lists(blocks, max_size=2) | json_values,
        "tools": tools | json_values,
        "tool_choice": st.fixed_dictionaries(
            {"type": st.sampled_from(["auto", "any", "tool", "none", "x"]) | json_values},
            optional={"name": json_values, "disable_parallel_tool_use": json_values},
        )
        | json_values,
        "stream": json_values,
        "stop_sequences": st.lists(st.text(max_size=4), max_size=3) | json_values,
        "temperature": json_values,
        "top_k": json_values,
        "metadata": json_values,
        "extra": json_values,
    },
)
payloads = (
    bodies.map(lambda b: json.dumps(b).encode())
    | st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.just(b"[" * 100_000)
)


def _check(response: httpx.Response) -> None:
    assert response.status_code in (200, 400, 404, 413), (response.status_code, response.text)
    assert response.headers["request-id"].startswith("req_")
    if response.status_code != 200:
        body = response.json()
        assert body["type"] == "error" and isinstance(body["error"]["message"], str)
        expected = {400: "invalid_request_error", 404: "not_found_error", 413: "request_too_large"}
        assert body["error"]["type"] == expected[response.status_code]
    elif response.headers["content-type"].startswith("application/json"):
        assert response.json()["type"] in ("message",) or "input_tokens" in response.json()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=payloads)
def test_any_body_gets_an_anthropic_answer(payload: bytes) -> None:
    async def go() -> list[httpx.Response]:
        async with client_for(APP) as client:
            headers = {"anthropic-version": "2023-06-01", "content-type": "application/json"}
            return [
                await client.post("/v1/messages", content=payload, headers=headers),
                await client.post("/v1/messages/count_tokens", content=payload, headers=headers),
            ]

    for response in vrun(go()):
        _check(response)


@settings(max_examples=150, deadline=None)
@given(body=bodies, max_tokens=st.integers(1, 300))
def test_valid_requests_with_random_tools_answer_by_the_schema(body: dict[str, Any], max_tokens: int) -> None:
    # A valid core with random extras: whatever comes back is 200 or a clean 4xx, and a 200's usage is
    # consistent with its content.
    request = {
        **body,
        "model": MODEL,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "hi"}],
    }

    async def go() -> httpx.Response:
        async with client_for(APP) as client:
            return await client.post(
                "/v1/messages", json=request, headers={"anthropic-version": "2023-06-01"}
            )

    try:
        response = vrun(go())
    except ValueError:
        return  # a float NaN in the body cannot be sent as JSON by httpx
    _check(response)
    if response.status_code == 200 and response.headers["content-type"].startswith("application/json"):
        reply = response.json()
        produced = 0
        for block in reply["content"]:
            if block["type"] == "text":
                produced += -(-len(block["text"]) // 4)
            else:
                text = json.dumps(block["input"], separators=(",", ":"), ensure_ascii=False)
                produced += -(-len(block["name"]) // 4) + -(-len(text) // 4)
        if reply["stop_reason"] != "max_tokens":
            assert reply["usage"]["output_tokens"] == produced
        assert reply["usage"]["output_tokens"] <= max_tokens
