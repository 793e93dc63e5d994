"""``POST /v1/responses``: the spec's bodies and event sequence, limits like chat's, tools and structured
output, bad input as 4xx — checked with httpx, OpenAI's OpenAPI spec and the official SDK."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pydantic
import pytest

from mock_server import MockServerApp, ServerConfig, create_app
from mock_server.responses_schema import CREATE_RESPONSE_FIELDS
from tests.mock_server.helpers import (
    CHAT,
    SPEC,
    assert_matches_spec,
    chat,
    client_for,
    instant,
    real_server,
    sdk_client,
    vrun,
)

RESPONSES = "/v1/responses"

WEATHER: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["city", "unit", "days"],
        "additionalProperties": False,
    },
    "strict": True,
}
TIME: dict[str, Any] = {
    "type": "function",
    "name": "get_time",
    "parameters": {
        "type": "object",
        "properties": {"zone": {"type": "string"}},
        "required": ["zone"],
        "additionalProperties": False,
    },
    "strict": True,
}

TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]
CALL_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.function_call_arguments.done",
    "response.output_item.done",
    "response.completed",
]


def body(prompt: Any = "hi", max_output_tokens: int | None = 40, **extra: Any) -> dict[str, Any]:
    """A valid Responses body (``prompt`` is its ``input``). ``"hi"`` is 3 + 4 + 1 = 8 input tokens."""
    out: dict[str, Any] = {"model": "gpt-4o-mini", "input": prompt, **extra}
    if max_output_tokens is not None:
        out["max_output_tokens"] = max_output_tokens
    return out


def post(app: MockServerApp, *bodies: dict[str, Any], path: str = RESPONSES) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        async with client_for(app) as c:
            return [await c.post(path, json=b) for b in bodies]

    return vrun(main())


def sse(text: str) -> list[dict[str, Any]]:
    """The events of a Responses stream, checking the framing: ``event: <type>``, ``data: <json>``, blank
    line; the event name is the data's ``type``; every event matches the spec; no ``[DONE]``."""
    assert text.endswith("\n\n")
    events = []
    for block in text.split("\n\n")[:-1]:
        name_line, data_line = block.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: "), block
        event = json.loads(data_line.removeprefix("data: "))
        assert event["type"] == name_line.removeprefix("event: ")
        assert_matches_spec("ResponseStreamEvent", event)
        events.append(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def without_deltas(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events if not e["type"].endswith(".delta")]


def tokens(text: str) -> int:
    return -(-len(text) // 4)


def arguments_valid(arguments: str, schema: dict[str, Any]) -> dict[str, Any]:
    jsonschema = pytest.importorskip("jsonschema")
    value = json.loads(arguments)
    jsonschema.validate(value, schema)
    assert isinstance(value, dict)
    return value


# -- the JSON response ------------------------------------------------------------------------------------


def test_a_response_per_spec() -> None:
    app = instant()
    (r,) = post(app, body(instructions="Be brief.", metadata={"run": "7"}, temperature=0.2, user="u-1"))
    assert r.status_code == 200, r.text
    response = r.json()
    assert_matches_spec("Response", response)
    assert response["id"].startswith("resp_") and response["object"] == "response"
    assert response["status"] == "completed" and response["incomplete_details"] is None
    (item,) = response["output"]
    assert item["type"] == "message" and item["role"] == "assistant" and item["status"] == "completed"
    assert item["id"].startswith("msg_")
    (part,) = item["content"]
    assert part["type"] == "output_text" and part["annotations"] == [] and part["text"]
    usage = response["usage"]
    assert usage["input_tokens"] == 8 + 4 + tokens("Be brief.")  # instructions count as a message
    assert usage["output_tokens"] == tokens(part["text"]) <= 40
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["input_tokens_details"]["cached_tokens"] == 0
    assert usage["output_tokens_details"] == {"reasoning_tokens": 0}
    # What the request said is echoed, as the spec's Response requires.
    assert response["instructions"] == "Be brief." and response["metadata"] == {"run": "7"}
    assert response["temperature"] == 0.2 and response["top_p"] == 1.0 and response["user"] == "u-1"
    assert (
        response["max_output_tokens"] == 40 and response["tools"] == [] and response["tool_choice"] == "auto"
    )
    assert response["text"] == {"format": {"type": "text"}, "verbosity": "medium"}
    assert response["parallel_tool_calls"] is True and response["store"] is True


def test_input_items_count_like_chat_messages() -> None:
    items = [
        {"role": "developer", "content": "dev"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "look"}]},
        {"role": "user", "content": [{"type": "input_image", "image_url": "data:,", "detail": "auto"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "ok", "annotations": []}]},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ]
    (r,) = post(instant(), body(items))
    assert r.status_code == 200, r.text
    expected = 3 + 6 * 4 + 1 + 1 + 85 + 1 + (1 + 1) + 2
    assert r.json()["usage"]["input_tokens"] == expected


