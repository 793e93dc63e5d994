"""langchain-openai against the mock: ``with_structured_output`` (all three methods) and ``bind_tools``.

These are the calls that used to fail silently (the function-calling path returned ``None`` on lorem
text). In-process through ``http_async_client`` on virtual time, and once against the real server on
127.0.0.1 (marked ``server``).
"""

from __future__ import annotations

import json
from typing import Any, Literal

import httpx
import jsonschema
import pytest
from pydantic import BaseModel, Field

from mock_server import MockServerApp
from tests.mock_server.helpers import instant, real_server, vrun

langchain_openai = pytest.importorskip("langchain_openai")
messages_module = pytest.importorskip("langchain_core.messages")
parsers = pytest.importorskip("langchain_core.output_parsers")


class Movie(BaseModel):
    """A film, as the model remembers it."""

    title: str = Field(description="the title")
    year: int = Field(ge=1888, le=2030)
    genre: Literal["drama", "comedy", "horror"]
    rating: float | None = Field(description="out of 10")
    cast: list[str] = Field(max_length=3)


class GetWeather(BaseModel):
    """Get the current weather in a city."""

    city: str
    unit: Literal["celsius", "fahrenheit"] = "celsius"


def get_time(zone: str) -> str:
    """The time in a time zone."""
    return zone


def model_for(app: MockServerApp, **kwargs: Any) -> Any:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    return langchain_openai.ChatOpenAI(
        model="gpt-4o-mini", base_url="http://mock/v1", api_key="sk-test", http_async_client=client, **kwargs
    )


def json_mode_prompt() -> str:
    """What a langchain user writes for JSON mode: the parser's own format instructions (with the schema)."""
    instructions = parsers.PydanticOutputParser(pydantic_object=Movie).get_format_instructions()
    return f"Name a movie. Answer in JSON.\n{instructions}"


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_with_structured_output_gives_a_model_instance(method: str) -> None:
    structured = model_for(instant()).with_structured_output(Movie, method=method)
    prompt = json_mode_prompt() if method == "json_mode" else "Name a movie."

    async def main() -> list[Any]:
        return [await structured.ainvoke(prompt) for _ in range(5)]

    for movie in vrun(main()):
        assert isinstance(movie, Movie)


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_with_structured_output_include_raw_has_no_parsing_error(method: str) -> None:
    structured = model_for(instant()).with_structured_output(Movie, method=method, include_raw=True)
    out = vrun(structured.ainvoke("Name a movie."))
    assert out["parsing_error"] is None and isinstance(out["parsed"], Movie)


def test_bind_tools_gives_tool_calls_whose_args_validate() -> None:
    llm = model_for(instant()).bind_tools([GetWeather, get_time])
    schemas = {
        "GetWeather": GetWeather.model_json_schema(),
        "get_time": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
    }

    async def main() -> list[Any]:
        return [await llm.ainvoke("Weather in Paris, and the time?") for _ in range(10)]

    for message in vrun(main()):
        assert isinstance(message, messages_module.AIMessage)
        assert message.tool_calls and not message.invalid_tool_calls
        for call in message.tool_calls:
            jsonschema.validate(call["args"], schemas[call["name"]])
            assert call["id"].startswith("call_")


def test_bind_tools_with_tool_choice_and_an_agent_turn() -> None:
    llm = model_for(instant()).bind_tools([GetWeather], tool_choice="GetWeather")

    async def main() -> tuple[Any, Any]:
        first = await llm.ainvoke("Weather in Paris?")
        call = first.tool_calls[0]
        tool_result = messages_module.ToolMessage(content="sunny", tool_call_id=call["id"])
        second = (
            await model_for(instant())
            .bind_tools([GetWeather])
            .ainvoke([messages_module.HumanMessage("Weather in Paris?"), first, tool_result])
        )
        return first, second

    first, second = vrun(main())
    assert [c["name"] for c in first.tool_calls] == ["GetWeather"]
    GetWeather.model_validate(first.tool_calls[0]["args"])
    assert not second.tool_calls and isinstance(second.content, str) and second.content  # the loop ends


def test_streamed_tool_calls_accumulate_in_langchain() -> None:
    llm = model_for(instant()).bind_tools([GetWeather], tool_choice="required")

    async def main() -> Any:
        total = None
        async for chunk in llm.astream("Weather in Paris?"):
            total = chunk if total is None else total + chunk
        return total

    total = vrun(main())
    (call,) = total.tool_calls
    GetWeather.model_validate(call["args"])


@pytest.mark.server
def test_against_the_real_server() -> None:
    with real_server("--ttft", "0", "--per-token", "0") as (base, _proc):
        llm = langchain_openai.ChatOpenAI(model="gpt-4o-mini", base_url=base + "/v1", api_key="sk-test")
        for method in ("function_calling", "json_schema", "json_mode"):
            prompt = json_mode_prompt() if method == "json_mode" else "Name a movie."
            assert isinstance(llm.with_structured_output(Movie, method=method).invoke(prompt), Movie)
        message = llm.bind_tools([GetWeather]).invoke("Weather in Paris?")
        assert message.tool_calls
        GetWeather.model_validate(message.tool_calls[0]["args"])
        assert json.loads(json.dumps(message.tool_calls[0]["args"]))
