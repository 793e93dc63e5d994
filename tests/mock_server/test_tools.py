"""Tools and structured outputs on ``POST /v1/chat/completions``, driven by the official openai SDK.

``tool_choice`` required / named / auto / none, parallel calls, ``response_format`` json_schema and
json_object, streaming of both (through the SDK's own stream helpers, which accumulate the deltas), the
400s for bad schemas and bad choices, ``finish_reason: length``, and that it is all seeded, charged and
recorded like any chat request. Every body is checked against the official spec's response schemas.
"""

from __future__ import annotations

import datetime
import enum
import json
from typing import Any, Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from mock_server import MockServerApp
from tests.mock_server.helpers import (
    CHAT,
    assert_matches_spec,
    chat,
    chunks_of,
    client_for,
    instant,
    sdk_client,
    vrun,
)

openai = pytest.importorskip("openai")

WEATHER_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "unit", "days"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather",
        "parameters": WEATHER_PARAMS,
        "strict": True,
    },
}
TIME_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {"zone": {"type": "string"}},
    "required": ["zone"],
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": TIME_PARAMS}}
PARAMS = {"get_weather": WEATHER_PARAMS, "get_time": TIME_PARAMS}


def post(app: MockServerApp, *bodies: dict[str, Any]) -> list[Any]:
    async def main() -> list[Any]:
        async with client_for(app) as c:
            return [await c.post(CHAT, json=b) for b in bodies]

    return vrun(main())


