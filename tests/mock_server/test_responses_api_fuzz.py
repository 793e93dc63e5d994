"""``POST /v1/responses`` under generated bodies: every answer is a 200 or an OpenAI-shaped 4xx, never a 5xx.

The bodies are built field by field from ``CreateResponse``'s own property names, with values that are
right, wrong or hostile (hand-written schemas for tools and ``text.format``, items of every type), so that
most reach deep into the parser and some get through to a reply.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mock_server.responses_schema import CREATE_RESPONSE_FIELDS
from tests.mock_server.helpers import assert_matches_spec, client_for, instant, json_values, vrun

KEYWORDS = [
    *("type", "properties", "items", "required", "enum", "anyOf", "minLength", "maxLength", "minItems"),
    *("maxItems", "minimum", "maximum", "additionalProperties", "$ref", "pattern", "format", "const"),
]
TYPES = ["object", "string", "integer", "array", "number", "null", "boolean"]

schemas: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 50) | st.sampled_from([*TYPES, "#", "#/x", "^a+$", "email"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(KEYWORDS), children, max_size=4)
    ),
    max_leaves=12,
)
tools = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["function", "function", "web_search"]),
        "name": st.sampled_from(["f", "g", "bad name"]),
    },
    optional={"parameters": schemas, "strict": st.booleans() | json_values},
)
items = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "developer", "tool"])},
        optional={
            "type": st.sampled_from(["message", "reasoning", "item_reference"]),
            "content": json_values
            | st.lists(
                st.fixed_dictionaries(
                    {"type": st.sampled_from(["input_text", "output_text", "input_image", "refusal"])},
                    optional={"text": json_values},
                ),
                max_size=2,
            ),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["function_call", "function_call_output"])},
        optional={
            "call_id": st.sampled_from(["c1", "c2"]) | json_values,
            "output": json_values,
            "name": st.just("f") | json_values,
            "arguments": st.just("{}") | json_values,
        },
    ),
)
text_formats = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "json_object", "json_schema", "yaml"])},
    optional={"name": st.sampled_from(["out", ""]), "schema": schemas, "strict": st.booleans()},
)
# Mostly null (accepted everywhere), so that a body often gets past the fields it does not aim at.
mostly_null = st.one_of(st.none(), st.none(), st.none(), st.none(), json_values)
fields: dict[str, st.SearchStrategy[Any]] = {
    name: mostly_null for name in sorted(CREATE_RESPONSE_FIELDS - {"model", "input", "stream"})
}
fields |= {
    "tools": st.lists(tools, max_size=3) | st.lists(tools, max_size=3) | json_values,
    "tool_choice": st.sampled_from(["auto", "none", "required", {"type": "function", "name": "f"}])
    | json_values,
    "text": st.fixed_dictionaries({}, optional={"format": text_formats}) | json_values,
    "max_output_tokens": st.integers(16, 400) | st.integers(0, 70_000) | json_values,
    "stream": st.booleans(),
}
bodies = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["gpt-4o-mini", "gpt-4o-mini", "text-embedding-3-small", "nope"]),
        "input": st.text(max_size=20).map(lambda t: t + " json") | st.lists(items, max_size=3),
    },
    optional=fields,
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(bodies)
def test_generated_bodies_get_a_200_or_a_4xx(payload: dict[str, Any]) -> None:
    app = instant()

    async def main() -> tuple[int, str]:
        async with client_for(app) as c:
            r = await c.post("/v1/responses", content=json.dumps(payload).encode())
            return r.status_code, r.text

    status, text = vrun(main())
    event(f"status {status}")
    assert status == 200 or 400 <= status < 500, text
    if status == 200 and not payload.get("stream"):
        assert_matches_spec("Response", json.loads(text))
    elif status != 200:
        assert_matches_spec("ErrorResponse", json.loads(text))