def test_plain_text_is_what_chat_gives_and_the_seed_fixes_it() -> None:
    def text(seed: int, path: str = RESPONSES) -> str:
        payload = chat(max_tokens=40) if path == CHAT else body()
        (r,) = post(instant(seed=seed), payload, path=path)
        data = r.json()
        return str(
            data["choices"][0]["message"]["content"]
            if path == CHAT
            else data["output"][0]["content"][0]["text"]
        )

    assert text(3) == text(3) != text(4)
    assert text(3) == text(3, CHAT)  # the same draws as chat: the same arrival and budget, the same text


def test_the_output_budget_makes_a_response_incomplete() -> None:
    app = instant(completion_fraction=(1.0, 1.0))
    (r, streamed) = post(app, body(max_output_tokens=16), body(max_output_tokens=16, stream=True))
    response = r.json()
    assert_matches_spec("Response", response)
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["output"][0]["status"] == "incomplete"
    assert response["usage"]["output_tokens"] <= 16
    events = sse(streamed.text)
    assert events[-1]["type"] == "response.incomplete"  # the spec's terminal event for this case
    assert events[-1]["response"]["status"] == "incomplete"


def test_charges_input_plus_max_output_tokens_like_chat() -> None:
    app = instant(tpm=100)
    one, refused = post(app, body(max_output_tokens=60), body(max_output_tokens=40))
    assert one.status_code == 200 and refused.status_code == 429
    accepted = next(e for e in app.events if e["kind"] == "accepted")
    assert accepted["weight"] == 8 + 60 and accepted["detail"]["max_tokens"] == 60
    assert "Requested 48" in refused.json()["error"]["message"]
    default = instant()
    post(default, body(max_output_tokens=None))
    accepted = next(e for e in default.events if e["kind"] == "accepted")
    assert accepted["weight"] == 8 + ServerConfig().default_max_tokens  # as chat without max_tokens
    prompt_only = instant(token_charge="prompt")
    post(prompt_only, body())
    assert next(e for e in prompt_only.events if e["kind"] == "accepted")["weight"] == 8


def test_limits_headers_events_and_stats_are_chats() -> None:
    app = instant(rpm=2, tpm=10_000)

    async def main() -> list[httpx.Response]:
        async with client_for(app) as c:
            # One set of buckets: a chat request in between takes from the same requests bucket.
            return [
                await c.post(RESPONSES, json=body()),
                await c.post(CHAT, json=chat()),
                await c.post(RESPONSES, json=body()),
            ]

    first, _, refused = vrun(main())
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert "x-ratelimit-reset-tokens" in first.headers
    assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
    error = refused.json()["error"]
    assert error["type"] == "requests" and error["code"] == "rate_limit_exceeded"
    assert_matches_spec("ErrorResponse", refused.json())
    kinds = [e["kind"] for e in app.events]
    assert kinds == ["arrived", "accepted", "completed"] * 2 + ["arrived", "limited"]
    assert app.stats()["by_status"] == {"200": 2, "429": 1}


