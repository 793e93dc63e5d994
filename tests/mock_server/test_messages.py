"""Anthropic's Messages dialect in-process, plain httpx on virtual time: shapes, errors, limits, headers."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest

from mock_server import ServerConfig, create_app
from mock_server.anthropic_limits import rfc3339
from mock_server.cli import build_parser, config_from_args
from mock_server.tokens import messages_input_tokens
from tests.mock_server.helpers import at, chat, client_for, instant, vrun

MESSAGES = "/v1/messages"
COUNT = "/v1/messages/count_tokens"
HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "sk-ant-test"}
MODEL = "claude-sonnet-4-6"
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
        "required": ["city", "days"],
        "additionalProperties": False,
    },
}


def message(content: Any = "Hello!", max_tokens: int = 20, **extra: Any) -> dict[str, Any]:
    """A valid Messages body. ``"Hello!"`` is 3 + 4 + 2 = 9 input tokens."""
    return {
        "model": MODEL,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": content}],
        **extra,
    }


def post(app: Any, body: Any, path: str = MESSAGES, headers: dict[str, str] | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        async with client_for(app) as client:
            if isinstance(body, bytes):
                return await client.post(path, content=body, headers=headers or HEADERS)
            return await client.post(path, json=body, headers=headers or HEADERS)

    return vrun(go())


def post_all(app: Any, calls: list[tuple[Any, dict[str, str] | None]]) -> list[httpx.Response]:
    """Several requests, one after another, on one loop (a new loop would refill every bucket)."""

    async def go() -> list[httpx.Response]:
        async with client_for(app) as client:
            return [
                await client.post(MESSAGES, json=body, headers=headers or HEADERS) for body, headers in calls
            ]

    return vrun(go())


def tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def assert_anthropic_error(response: httpx.Response, status: int, type_: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and set(body) == {"type", "error"}
    assert body["error"]["type"] == type_
    assert response.headers["request-id"].startswith("req_")
    message: str = body["error"]["message"]
    return message


# -- the reply ---------------------------------------------------------------------------------------------


def test_a_message_has_anthropic_shape_and_usage_by_the_rule() -> None:
    response = post(instant(), message())
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("msg_") and body["type"] == "message" and body["role"] == "assistant"
    assert body["model"] == MODEL and body["stop_sequence"] is None
    assert body["stop_reason"] in ("end_turn", "max_tokens")
    [block] = body["content"]
    assert block["type"] == "text" and block["text"]
    assert body["usage"] == {
        "input_tokens": 9,
        "output_tokens": tokens(block["text"]),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    assert response.headers["request-id"].startswith("req_")
    # Nothing is limited: no rate-limit headers at all.
    assert not any(name.startswith("anthropic-ratelimit") for name in response.headers)


def test_the_token_rule_counts_every_kind_of_block() -> None:
    system = [{"type": "text", "text": "You are terse."}]  # 14 chars: 4
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}, {"type": "image", "source": {}}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 °C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "sunny"}],
                },
                {"type": "tool_result", "tool_use_id": "toolu_1"},
            ],
        },
    ]
    expected = (
        3
        + 4
        + 4 * 3
        + (2 + 85)
        + (tokens("get_weather") + tokens('{"city":"Paris"}'))
        + (tokens("18 °C") + tokens("sunny") + 0)
        + tokens("get_weather")
        + tokens("The weather in a city")
        + tokens(json.dumps(WEATHER["input_schema"], separators=(",", ":"), ensure_ascii=False))
    )
    assert messages_input_tokens(system, messages, [WEATHER]) == expected
    assert messages_input_tokens("abcde", [{"role": "user", "content": "x"}]) == 3 + 2 + 4 + 1
    body = {"model": MODEL, "max_tokens": 5, "system": system, "messages": messages, "tools": [WEATHER]}
    app = instant(tool_call_rate=0.0)
    assert post(app, body).json()["usage"]["input_tokens"] == expected
    counted = post(app, {k: v for k, v in body.items() if k != "max_tokens"}, COUNT)
    assert counted.json() == {"input_tokens": expected}


def test_count_tokens_is_not_limited_or_recorded() -> None:
    app = instant(rpm=1, itpm=100)
    for _ in range(3):
        assert post(
            app, {"model": MODEL, "messages": [{"role": "user", "content": "Hello!"}]}, COUNT
        ).json() == {"input_tokens": 9}
    assert app.stats()["arrivals"] == 0 and app.events == []
    bad = post(app, message(), COUNT)  # max_tokens is not a count_tokens field
    assert "max_tokens" in assert_anthropic_error(bad, 400, "invalid_request_error")


def test_stream_events_in_anthropic_order() -> None:
    response = post(instant(), message(stream=True, max_tokens=30))
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in response.text.split("\n\n") if f]
    kinds = []
    for frame in frames:
        head, data = frame.split("\n")
        kind = head.removeprefix("event: ")
        assert json.loads(data.removeprefix("data: "))["type"] == kind
        kinds.append(kind)
    assert kinds[:3] == ["message_start", "content_block_start", "ping"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[3:-3]) == {"content_block_delta"}
    events = [json.loads(f.split("\n")[1][6:]) for f in frames]
    start = events[0]["message"]
    assert start["content"] == [] and start["usage"]["input_tokens"] == 9 and start["stop_reason"] is None
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert events[-2]["usage"] == {"output_tokens": tokens(text)}
    assert events[-2]["delta"]["stop_reason"] in ("end_turn", "max_tokens")


def test_stream_and_json_give_the_same_content_for_the_same_arrival() -> None:
    whole = post(instant(), message(max_tokens=40)).json()
    streamed = post(instant(), message(max_tokens=40, stream=True)).text
    deltas = [json.loads(line[6:]) for line in streamed.split("\n") if line.startswith("data: ")]
    text = "".join(d["delta"]["text"] for d in deltas if d["type"] == "content_block_delta")
    assert text == whole["content"][0]["text"]


def test_tool_use_input_is_valid_and_streams_as_input_json_delta() -> None:
    body = message("Weather in Paris?", max_tokens=300, tools=[WEATHER], tool_choice={"type": "any"})
    reply = post(instant(), body).json()
    assert reply["stop_reason"] == "tool_use"
    [call] = reply["content"]
    assert call["type"] == "tool_use" and call["id"].startswith("toolu_") and call["name"] == "get_weather"
    assert set(call["input"]) == {"city", "days"} and 1 <= call["input"]["days"] <= 7
    compact = json.dumps(call["input"], separators=(",", ":"), ensure_ascii=False)
    assert reply["usage"]["output_tokens"] == tokens("get_weather") + tokens(compact)

    streamed = post(instant(), {**body, "stream": True}).text
    events = [json.loads(line[6:]) for line in streamed.split("\n") if line.startswith("data: ")]
    opening = next(e for e in events if e["type"] == "content_block_start")["content_block"]
    assert opening == {"type": "tool_use", "id": call["id"], "name": "get_weather", "input": {}}
    partial = "".join(e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta")
    assert json.loads(partial) == call["input"]


def test_tool_choice_rules() -> None:
    other = {"name": "lookup", "input_schema": {"type": "object", "properties": {}}}
    named = post(
        instant(),
        message(max_tokens=300, tools=[WEATHER, other], tool_choice={"type": "tool", "name": "lookup"}),
    )
    assert [b["name"] for b in named.json()["content"]] == ["lookup"]
    never = post(instant(), message(max_tokens=30, tools=[WEATHER], tool_choice={"type": "none"}))
    assert never.json()["content"][0]["type"] == "text"
    auto_off = post(instant(tool_call_rate=0.0), message(max_tokens=30, tools=[WEATHER]))
    assert auto_off.json()["stop_reason"] != "tool_use"
    answered = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]},
    ]
    body = {"model": MODEL, "max_tokens": 30, "messages": answered, "tools": [WEATHER]}
    assert post(instant(), body).json()["content"][0]["type"] == "text"  # auto answers a tool result in text


def test_stop_sequence_cuts_the_text() -> None:
    text = post(instant(), message(max_tokens=60)).json()["content"][0]["text"]
    word = text.split(" ")[3]
    reply = post(instant(), message(max_tokens=60, stop_sequences=["zzz-never", word])).json()
    assert reply["stop_reason"] == "stop_sequence" and reply["stop_sequence"] == word
    assert text.startswith(reply["content"][0]["text"]) and word not in reply["content"][0]["text"]


# -- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}, "max_tokens: Field required"),
        ({"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}, "model: Field required"),
        ({"model": MODEL, "max_tokens": 5}, "messages: Field required"),
        (message(max_tokens=0), "max_tokens"),
        (message(max_tokens=10**6), "max_tokens"),
        (message(max_tokens="5"), "max_tokens"),
        ({"model": MODEL, "max_tokens": 5, "messages": []}, "messages"),
        (
            {"model": MODEL, "max_tokens": 5, "messages": [{"role": "assistant", "content": "hi"}]},
            "messages.0.role",
        ),
        (
            {"model": MODEL, "max_tokens": 5, "messages": [{"role": "system", "content": "hi"}]},
            "messages.0.role",
        ),
        (message([{"type": "video", "url": "x"}]), "messages.0.content.0.type"),
        (message([{"type": "text", "text": ""}]), "messages.0.content.0.text"),
        (message([{"type": "tool_use", "id": "a", "name": "b", "input": {}}]), "assistant"),
        (message(system=[{"type": "image", "source": {}}]), "system.0.type"),
        (message(temperature=2), "temperature"),
        (message(stream="yes"), "stream"),
        (message(frequency_penalty=1), "Extra inputs are not permitted"),
        (message(tools=[{"name": "bad name", "input_schema": {"type": "object"}}]), "tools.0.name"),
        (message(tools=[{"name": "x", "input_schema": {"type": "array"}}]), "tools.0.input_schema"),
        (
            message(tools=[{"name": "x", "input_schema": {"type": "object", "properties": 3}}]),
            "tools.0.input_schema",
        ),
        (message(tools=[{"name": "x"}]), "tools.0.input_schema: Field required"),
        (message(tools=[WEATHER], tool_choice={"type": "tool", "name": "nope"}), "tool_choice.name"),
        (message(tool_choice={"type": "any"}), "tool_choice"),
        (message(tools=[WEATHER], tool_choice={"type": ["auto"]}), "tool_choice.type"),
        (message(tools=[{"type": "web_search_20250305", "name": "web_search"}]), "tools.0.type"),
    ],
)
def test_malformed_input_is_an_invalid_request_error(body: dict[str, Any], needle: str) -> None:
    app = instant(max_output_tokens=4096, default_max_tokens=100)
    assert needle in assert_anthropic_error(post(app, body), 400, "invalid_request_error")
    [rejected] = [e for e in app.events if e["kind"] == "rejected"]
    assert (
        rejected["detail"]["code"] == "invalid_request_error" and rejected["detail"]["dialect"] == "anthropic"
    )


def test_invalid_json_unknown_model_big_body_and_wrong_method() -> None:
    app = instant(max_body_bytes=2_000)
    assert_anthropic_error(post(app, b"{not json"), 400, "invalid_request_error")
    assert_anthropic_error(post(app, b"[1, 2]"), 400, "invalid_request_error")
    missing = assert_anthropic_error(post(app, {**message(), "model": "claude-nope"}), 404, "not_found_error")
    assert missing == "model: claude-nope"
    assert_anthropic_error(post(app, message("x" * 5_000)), 413, "request_too_large")

    async def get() -> httpx.Response:
        async with client_for(app) as client:
            return await client.get(MESSAGES, headers=HEADERS)

    assert_anthropic_error(vrun(get()), 405, "invalid_request_error")


def test_keys_are_checked_from_x_api_key_or_bearer() -> None:
    app = instant(api_keys=("sk-ant-good",))
    missing = post(app, message(), headers={"anthropic-version": "2023-06-01"})
    assert assert_anthropic_error(missing, 401, "authentication_error") == "x-api-key header is required"
    wrong = post(app, message(), headers={"x-api-key": "sk-ant-bad"})
    assert assert_anthropic_error(wrong, 401, "authentication_error") == "invalid x-api-key"
    assert post(app, message(), headers={"x-api-key": "sk-ant-good"}).status_code == 200
    assert post(app, message(), headers={"authorization": "Bearer sk-ant-good"}).status_code == 200


def test_injected_faults_are_api_error_and_overloaded_error() -> None:
    assert_anthropic_error(post(instant(error_rate_500=1.0), message()), 500, "api_error")
    assert_anthropic_error(post(instant(overloaded_rate=1.0), message()), 529, "overloaded_error")
    assert_anthropic_error(post(instant(error_rate_503=1.0), message()), 529, "overloaded_error")


def test_a_cut_stream_has_no_message_stop() -> None:
    app = instant(stream_cut_rate=1.0)
    text = post(app, message(stream=True, max_tokens=60)).text
    assert "message_start" in text and "message_stop" not in text
    assert app.events[-1]["kind"] == "failed" and app.events[-1]["detail"]["code"] == "stream_cut"


# -- limits and headers ------------------------------------------------------------------------------------


def limit_headers(response: httpx.Response) -> dict[str, str]:
    return {
        k.removeprefix("anthropic-ratelimit-"): v
        for k, v in response.headers.items()
        if k.startswith("anthropic-ratelimit-")
    }


@pytest.mark.parametrize("reconcile", [True, False])
def test_header_arithmetic_and_reconciliation(reconcile: bool) -> None:
    # 60 RPM: 1/s. 600 ITPM: 10/s. 300 OTPM: 5/s. Every bucket starts full at loop time 0.
    app = instant(rpm=60, itpm=600, otpm=300, output_reconcile=reconcile)

    async def go() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        async with client_for(app) as client:
            first = await client.post(MESSAGES, json=message(max_tokens=100), headers=HEADERS)
            second = await client.post(MESSAGES, json=message(max_tokens=100), headers=HEADERS)
            await at(10.0)
            third = await client.post(MESSAGES, json=message(max_tokens=100), headers=HEADERS)
            return first, second, third

    first, second, third = vrun(go())
    wall = app.wall_time
    out1 = first.json()["usage"]["output_tokens"]
    assert limit_headers(first) == {
        "requests-limit": "60",
        "requests-remaining": "59",
        "requests-reset": rfc3339(wall(1.0)),
        "input-tokens-limit": "600",
        "input-tokens-remaining": "591",
        "input-tokens-reset": rfc3339(wall(0.9)),
        "output-tokens-limit": "300",
        "output-tokens-remaining": "200",  # max_tokens is charged at admission
        "output-tokens-reset": rfc3339(wall(20.0)),
        # "tokens" is the tighter of input and output: output here.
        "tokens-limit": "300",
        "tokens-remaining": "200",
        "tokens-reset": rfc3339(wall(20.0)),
    }
    used = (out1 if reconcile else 100) + 100  # the first reply's charge, settled (or not), and the second's
    h2 = limit_headers(second)
    assert h2["output-tokens-remaining"] == str(300 - used)
    assert h2["output-tokens-reset"] == rfc3339(wall(used / 5))
    assert h2["requests-remaining"] == "58" and h2["input-tokens-remaining"] == "582"
    # Ten seconds later: 10 requests, 100 input and 50 output tokens have refilled.
    out2 = second.json()["usage"]["output_tokens"]
    held = (out1 + out2 if reconcile else 200) + 100 - 50
    h3 = limit_headers(third)
    assert h3["output-tokens-remaining"] == str(300 - held)
    assert h3["requests-remaining"] == "59" and h3["input-tokens-remaining"] == "591"
    assert h3["output-tokens-reset"] == rfc3339(wall(10.0 + held / 5))
    given_back = [e["detail"]["output_given_back"] for e in app.events if e["kind"] == "completed"]
    assert given_back == (
        [100 - out1, 100 - out2, 100 - third.json()["usage"]["output_tokens"]] if reconcile else [0, 0, 0]
    )


def test_429_on_output_tokens_names_the_limit_and_hints_exactly() -> None:
    app = instant(otpm=120, output_reconcile=False)  # 2 output tokens per second

    async def go() -> list[httpx.Response]:
        async with client_for(app) as client:
            replies = [
                await client.post(MESSAGES, json=message(max_tokens=50), headers=HEADERS) for _ in range(3)
            ]
            await at(float(replies[2].headers["retry-after"]))
            replies.append(await client.post(MESSAGES, json=message(max_tokens=50), headers=HEADERS))
            return replies

    ok1, ok2, limited, later = vrun(go())
    assert ok1.status_code == ok2.status_code == 200
    text = assert_anthropic_error(limited, 429, "rate_limit_error")
    assert "120 output tokens per minute" in text
    # 20 left, 50 needed: 30 more at 2/s = 15 s.
    assert limited.headers["retry-after"] == "15"
    assert limit_headers(limited)["output-tokens-remaining"] == "20"
    assert later.status_code == 200
    [event] = [e for e in app.events if e["kind"] == "limited"]
    assert event["detail"]["limit_type"] == "output_tokens" and event["detail"]["retry_after_ms"] == 15_000


def test_429_on_input_tokens_and_on_requests() -> None:
    app = instant(itpm=60, rpm=1000)
    ok, limited = post_all(app, [(message("x" * 180), None)] * 2)  # 3 + 4 + 45 = 52 input tokens each
    assert ok.status_code == 200
    assert "60 input tokens per minute" in assert_anthropic_error(limited, 429, "rate_limit_error")
    assert limited.headers["retry-after"] == "44"  # 8 left, 52 needed: 44 more at 1/s
    ok, limited = post_all(instant(rpm=1), [(message(), None)] * 2)
    assert "1 requests per minute" in assert_anthropic_error(limited, 429, "rate_limit_error")


@pytest.mark.parametrize(
    ("config", "body", "needle"),
    [
        ({"otpm": 100}, message(max_tokens=101), "lower max_tokens"),
        ({"itpm": 10}, message("x" * 40), "shorten the prompt"),
    ],
)
def test_a_request_that_can_never_fit_is_refused_at_once(
    config: dict[str, Any], body: dict[str, Any], needle: str
) -> None:
    app = instant(**config)
    response = post(app, body)
    assert needle in assert_anthropic_error(response, 429, "rate_limit_error")
    assert response.headers["x-should-retry"] == "false" and "retry-after" not in response.headers


def test_rpm_is_one_account_across_both_dialects() -> None:
    app = instant(rpm=2, tpm=10_000, itpm=10_000)

    async def go() -> list[int]:
        async with client_for(app) as client:
            a = await client.post("/v1/chat/completions", json=chat())
            b = await client.post(MESSAGES, json=message(), headers=HEADERS)
            c = await client.post(MESSAGES, json=message(), headers=HEADERS)
            d = await client.post("/v1/chat/completions", json=chat())
            return [a.status_code, b.status_code, c.status_code, d.status_code]

    assert vrun(go()) == [200, 200, 429, 429]


def test_per_key_buckets_follow_the_key_in_either_header() -> None:
    app = instant(rpm=1, per_key=True)
    replies = post_all(
        app,
        [
            (message(), {"x-api-key": "sk-a"}),
            (message(), {"authorization": "Bearer sk-a"}),  # the same key: the same bucket
            (message(), {"x-api-key": "sk-b"}),
        ],
    )
    assert [r.status_code for r in replies] == [200, 429, 200]


def test_every_response_carries_the_headers_errors_too() -> None:
    app = instant(rpm=10, itpm=1000, otpm=500)
    bad = post(app, {"model": MODEL})
    assert bad.status_code == 400 and limit_headers(bad)["requests-remaining"] == "10"


def test_events_and_stats_hold_the_anthropic_details() -> None:
    app = instant(itpm=6000, otpm=3000)
    reply = post(app, message(max_tokens=50)).json()
    kinds = [e["kind"] for e in app.events]
    assert kinds == ["arrived", "accepted", "completed"]
    accepted, completed = app.events[1], app.events[2]
    assert accepted["weight"] == 9 + 50
    assert accepted["detail"]["dialect"] == "anthropic" and accepted["detail"]["path"] == MESSAGES
    assert accepted["detail"]["input_tokens"] == 9 and accepted["detail"]["max_tokens"] == 50
    assert accepted["detail"]["remaining_output_tokens"] == 2950
    assert completed["detail"]["output_tokens"] == reply["usage"]["output_tokens"]
    assert completed["detail"]["stop_reason"] == reply["stop_reason"]
    stats = app.stats()
    assert stats["limits"]["itpm"] == 6000 and stats["limits"]["otpm"] == 3000
    assert stats["keys"]["*"]["output_tokens"]["capacity"] == 3000.0
    assert stats["by_status"] == {"200": 1}


def test_set_limits_changes_itpm_and_otpm() -> None:
    app = instant(itpm=1000)
    limits = app.set_limits(itpm=None, otpm=100)
    assert (limits.itpm, limits.otpm) == (None, 100)
    with pytest.raises(ValueError, match="otpm"):
        app.set_limits(otpm=0)
    response = post(app, message(max_tokens=20))
    assert "input-tokens-limit" not in limit_headers(response)
    assert limit_headers(response)["output-tokens-limit"] == "100"


# -- config, CLI, presets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["itpm", "otpm"])
@pytest.mark.parametrize("value", [0, -5, 1.5, True, "10"])
def test_config_validates_itpm_and_otpm(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        ServerConfig(**{field: value})


def test_config_validates_output_reconcile() -> None:
    with pytest.raises(ValueError, match="output_reconcile"):
        ServerConfig(**{"output_reconcile": 1})
    assert ServerConfig().output_reconcile is True


def test_cli_flags_and_presets() -> None:
    args = build_parser().parse_args(
        ["--preset", "anthropic-tier-2", "--otpm", "1000", "--no-output-reconcile"]
    )
    config = config_from_args(args, environ={})
    assert (config.rpm, config.itpm, config.otpm, config.output_reconcile) == (1_000, 450_000, 1000, False)
    tiers = [ServerConfig.preset(f"anthropic-tier-{n}") for n in range(1, 5)]
    assert [(c.rpm, c.itpm, c.otpm) for c in tiers] == [
        (50, 30_000, 8_000),
        (1_000, 450_000, 90_000),
        (2_000, 800_000, 160_000),
        (4_000, 2_000_000, 400_000),
    ]


# -- models ---------------------------------------------------------------------------------------------


def test_models_in_anthropic_shape_with_pages() -> None:
    app = create_app(ServerConfig(models=("claude-sonnet-4-6", "gpt-4o", "claude-haiku-4-5-20251001")))

    async def go() -> list[httpx.Response]:
        async with client_for(app) as client:
            return [
                await client.get("/v1/models", headers=HEADERS),
                await client.get("/v1/models?limit=1&after_id=claude-sonnet-4-6", headers=HEADERS),
                await client.get("/v1/models/claude-sonnet-4-6", headers=HEADERS),
                await client.get("/v1/models/claude-nope", headers=HEADERS),
                await client.get("/v1/models"),
            ]

    listing, page, one, missing, openai = vrun(go())
    data = listing.json()
    assert [m["id"] for m in data["data"]] == ["claude-sonnet-4-6", "claude-haiku-4-5-20251001", "gpt-4o"]
    assert (
        data["has_more"] is False and data["first_id"] == "claude-sonnet-4-6" and data["last_id"] == "gpt-4o"
    )
    assert data["data"][1]["display_name"] == "Claude Haiku 4.5" and data["data"][0]["type"] == "model"
    assert data["data"][0]["created_at"].endswith("Z")
    assert page.json()["data"][0]["id"] == "claude-haiku-4-5-20251001" and page.json()["has_more"] is True
    assert one.json()["display_name"] == "Claude Sonnet 4.6"
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    assert openai.json()["object"] == "list"  # without anthropic-version: OpenAI's shape, unchanged


def test_a_tool_input_too_long_for_max_tokens_is_cut() -> None:
    essay = {
        "name": "write",
        "input_schema": {
            "type": "object",
            "properties": {"essay": {"type": "string", "minLength": 200}},
            "required": ["essay"],
        },
    }
    body = message(max_tokens=10, tools=[essay], tool_choice={"type": "any"})
    reply = post(instant(), body).json()
    assert reply["stop_reason"] == "max_tokens" and reply["usage"]["output_tokens"] == 10
    assert reply["content"][0]["input"] == {}  # the JSON was cut: not valid, so not parsed
    streamed = post(instant(), {**body, "stream": True}).text
    deltas = [json.loads(line[6:]) for line in streamed.split("\n") if line.startswith("data: ")]
    partial = "".join(d["delta"]["partial_json"] for d in deltas if d["type"] == "content_block_delta")
    assert partial.startswith('{"essay":"') and len(partial) == 4 * (10 - tokens("write"))


def test_an_unknown_path_is_a_not_found_error_for_an_anthropic_client() -> None:
    response = post(instant(), message(), "/v1/messages/batches/nope")
    assert_anthropic_error(response, 404, "not_found_error")

    async def plain() -> httpx.Response:
        async with client_for(instant()) as client:
            return await client.post("/v1/nope", json={})

    assert vrun(plain()).json()["error"]["code"] == "unknown_url"  # OpenAI's clients: unchanged


def test_a_client_that_leaves_mid_stream_still_has_its_output_settled() -> None:
    app = instant(otpm=600, ttft=0.5, per_token=0.01)  # 10 output tokens per second
    body = json.dumps(message(stream=True, max_tokens=100)).encode()

    async def go() -> float:
        sent: list[Any] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(msg: Any) -> None:
            sent.append(msg)
            if len(sent) == 3:  # headers, message_start, then the first block: the client is gone
                raise OSError("client went away")

        scope = {
            "type": "http",
            "method": "POST",
            "path": MESSAGES,
            "headers": [(b"anthropic-version", b"2023-06-01")],
        }
        with pytest.raises(OSError):
            await app(scope, receive, send)
        return float(app.stats()["keys"]["*"]["output_tokens"]["level"])

    level = vrun(go())
    [accepted] = [e for e in app.events if e["kind"] == "accepted"]
    assert accepted["weight"] == 9 + 100
    planned = post(instant(), message(max_tokens=100)).json()["usage"]["output_tokens"]  # same arrival
    # 100 taken at 0; at 0.5 s (the first token) 5 have refilled and the unplanned 100 - planned come back.
    assert level == pytest.approx(600 - 100 + 5 + (100 - planned))
