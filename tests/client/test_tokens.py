from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from mock_server import ServerConfig, create_app
from throttle_lab import Tokens, estimate_request_tokens, estimate_tokens, run
from throttle_lab.client.tokens import estimate_prompt_tokens, estimate_text_tokens, request_body
from throttle_lab.client.transport import server_charge


def test_text_tokens_are_a_quarter_of_the_characters_rounded_up() -> None:
    assert [estimate_text_tokens(t) for t in ("", "a", "abcd", "abcde")] == [0, 1, 1, 2]


def test_prompt_tokens_count_messages_names_and_parts() -> None:
    messages = [
        {"role": "system", "content": "You are terse."},  # 4 + 4
        {"role": "user", "name": "ann", "content": [{"type": "text", "text": "hi"}, {"type": "image_url"}]},
    ]
    assert estimate_prompt_tokens(messages) == 3 + (4 + 4) + (4 + 1 + 1 + 85)
    assert estimate_prompt_tokens([]) == 3
    assert estimate_prompt_tokens(["junk"]) == 3  # type: ignore[list-item]


def test_request_tokens_add_the_reply_budget() -> None:
    body = {"messages": [{"role": "user", "content": "x" * 40}]}
    assert estimate_request_tokens({**body, "max_tokens": 50}) == 17 + 50
    assert estimate_request_tokens({**body, "max_completion_tokens": 20, "max_tokens": 50}) == 17 + 20
    assert estimate_request_tokens(body, default_max_tokens=7) == 17 + 7
    assert estimate_request_tokens({"messages": "nope", "max_tokens": True}) == 3 + 100


def test_request_body_parsing_is_forgiving() -> None:
    assert request_body(b'{"a": 1}') == {"a": 1}
    assert request_body(b"[1]") is None
    assert request_body(b"\xff") is None
    assert request_body(b"not json") is None


@pytest.mark.parametrize(
    "content",
    [
        b"{",
        b"{ }",
        b'{"a":"\xc3\xa9"}',
        b'{"a":"\xed\xa0\x80"}',  # a lone surrogate, which json.loads lets through
        b'{"a":"\xff"}',
        b"{\x00}\x00",
        b"\xef\xbb\xbf{}",
        '{"x": 1}'.encode("utf-16"),
        '{"x": 1}'.encode("utf-16-le"),
        '{"x": 1}'.encode("utf-32"),
        b'{"a": 1} trailing',
    ],
)
def test_request_body_reads_what_json_loads_reads(content: bytes) -> None:
    try:
        parsed = json.loads(content)
    except ValueError:
        expected = None
    else:
        expected = parsed if isinstance(parsed, dict) else None
    assert request_body(content) == expected


def test_client_estimates_match_the_mock_servers_count() -> None:
    import random

    from mock_server.tokens import prompt_tokens as server_prompt_tokens

    rng = random.Random(5)
    for _ in range(200):
        messages = [
            {"role": rng.choice(["user", "system"]), "content": "x" * rng.randint(0, 300)}
            for _ in range(rng.randint(1, 4))
        ]
        assert estimate_prompt_tokens(messages) == server_prompt_tokens(messages)


# -- per dialect: estimate_tokens(body, path=...) and what the server really counted ------------------


CHAT_BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "x" * 41}],
    "max_tokens": 30,
    "n": 3,
}
EMBEDDINGS_BODY: dict[str, Any] = {"model": "text-embedding-3-small", "input": ["a" * 9, "bb", "c" * 40]}
RESPONSES_BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "instructions": "Answer in one line.",
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "y" * 33}]},
        {"role": "assistant", "content": "earlier answer"},
        {"role": "user", "content": "and now?"},
    ],
    "max_output_tokens": 40,
}


def test_each_dialect_names_its_parts() -> None:
    assert estimate_tokens(CHAT_BODY, path="/v1/chat/completions") == Tokens(3 + 4 + 3 + 4 + 11, 3 * 30)
    assert estimate_tokens(EMBEDDINGS_BODY, path="/v1/embeddings") == Tokens(3 + 1 + 10, 0)
    assert estimate_tokens({"input": [1, 2, 3]}, path="/v1/embeddings").input == 3
    assert estimate_tokens({"input": [[1, 2], [3]]}, path="/v1/embeddings").input == 3
    responses = estimate_tokens(RESPONSES_BODY, path="/v1/responses")
    assert (responses.input, responses.output) == (3 + (4 + 9) + (4 + 4) + (4 + 2) + (4 + 5), 40)
    assert estimate_tokens({"input": "hi"}, path="/v1/responses", default_max_tokens=9).output == 9
    messages = {
        "max_tokens": 64,
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "z" * 21},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]},
        ],
        "tools": [{"name": "f", "description": "Adds.", "input_schema": {"type": "object"}}],
    }
    # 3 + system 3 + (4+6) + (4 + 1 + ceil(7/4)) + (4 + 1) + tool (1 + 2 + ceil(17/4))
    assert estimate_tokens(messages, path="/v1/messages") == Tokens(3 + 3 + 10 + 7 + 5 + 8, 64)
    assert estimate_tokens(messages, path="/v1/messages/count_tokens") == Tokens(0, 0)


def test_odd_shapes_are_estimated_not_refused() -> None:
    for path in ("/v1/chat/completions", "/v1/embeddings", "/v1/responses", "/v1/messages", None):
        for body in ({}, {"messages": 5, "input": {"x": 1}, "n": -2, "tools": "no", "system": 7}):
            estimate = estimate_tokens(body, path=path)
            assert estimate.input >= 0 and estimate.output >= 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", CHAT_BODY),
        ("/v1/embeddings", EMBEDDINGS_BODY),
        ("/v1/responses", RESPONSES_BODY),
    ],
)
def test_the_estimate_is_what_the_mock_server_counts_and_charges(path: str, body: dict[str, Any]) -> None:
    async def main() -> tuple[dict[str, Any], list[Any]]:
        app = create_app(ServerConfig(seed=1))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://mock"
        ) as client:
            response = await client.post(path, json=body)
            assert response.status_code == 200, response.text
            await asyncio.sleep(0)
            return response.json(), app.events

    answer, events = run(main())
    estimate = estimate_tokens(body, path=path)
    usage = answer["usage"]
    assert usage.get("prompt_tokens", usage.get("input_tokens")) == estimate.input
    accepted = [e for e in events if e["kind"] == "accepted"]
    assert accepted and accepted[0]["weight"] == int(estimate)  # what the server took from its bucket
    # What the transport reconciles with: the server's input count, and the reply budget it kept.
    assert server_charge(body, answer, 100, path=path) == estimate


def test_anthropic_usage_reconciles_the_output_openai_usage_does_not() -> None:
    body = {"max_tokens": 500, "messages": [{"role": "user", "content": "hi"}]}
    anthropic = {"usage": {"input_tokens": 9, "output_tokens": 42, "cache_creation_input_tokens": 3}}
    assert server_charge(body, anthropic, 100, path="/v1/messages") == Tokens(12, 42)
    openai = {"usage": {"prompt_tokens": 9, "completion_tokens": 42}}
    assert server_charge(body, openai, 100, path="/v1/chat/completions") == Tokens(9, 500)
    assert server_charge(body, {"usage": {"input_tokens": "x"}}, 100, path="/v1/messages") is None
    assert server_charge(body, {"usage": None}, 100) is None