def check_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool calls of a message, each checked: id, type, a known name, arguments valid JSON per schema."""
    assert message["content"] is None
    calls = message["tool_calls"]
    assert calls
    for call in calls:
        assert call["id"].startswith("call_") and call["type"] == "function"
        jsonschema.validate(json.loads(call["function"]["arguments"]), PARAMS[call["function"]["name"]])
    return calls


# -- tool_choice ----------------------------------------------------------------------------------------


def test_required_gives_tool_calls_per_spec() -> None:
    (r,) = post(instant(), chat(tools=[WEATHER, TIME], tool_choice="required", max_tokens=100))
    assert r.status_code == 200, r.text
    body = r.json()
    assert_matches_spec("CreateChatCompletionResponse", body)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    calls = check_calls(choice["message"])
    tokens = sum(-(-len(c["function"]["arguments"]) // 4) for c in calls)
    assert body["usage"]["completion_tokens"] == tokens


def test_a_named_function_is_the_one_called_once() -> None:
    choice = {"type": "function", "function": {"name": "get_time"}}
    responses = post(instant(), *[chat(tools=[WEATHER, TIME], tool_choice=choice) for _ in range(10)])
    for r in responses:
        calls = check_calls(r.json()["choices"][0]["message"])
        assert [c["function"]["name"] for c in calls] == ["get_time"]


def test_auto_calls_by_default_and_answers_after_a_tool_result() -> None:
    app = instant()
    after = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    body = chat(tools=[WEATHER], max_tokens=100)
    first, second = post(app, body, {**body, "messages": after})
    assert first.json()["choices"][0]["finish_reason"] == "tool_calls"
    message = second.json()["choices"][0]["message"]
    assert isinstance(message["content"], str) and "tool_calls" not in message


def test_auto_follows_the_configured_rate() -> None:
    body = chat(tools=[WEATHER], tool_choice="auto", max_tokens=100)
    never = post(instant(tool_call_rate=0.0), *[body] * 20)
    assert all(r.json()["choices"][0]["finish_reason"] in ("stop", "length") for r in never)
    half = post(instant(tool_call_rate=0.5), *[body] * 60)
    called = sum(r.json()["choices"][0]["finish_reason"] == "tool_calls" for r in half)
    assert 15 < called < 45


def test_none_answers_in_text() -> None:
    (r,) = post(instant(), chat(tools=[WEATHER], tool_choice="none"))
    message = r.json()["choices"][0]["message"]
    assert isinstance(message["content"], str) and "tool_calls" not in message


def test_parallel_calls_sometimes_and_never_when_off() -> None:
    bodies = [chat(tools=[WEATHER, TIME], tool_choice="required", max_tokens=200)] * 40
    counts = [len(r.json()["choices"][0]["message"]["tool_calls"]) for r in post(instant(), *bodies)]
    assert set(counts) == {1, 2}
    off = [{**b, "parallel_tool_calls": False} for b in bodies]
    assert {len(r.json()["choices"][0]["message"]["tool_calls"]) for r in post(instant(), *off)} == {1}


def test_allowed_tools_narrow_the_choice() -> None:
    choice = {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "required",
            "tools": [{"type": "function", "function": {"name": "get_time"}}],
        },
    }
    for r in post(instant(), *[chat(tools=[WEATHER, TIME], tool_choice=choice)] * 10):
        assert {c["function"]["name"] for c in check_calls(r.json()["choices"][0]["message"])} == {"get_time"}


def test_n_choices_each_decide() -> None:
    (r,) = post(instant(tool_call_rate=0.5), chat(tools=[WEATHER], n=16, max_tokens=100))
    body = r.json()
    assert_matches_spec("CreateChatCompletionResponse", body)
    reasons = {c["finish_reason"] for c in body["choices"]}
    assert "tool_calls" in reasons and reasons & {"stop", "length"}


def test_out_of_tokens_the_arguments_are_cut_and_the_reason_is_length() -> None:
    (r,) = post(instant(), chat(tools=[WEATHER], tool_choice="required", max_tokens=3))
    body = r.json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "length"
    arguments = choice["message"]["tool_calls"][0]["function"]["arguments"]
    assert len(arguments) == 12 and body["usage"]["completion_tokens"] == 3
    with pytest.raises(json.JSONDecodeError):
        json.loads(arguments)


# -- streaming ------------------------------------------------------------------------------------------


def test_a_tool_call_streams_as_openai_sends_it() -> None:
    body = chat(tools=[WEATHER], tool_choice="required", stream=True, stream_options={"include_usage": True})
    (r,) = post(instant(), {**body, "max_tokens": 100})
    chunks = chunks_of(r.text)
    for chunk in chunks:
        assert_matches_spec("CreateChatCompletionStreamResponse", chunk)
    first = chunks[0]["choices"][0]["delta"]
    assert first["role"] == "assistant" and first["content"] is None
    (head,) = first["tool_calls"]
    assert head["index"] == 0 and head["id"].startswith("call_") and head["type"] == "function"
    assert head["function"] == {"name": "get_weather", "arguments": ""}
    fragments = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[1:-2]]
    assert all(set(f) == {"index", "function"} and set(f["function"]) == {"arguments"} for f in fragments)
    arguments = "".join(f["function"]["arguments"] for f in fragments)
    jsonschema.validate(json.loads(arguments), WEATHER_PARAMS)
    assert chunks[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == -(-len(arguments) // 4)


def test_sdk_stream_helper_accumulates_tool_calls() -> None:
    class GetWeather(BaseModel):
        city: str
        unit: Literal["celsius", "fahrenheit"]

    async def main() -> Any:
        async with (
            sdk_client(instant()) as client,
            client.chat.completions.stream(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "weather in Paris?"}],
                tools=[openai.pydantic_function_tool(GetWeather)],
                tool_choice="required",
                max_tokens=200,
            ) as stream,
        ):
            kinds = [event.type async for event in stream]
            return kinds, await stream.get_final_completion()

    kinds, final = vrun(main())
    assert "tool_calls.function.arguments.delta" in kinds and "tool_calls.function.arguments.done" in kinds
    (call,) = final.choices[0].message.tool_calls[:1]
    assert final.choices[0].finish_reason == "tool_calls"
    assert isinstance(call.function.parsed_arguments, GetWeather)


# -- response_format ------------------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str
    zip_code: str = Field(pattern=r"^\d{5}$")


class Person(BaseModel):
    name: str
    age: int = Field(ge=0, le=130)
    height: float
    favourite: Color
    born: datetime.date
    nickname: str | None
    tags: list[str]
    address: Address
    friends: list[Address] = Field(max_length=2)


def test_parse_gives_a_pydantic_model() -> None:
    async def main() -> list[Any]:
        async with sdk_client(instant(), retries=0) as client:
            return [
                await client.chat.completions.parse(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": "Invent a person."}],
                    response_format=Person,
                    max_tokens=1000,
                )
                for _ in range(10)
            ]

    for completion in vrun(main()):
        message = completion.choices[0].message
        assert isinstance(message.parsed, Person)
        assert completion.choices[0].finish_reason == "stop"


def test_parse_with_too_few_tokens_raises_length_finish_reason_error() -> None:
    async def main() -> None:
        async with sdk_client(instant()) as client:
            await client.chat.completions.parse(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Invent a person."}],
                response_format=Person,
                max_tokens=5,
            )

    with pytest.raises(openai.LengthFinishReasonError):
        vrun(main())


def test_a_json_schema_reply_matches_the_spec_and_the_schema() -> None:
    format_ = {
        "type": "json_schema",
        "json_schema": {"name": "weather", "schema": WEATHER_PARAMS, "strict": True},
    }
    (r,) = post(instant(), chat(response_format=format_, max_tokens=100))
    body = r.json()
    assert_matches_spec("CreateChatCompletionResponse", body)
    jsonschema.validate(json.loads(body["choices"][0]["message"]["content"]), WEATHER_PARAMS)


def test_sdk_stream_helper_parses_a_schema_reply() -> None:
    async def main() -> Any:
        async with (
            sdk_client(instant()) as client,
            client.chat.completions.stream(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Invent a person."}],
                response_format=Person,
                max_tokens=1000,
            ) as stream,
        ):
            kinds = [event.type async for event in stream]
            return kinds, await stream.get_final_completion()

    kinds, final = vrun(main())
    assert kinds.count("content.delta") > 3 and "content.done" in kinds
    assert isinstance(final.choices[0].message.parsed, Person)


def test_a_streamed_schema_reply_is_content_deltas_of_the_json() -> None:
    format_ = {"type": "json_schema", "json_schema": {"name": "weather", "schema": WEATHER_PARAMS}}
    (r,) = post(instant(), chat(response_format=format_, stream=True, max_tokens=100))
    chunks = chunks_of(r.text)
    for chunk in chunks:
        assert_matches_spec("CreateChatCompletionStreamResponse", chunk)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    jsonschema.validate(json.loads(text), WEATHER_PARAMS)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_json_mode_needs_the_word_json() -> None:
    bad, good = post(
        instant(),
        chat("Give me an object.", response_format={"type": "json_object"}),
        chat("Answer in JSON.", response_format={"type": "json_object"}),
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "messages" and "json" in bad.json()["error"]["message"]
    assert isinstance(json.loads(good.json()["choices"][0]["message"]["content"]), dict)


def test_json_mode_follows_the_schema_the_prompt_gives() -> None:
    prompt = f"Reply in JSON following this schema: {json.dumps(WEATHER_PARAMS)}"
    for r in post(instant(), *[chat(prompt, response_format={"type": "json_object"}, max_tokens=100)] * 5):
        jsonschema.validate(json.loads(r.json()["choices"][0]["message"]["content"]), WEATHER_PARAMS)


def test_text_format_is_plain_text() -> None:
    (plain,) = post(instant(), chat())
    (text,) = post(instant(), chat(response_format={"type": "text"}))
    assert plain.json()["choices"] == text.json()["choices"]  # the same draws as without it


# -- bad input: OpenAI-shaped 400s -----------------------------------------------------------------------


def _tool(parameters: Any, strict: bool | None = None, name: str = "f") -> dict[str, Any]:
    function: dict[str, Any] = {"name": name, "parameters": parameters}
    if strict is not None:
        function["strict"] = strict
    return {"type": "function", "function": function}


LOOSE = {"type": "object", "properties": {"a": {"type": "string"}}}


@pytest.mark.parametrize(
    ("extra", "param", "code", "words"),
    [
        ({"tools": {}}, "tools", "invalid_type", "array"),
        ({"tools": []}, "tools", "empty_array", "empty"),
        ({"tools": [{"type": "browser"}]}, "tools[0].type", "invalid_value", "browser"),
        ({"tools": [{"type": "function"}]}, "tools[0].function", "missing_required_parameter", "function"),
        ({"tools": [_tool(LOOSE, name="bad name")]}, "tools[0].function.name", "invalid_value", "pattern"),
        (
            {"tools": [_tool({"type": "object", "properties": {"a": {"type": "text"}}})]},
            "tools[0].function.parameters",
            "invalid_function_parameters",
            "properties.a.type",
        ),
        (
            {"tools": [_tool(LOOSE, strict=True)]},
            "tools[0].function.parameters",
            "invalid_function_parameters",
            "additionalProperties",
        ),
        (
            {"tools": [_tool({"type": "string"})]},
            "tools[0].function.parameters",
            "invalid_function_parameters",
            "type",
        ),
        ({"tools": [_tool(LOOSE)], "tool_choice": "sometimes"}, "tool_choice", "invalid_value", "sometimes"),
        (
            {"tools": [_tool(LOOSE)], "tool_choice": {"type": "function", "function": {"name": "g"}}},
            "tool_choice",
            "invalid_value",
            "'g'",
        ),
        ({"tool_choice": "required"}, "tool_choice", "invalid_value", "only allowed when 'tools'"),
        (
            {"tools": [_tool(LOOSE)], "parallel_tool_calls": "yes"},
            "parallel_tool_calls",
            "invalid_type",
            "boolean",
        ),
        ({"response_format": "json"}, "response_format", "invalid_type", "object"),
        ({"response_format": {"type": "yaml"}}, "response_format.type", "invalid_value", "yaml"),
        (
            {"response_format": {"type": "json_schema"}},
            "response_format.json_schema",
            "missing_required_parameter",
            "json_schema",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": LOOSE}}},
            "response_format.json_schema.name",
            "missing_required_parameter",
            "name",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": LOOSE, "strict": True},
                }
            },
            "response_format.json_schema.schema",
            "invalid_json_schema",
            "Invalid schema for response_format 'x'",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"$ref": "#/$defs/A"}},
                }
            },
            "response_format.json_schema.schema",
            "invalid_json_schema",
            "$ref",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "x",
                        "schema": {"type": "object", "properties": {"me": {"$ref": "#"}}, "required": ["me"]},
                    },
                }
            },
            "response_format.json_schema.schema",
            "invalid_json_schema",
            "no finite value",
        ),
        (
            {
                "tools": [
                    _tool(
                        {
                            "type": "object",
                            "properties": {"a": {"type": "array", "minItems": 10**9}},
                            "required": ["a"],
                        }
                    )
                ]
            },
            "tools[0].function.parameters",
            "invalid_function_parameters",
            "too large",
        ),
    ],
)
def test_bad_tools_and_formats_are_400s_naming_the_field(
    extra: dict[str, Any], param: str, code: str, words: str
) -> None:
    app = instant()
    (r,) = post(app, chat(**extra))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param and error["code"] == code
    assert words in error["message"]
    assert [e["kind"] for e in app.events] == ["arrived", "rejected"]  # never charged


def test_the_sdk_raises_bad_request_for_a_bad_schema() -> None:
    tools: Any = [_tool({"type": "object", "properties": {"a": {"type": 3}}})]

    async def main() -> None:
        async with sdk_client(instant()) as client:
            await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], tools=tools
            )

    with pytest.raises(openai.BadRequestError) as info:
        vrun(main())
    assert info.value.param == "tools[0].function.parameters"


# -- seeded, charged, recorded ----------------------------------------------------------------------------


def test_same_seed_and_order_same_calls_and_content() -> None:
    format_ = {"type": "json_schema", "json_schema": {"name": "w", "schema": WEATHER_PARAMS}}
    bodies = [
        chat(tools=[WEATHER, TIME], tool_choice="required"),
        chat(response_format=format_, max_tokens=80),
    ]

    def run(seed: int) -> list[Any]:
        return [r.json()["choices"] for r in post(instant(seed=seed), *bodies)]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_tool_requests_are_charged_and_recorded_like_any_chat() -> None:
    app = instant(tpm=1000)
    (r,) = post(app, chat(tools=[WEATHER], tool_choice="required", max_tokens=50))
    assert r.headers["x-ratelimit-remaining-tokens"] == str(1000 - 8 - 50)
    kinds = [e["kind"] for e in app.events]
    assert kinds == ["arrived", "accepted", "completed"]
    accepted, completed = app.events[1], app.events[2]
    assert accepted["detail"]["tool_choice"] == "required" and accepted["weight"] == 58
    assert completed["detail"]["finish_reason"] == "tool_calls" and completed["detail"]["tool_calls"] == 1
    assert completed["detail"]["completion_tokens"] == r.json()["usage"]["completion_tokens"]


def test_n_streams_of_tool_calls_carry_their_index() -> None:
    body = chat(tools=[WEATHER, TIME], tool_choice="required", n=3, stream=True, max_tokens=200)
    (r,) = post(instant(), body)
    chunks = chunks_of(r.text)
    for chunk in chunks:
        assert_matches_spec("CreateChatCompletionStreamResponse", chunk)
    for index in range(3):
        deltas = [c["choices"][0] for c in chunks if c["choices"][0]["index"] == index]
        calls: dict[int, dict[str, Any]] = {}
        for delta in deltas:
            for part in delta["delta"].get("tool_calls", []):
                call = calls.setdefault(part["index"], {"arguments": ""})
                if "id" in part:
                    call["name"] = part["function"]["name"]
                call["arguments"] += part["function"]["arguments"]
        assert deltas[-1]["finish_reason"] == "tool_calls"
        for call in calls.values():
            jsonschema.validate(json.loads(call["arguments"]), PARAMS[call["name"]])


def test_sdk_parse_with_a_pydantic_tool_gives_parsed_arguments() -> None:
    class GetWeather(BaseModel):
        city: str
        days: int = Field(ge=1, le=7)

    async def main() -> Any:
        async with sdk_client(instant()) as client:
            return await client.chat.completions.parse(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "weather?"}],
                tools=[openai.pydantic_function_tool(GetWeather)],
                tool_choice={"type": "function", "function": {"name": "GetWeather"}},
            )

    completion = vrun(main())
    (call,) = completion.choices[0].message.tool_calls
    assert isinstance(call.function.parsed_arguments, GetWeather)