def test_the_json_reply_waits_for_its_latency() -> None:
    app = create_app(ServerConfig(ttft=0.5, per_token=0.01, jitter=0.0))

    async def main() -> tuple[float, httpx.Response]:
        loop = asyncio.get_running_loop()
        async with client_for(app) as c:
            r = await c.post(RESPONSES, json=body())
            return loop.time(), r

    elapsed, r = vrun(main())
    latency = next(e for e in app.events if e["kind"] == "accepted")["detail"]["latency"]
    assert elapsed == pytest.approx(latency) and latency == pytest.approx(
        0.5 + 0.01 * r.json()["usage"]["output_tokens"]
    )
    assert int(r.headers["openai-processing-ms"]) == round(1000 * latency)


# -- the stream -------------------------------------------------------------------------------------------


def test_a_stream_per_spec() -> None:
    (r,) = post(instant(), body(stream=True))
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse(r.text)
    assert without_deltas(events) == TEXT_EVENTS
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert len(deltas) > 3
    created, final = events[0]["response"], events[-1]["response"]
    assert created["status"] == "in_progress" and created["output"] == [] and "usage" not in created
    assert final["status"] == "completed" and created["id"] == final["id"]
    text = "".join(e["delta"] for e in deltas)
    done = next(e for e in events if e["type"] == "response.output_text.done")
    assert done["text"] == text == final["output"][0]["content"][0]["text"]
    item_id = final["output"][0]["id"]
    assert {e["item_id"] for e in events if "item_id" in e} == {item_id}
    assert final["usage"]["output_tokens"] == tokens(text)


def test_stream_events_are_sent_as_generated() -> None:
    # Driven through ASGI directly: httpx's ASGITransport hands over a body only once it is complete.
    app = create_app(ServerConfig(ttft=0.2, per_token=0.05, jitter=0.0))
    arrivals: list[tuple[float, str]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        payload = json.dumps(body(stream=True)).encode()

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": payload, "more_body": False}

        async def send(message: Any) -> None:
            if message["type"] == "http.response.body" and message["body"]:
                for block in message["body"].decode().split("\n\n")[:-1]:
                    arrivals.append((loop.time(), block.split("\n")[0].removeprefix("event: ")))

        await app({"type": "http", "method": "POST", "path": RESPONSES, "headers": []}, receive, send)

    vrun(main())
    assert arrivals[0] == (0.0, "response.created") and arrivals[1] == (0.0, "response.in_progress")
    assert arrivals[2][0] == pytest.approx(0.2) and arrivals[2][1] == "response.output_item.added"
    times = [t for t, _ in arrivals]
    assert times == sorted(times) and len(set(times)) > 5
    assert arrivals[-1][1] == "response.completed"


def test_faults_behave_as_on_chat() -> None:
    failing = instant(error_rate_500=1.0)
    plain, streamed = post(failing, body(), body(stream=True))
    assert plain.status_code == streamed.status_code == 500  # before any byte of the stream
    assert failing.events[-1]["kind"] == "failed" and failing.events[-1]["detail"]["code"] == "error_500"

    cut = instant(stream_cut_rate=1.0)
    (r,) = post(cut, body(max_output_tokens=200, stream=True))
    assert r.status_code == 200
    events = sse(r.text)
    types = [e["type"] for e in events]
    assert "response.completed" not in types and "response.output_text.done" not in types
    assert types[:2] == ["response.created", "response.in_progress"]
    failed = cut.events[-1]
    assert failed["kind"] == "failed" and failed["detail"]["code"] == "stream_cut"
    assert failed["detail"]["chunks_sent"] == types.count("response.output_text.delta")


# -- tools ------------------------------------------------------------------------------------------------


def test_tool_choice_required_calls_a_function_with_valid_arguments() -> None:
    app = instant()
    requests = [body(tools=[WEATHER, TIME], tool_choice="required") for _ in range(6)]
    for r in post(app, *requests):
        response = r.json()
        assert_matches_spec("Response", response)
        (call,) = response["output"]
        assert call["type"] == "function_call" and call["status"] == "completed"
        assert call["id"].startswith("fc_") and call["call_id"].startswith("call_")
        schema = WEATHER if call["name"] == "get_weather" else TIME
        arguments_valid(call["arguments"], schema["parameters"])
        assert response["usage"]["output_tokens"] == tokens(call["arguments"])
        assert response["tools"][0] == {**WEATHER}
    assert app.events[-1]["detail"]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("tool_choice", "extra_input", "kind"),
    [
        ({"type": "function", "name": "get_time"}, [], "function_call"),
        ("none", [], "message"),
        # The input answers a call: under "auto" the model replies in text and the agent loop ends.
        (
            "auto",
            [
                {"type": "function_call", "call_id": "call_9", "name": "get_time", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_9", "output": "noon"},
            ],
            "message",
        ),
    ],
)
def test_tool_choice(tool_choice: Any, extra_input: list[dict[str, Any]], kind: str) -> None:
    items = [{"role": "user", "content": "what time is it?"}, *extra_input]
    (r,) = post(instant(), body(items, tools=[WEATHER, TIME], tool_choice=tool_choice))
    (item,) = r.json()["output"]
    assert item["type"] == kind
    if kind == "function_call":
        assert item["name"] == "get_time"


def test_auto_calls_a_tool_at_the_configured_rate() -> None:
    def kinds(**config: Any) -> set[str]:
        return {r.json()["output"][0]["type"] for r in post(instant(**config), *[body(tools=[WEATHER])] * 12)}

    assert kinds() == {"function_call"}  # tool_call_rate 1.0, as on chat
    assert kinds(tool_call_rate=0.5) == {"function_call", "message"}
    assert kinds(tool_call_rate=0.0) == {"message"}


def test_parallel_calls_are_separate_items() -> None:
    replies = [r.json() for r in post(instant(), *[body(tools=[WEATHER, TIME], tool_choice="required")] * 16)]
    pairs = [reply for reply in replies if len(reply["output"]) == 2]
    assert pairs, "one time in four, a second call"
    for reply in pairs:
        first, second = reply["output"]
        assert {first["name"], second["name"]} == {"get_weather", "get_time"}
        assert first["call_id"] != second["call_id"] and first["id"] != second["id"]
        assert reply["usage"]["output_tokens"] == tokens(first["arguments"]) + tokens(second["arguments"])
    serial = body(tools=[WEATHER, TIME], tool_choice="required", parallel_tool_calls=False)
    assert all(len(r.json()["output"]) == 1 for r in post(instant(), *[serial] * 16))


def test_two_calls_stream_one_item_after_the_other() -> None:
    payloads = [body(stream=True, tools=[WEATHER, TIME], tool_choice="required") for _ in range(16)]
    streams = [sse(r.text) for r in post(instant(), *payloads)]
    events = next(s for s in streams if s[-1]["response"]["output"][1:])
    item_events = [e["type"] for e in events if not e["type"].endswith(".delta")][2:-1]
    assert item_events == CALL_EVENTS[2:-1] * 2
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.added"] == [0, 1]
    for index, item in enumerate(events[-1]["response"]["output"]):
        deltas = [
            e["delta"] for e in events if e["type"].endswith("arguments.delta") and e["output_index"] == index
        ]
        assert "".join(deltas) == item["arguments"]


def test_a_function_call_streams_its_arguments() -> None:
    (r,) = post(instant(), body(stream=True, tools=[WEATHER], tool_choice="required"))
    events = sse(r.text)
    assert without_deltas(events) == CALL_EVENTS
    added = events[2]["item"]
    assert added["type"] == "function_call" and added["arguments"] == "" and added["status"] == "in_progress"
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    done = events[-3]
    assert done["arguments"] == deltas and done["name"] == "get_weather" and done["item_id"] == added["id"]
    arguments_valid(deltas, WEATHER["parameters"])
    assert events[-1]["response"]["output"][0]["arguments"] == deltas


def test_structured_output_follows_the_schema() -> None:
    schema = WEATHER["parameters"]
    fmt = {"type": "json_schema", "name": "weather", "schema": schema, "strict": True}
    plain, streamed = post(instant(), body(text={"format": fmt}), body(text={"format": fmt}, stream=True))
    response = plain.json()
    assert_matches_spec("Response", response)
    arguments_valid(response["output"][0]["content"][0]["text"], schema)
    assert response["text"]["format"] == fmt
    done = next(e for e in sse(streamed.text) if e["type"] == "response.output_text.done")
    arguments_valid(done["text"], schema)


def test_json_mode_needs_the_word_and_follows_a_schema_in_the_prompt() -> None:
    fmt = {"format": {"type": "json_object"}}
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    prompt = f"Answer in JSON following {json.dumps(schema)}"
    refused, schemaless, guided = post(
        instant(), body(text=fmt), body("reply in json", text=fmt), body(prompt, text=fmt)
    )
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "input"
    assert isinstance(json.loads(schemaless.json()["output"][0]["content"][0]["text"]), dict)
    assert isinstance(json.loads(guided.json()["output"][0]["content"][0]["text"])["n"], int)


def test_previous_response_id_names_a_stored_response() -> None:
    app = instant()
    first, unstored = post(app, body(), body(store=False))
    follow_ups = [
        body("and then?", previous_response_id=first.json()["id"]),
        body("and then?", previous_response_id=unstored.json()["id"]),
        {"model": "gpt-4o-mini", "previous_response_id": first.json()["id"]},  # no input: it continues
    ]
    ok, unknown, no_input = post(app, *follow_ups)
    assert ok.status_code == 200 and ok.json()["previous_response_id"] == first.json()["id"]
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "previous_response_not_found"
    assert no_input.status_code == 200


# -- bad input --------------------------------------------------------------------------------------------

BAD: list[tuple[dict[str, Any] | bytes, int, str | None, str | None]] = [
    (b"{", 400, "invalid_json", None),
    ({"input": "hi"}, 400, "missing_required_parameter", "model"),
    ({"model": 5, "input": "hi"}, 400, "invalid_type", "model"),
    ({"model": "gpt-4o-mini"}, 400, "missing_required_parameter", "input"),
    ({"model": "nope", "input": "hi"}, 404, "model_not_found", None),
    ({"model": "text-embedding-3-small", "input": "hi"}, 400, "invalid_value", "model"),
    (body(messages=[]), 400, "unknown_parameter", "messages"),
    (body(response_format={"type": "json_object"}), 400, "unknown_parameter", "response_format"),
    (body(max_tokens=10), 400, "unknown_parameter", "max_tokens"),
    (body(frobnicate=1), 400, "unknown_parameter", "frobnicate"),
    (body(5), 400, "invalid_type", "input"),
    (body([]), 400, "empty_array", "input"),
    (body([5]), 400, "invalid_type", "input[0]"),
    (body([{"role": "robot", "content": "x"}]), 400, "invalid_value", "input[0].role"),
    (body([{"role": "user"}]), 400, "missing_required_parameter", "input[0].content"),
    (body([{"role": "user", "content": 3}]), 400, "invalid_type", "input[0].content"),
    (body([{"role": "user", "content": []}]), 400, "empty_array", "input[0].content"),
    (
        body([{"role": "user", "content": [{"type": "text", "text": "x"}]}]),
        400,
        "invalid_value",
        "input[0].content[0].type",
    ),
    (
        body([{"role": "user", "content": [{"type": "input_text"}]}]),
        400,
        "missing_required_parameter",
        "input[0].content[0].text",
    ),
    (
        body([{"type": "function_call_output", "output": "x"}]),
        400,
        "missing_required_parameter",
        "input[0].call_id",
    ),
    (
        body([{"type": "function_call_output", "call_id": "c1", "output": "x"}]),
        400,
        "invalid_value",
        "input[0].call_id",
    ),
    (
        body([{"type": "function_call", "call_id": "c1", "name": "f"}]),
        400,
        "missing_required_parameter",
        "input[0].arguments",
    ),
    (body([{"type": "web_search_call", "id": "ws_1"}]), 400, "unsupported_value", "input[0].type"),
    (body([{"type": "item_reference", "id": "msg_1"}]), 400, "unsupported_value", "input[0].type"),
    (body(instructions=["x"]), 400, "invalid_type", "instructions"),
    (body(max_output_tokens=15), 400, "integer_below_min_value", "max_output_tokens"),
    (body(max_output_tokens=100_000), 400, "invalid_value", "max_output_tokens"),
    (body(max_output_tokens="40"), 400, "invalid_type", "max_output_tokens"),
    (body(temperature=3), 400, "decimal_above_max_value", "temperature"),
    (body(top_p="high"), 400, "invalid_type", "top_p"),
    (body(stream="yes"), 400, "invalid_type", "stream"),
    (body(stream_options={}), 400, "invalid_value", "stream_options"),
    (body(store=1), 400, "invalid_type", "store"),
    (body(metadata={"k": 1}), 400, "invalid_type", "metadata.k"),
    (body(metadata=[]), 400, "invalid_type", "metadata"),
    (body(user=7), 400, "invalid_type", "user"),
    (body(tools={}), 400, "invalid_type", "tools"),
    (body(tools=[{"type": "web_search"}]), 400, "unsupported_value", "tools[0].type"),
    (body(tools=[{"type": "function"}]), 400, "missing_required_parameter", "tools[0].name"),
    (body(tools=[{**WEATHER, "name": "has space"}]), 400, "invalid_value", "tools[0].name"),
    (body(tools=[WEATHER, WEATHER]), 400, "invalid_value", "tools[1].name"),
    (body(tools=[{**WEATHER, "parameters": "x"}]), 400, "invalid_type", "tools[0].parameters"),
    (
        body(tools=[{**WEATHER, "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}]),
        400,
        "invalid_function_parameters",
        "tools[0].parameters",
    ),
    (body(tool_choice="sometimes"), 400, "invalid_value", "tool_choice"),
    (body(tool_choice="required"), 400, "invalid_value", "tool_choice"),
    (
        body(tools=[WEATHER], tool_choice={"type": "function", "name": "other"}),
        400,
        "invalid_value",
        "tool_choice.name",
    ),
    (
        body(tools=[WEATHER], tool_choice={"type": "web_search_preview"}),
        400,
        "unsupported_value",
        "tool_choice.type",
    ),
    (body(text="json"), 400, "invalid_type", "text"),
    (body(text={"format": {"type": "xml"}}), 400, "invalid_value", "text.format.type"),
    (
        body(text={"format": {"type": "json_schema", "schema": {}}}),
        400,
        "missing_required_parameter",
        "text.format.name",
    ),
    (
        body(text={"format": {"type": "json_schema", "name": "x"}}),
        400,
        "missing_required_parameter",
        "text.format.schema",
    ),
    (
        body(
            text={
                "format": {"type": "json_schema", "name": "x", "strict": True, "schema": {"type": "string"}}
            }
        ),
        400,
        "invalid_json_schema",
        "text.format.schema",
    ),
    (body(previous_response_id="resp_nope"), 400, "previous_response_not_found", "previous_response_id"),
    (body(conversation="conv_1"), 400, "unsupported_value", "conversation"),
    (body(background=True), 400, "unsupported_value", "background"),
    (body(reasoning="high"), 400, "invalid_type", "reasoning"),
    (body("x" * 600_000), 400, "context_length_exceeded", "input"),
    (body(temperature=10**400), 400, "decimal_above_max_value", "temperature"),  # no float overflow
    (
        body(
            text={
                "format": {
                    "type": "json_schema",
                    "name": "x",
                    "schema": {"type": "integer", "minimum": 10**400},
                }
            }
        ),
        400,
        "invalid_json_schema",
        "text.format.schema",
    ),
    (
        body(
            tools=[
                {
                    **WEATHER,
                    "strict": False,
                    "parameters": {"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]},
                }
            ]
        ),
        400,
        "invalid_function_parameters",
        "tools[0].parameters",
    ),
]


@pytest.mark.parametrize(("payload", "status", "code", "param"), BAD)
def test_bad_input_is_a_4xx_naming_the_param(
    payload: dict[str, Any] | bytes, status: int, code: str, param: str | None
) -> None:
    app = instant(tpm=1)  # nothing could be admitted: a 4xx must come before the limits

    async def main() -> httpx.Response:
        async with client_for(app) as c:
            if isinstance(payload, bytes):
                return await c.post(RESPONSES, content=payload)
            return await c.post(RESPONSES, json=payload)

    r = vrun(main())
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert (error["code"], error["param"]) == (code, param), error["message"]
    assert_matches_spec("ErrorResponse", r.json())
    assert [e["kind"] for e in app.events] == ["arrived", "rejected"]


def test_chat_fields_are_told_where_they_moved() -> None:
    (r,) = post(instant(), body(response_format={"type": "json_object"}))
    assert "moved to 'text.format'" in r.json()["error"]["message"]


def test_the_accepted_fields_are_the_specs() -> None:
    yaml = pytest.importorskip("yaml")
    if not SPEC.exists():
        pytest.skip(f"the OpenAPI spec is not at {SPEC}")
    with SPEC.open() as f:
        schemas = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["components"]["schemas"]

    def properties(name: str) -> set[str]:
        out: set[str] = set()
        for part in schemas[name].get("allOf", [schemas[name]]):
            if "$ref" in part:
                out |= properties(part["$ref"].rsplit("/", 1)[-1])
            else:
                out |= set(part.get("properties", {}))
                assert part.get("additionalProperties") is not False  # checked: the spec leaves it open
        return out

    assert properties("CreateResponse") == CREATE_RESPONSE_FIELDS


def test_every_ignored_spec_field_is_accepted() -> None:
    extra = {
        "include": ["message.output_text.logprobs"],
        "reasoning": {"effort": "low"},
        "truncation": "disabled",
        "service_tier": "auto",
        "prompt_cache_key": "k",
        "safety_identifier": "s",
        "top_logprobs": 2,
        "max_tool_calls": 3,
        "parallel_tool_calls": False,
        "text": {"verbosity": "low"},
    }
    (r,) = post(instant(), body(**extra))
    assert r.status_code == 200, r.text
    assert_matches_spec("Response", r.json())
    assert r.json()["parallel_tool_calls"] is False and r.json()["text"]["verbosity"] == "low"


# -- the official SDK -------------------------------------------------------------------------------------


def test_sdk_create_stream_and_helper() -> None:
    app = instant()

    async def main() -> dict[str, Any]:
        async with sdk_client(app) as client:
            created = await client.responses.create(model="gpt-5-mini", input="hi", max_output_tokens=50)
            stream = await client.responses.create(
                model="gpt-4.1",
                instructions="Be brief.",
                input=[{"role": "user", "content": "hi"}],
                stream=True,
            )
            raw = [event async for event in stream]
            async with client.responses.stream(model="gpt-4o", input="hello", max_output_tokens=30) as helper:
                helped = [event async for event in helper]
                final = await helper.get_final_response()
            return {"created": created, "raw": raw, "helped": helped, "final": final}

    out = vrun(main())
    created = out["created"]
    assert created.output_text and created.status == "completed" and created.id.startswith("resp_")
    assert created.usage.output_tokens == tokens(created.output_text)
    assert created.usage.input_tokens == 8 and created.usage.output_tokens_details.reasoning_tokens == 0
    raw = out["raw"]
    assert [e.type for e in raw if not e.type.endswith(".delta")] == TEXT_EVENTS
    assert raw[-1].response.output_text == "".join(
        e.delta for e in raw if e.type == "response.output_text.delta"
    )
    helped, final = out["helped"], out["final"]
    assert [e.type for e in helped if not e.type.endswith(".delta")] == TEXT_EVENTS
    assert helped[-2].type == "response.output_item.done"
    snapshots = [e.snapshot for e in helped if e.type == "response.output_text.delta"]
    assert snapshots[-1] == final.output_text and final.status == "completed"


def test_sdk_parse_structured_output() -> None:
    class Weather(pydantic.BaseModel):
        city: str
        celsius: float
        tags: list[str]
        kind: str | None

    async def main() -> Any:
        async with sdk_client(instant()) as client:
            parsed = await client.responses.parse(model="gpt-4o", input="weather?", text_format=Weather)
            async with client.responses.stream(
                model="gpt-4o", input="weather?", text_format=Weather
            ) as stream:
                streamed = await stream.get_final_response()
            return parsed, streamed

    parsed, streamed = vrun(main())
    assert isinstance(parsed.output_parsed, Weather) and isinstance(streamed.output_parsed, Weather)


def test_sdk_function_call_round_trip() -> None:
    async def main() -> tuple[Any, Any]:
        async with sdk_client(instant()) as client:
            tools: Any = [WEATHER]
            first = await client.responses.create(
                model="gpt-4o", input="weather in Paris?", tools=tools, tool_choice="required"
            )
            (call,) = first.output
            second = await client.responses.create(
                model="gpt-4o",
                previous_response_id=first.id,
                input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
                tools=tools,
            )
            return first, second

    first, second = vrun(main())
    (call,) = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    arguments_valid(call.arguments, WEATHER["parameters"])
    assert second.output[0].type == "message" and second.output_text


def test_sdk_rate_limit_error_with_headers() -> None:
    openai = pytest.importorskip("openai")
    app = instant(rpm=1)

    async def main() -> Any:
        async with sdk_client(app, retries=0) as client:
            await client.responses.create(model="gpt-4o-mini", input="hi")
            with pytest.raises(openai.RateLimitError) as caught:
                await client.responses.create(model="gpt-4o-mini", input="hi")
            return caught.value

    error = vrun(main())
    assert error.status_code == 429 and error.code == "rate_limit_exceeded"
    assert error.response.headers["retry-after"] == "60"
    assert error.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_sdk_bad_request() -> None:
    openai = pytest.importorskip("openai")

    async def main() -> Any:
        async with sdk_client(instant()) as client:
            with pytest.raises(openai.BadRequestError) as caught:
                await client.responses.create(model="gpt-4o-mini", input="hi", max_output_tokens=8)
            return caught.value

    assert vrun(main()).param == "max_output_tokens"


# -- the real server --------------------------------------------------------------------------------------


@pytest.mark.server
def test_real_server_streams_through_the_sdk() -> None:
    openai = pytest.importorskip("openai")
    with real_server("--ttft", "0.05", "--per-token", "0.002", "--rpm", "600", "--seed", "2") as (base, _):

        async def main() -> tuple[list[Any], Any]:
            async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="x", max_retries=0) as client:
                stream = await client.responses.create(
                    model="gpt-4o-mini", input="Say something.", max_output_tokens=60, stream=True
                )
                events = [event async for event in stream]
                async with client.responses.stream(
                    model="gpt-4o-mini", input="weather?", tools=[WEATHER], tool_choice="required"
                ) as helper:
                    final = await helper.get_final_response()
                return events, final

        events, final = asyncio.run(main())
        stats = httpx.get(base + "/stats").json()
    assert [e.type for e in events if not e.type.endswith(".delta")] == TEXT_EVENTS
    assert events[-1].response.output_text
    assert [e.sequence_number for e in events] == list(range(len(events)))
    (call,) = final.output
    arguments_valid(call.arguments, WEATHER["parameters"])
    assert stats["by_status"]["200"] == 2


def test_a_tool_without_strict_is_normalized_into_strict_mode() -> None:
    # OpenAI's guide: omit `strict` and Responses makes the schema strict where it can (all properties
    # required, none additional); strict: false keeps it as given; a schema strict mode cannot express
    # stays non-strict.
    loose = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
    unexpressible = {"type": "object", "properties": {"a": {"not": {"type": "null"}}}}
    tools = [
        {"type": "function", "name": "loose", "parameters": loose},
        {"type": "function", "name": "opt_out", "parameters": loose, "strict": False},
        {"type": "function", "name": "odd", "parameters": unexpressible},
    ]
    (r,) = post(instant(), body(tools=tools, tool_choice={"type": "function", "name": "loose"}))
    response = r.json()
    normalized, opt_out, odd = response["tools"]
    assert normalized["strict"] is True
    assert normalized["parameters"] == {**loose, "additionalProperties": False, "required": ["a", "b"]}
    assert opt_out["strict"] is False and opt_out["parameters"] == loose
    assert odd["strict"] is False and odd["parameters"] == unexpressible
    assert set(json.loads(response["output"][0]["arguments"])) == {"a", "b"}


def test_a_function_without_parameters_is_called_with_an_empty_object() -> None:
    (r,) = post(instant(), body(tools=[{"type": "function", "name": "ping"}], tool_choice="required"))
    response = r.json()
    assert_matches_spec("Response", response)
    assert response["output"][0]["arguments"] == "{}" and response["tools"][0]["parameters"] is None
