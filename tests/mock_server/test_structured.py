"""``mock_server.structured``: schemas checked as OpenAI checks them, values generated that satisfy them.

The property test is the heart: for schemas built from the keywords the generator claims to honour,
whatever it generates validates with ``jsonschema`` (the reference implementation), and the same dice give
the same value.
"""

from __future__ import annotations

import json
import random
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.dice import Dice
from mock_server.structured import (
    MAX_DEPTH,
    SchemaProblem,
    check_schema,
    find_schema_in_text,
    generate,
    lorem_words,
)

# "time" is generated as RFC 3339 says (``16:35:26Z``, with its offset); jsonschema without the optional
# rfc3339-validator checks it with ``time.fromisoformat``, which wants no offset, so it is left out here.
FORMATS = ("date-time", "date", "email", "uuid", "uri", "hostname", "ipv4", "ipv6")
PATTERNS = (r"^[A-Z]{3}-\d{2,4}$", r"^(red|green|blue)$", r"^\w+@\w+\.com$", r"^[a-f0-9]{8}$", r"^x+y?$")


def validate(value: Any, schema: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = list(validator.iter_errors(value))
    assert not errors, f"{json.dumps(value)} against {json.dumps(schema)}: {errors[0].message}"


# -- a strategy of supported schemas -------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers(-50, 50) | st.text(max_size=6)


@st.composite
def numbers(draw: st.DrawFn) -> dict[str, Any]:
    """integer/number schemas whose bounds always leave a value (built around one admissible value)."""
    integer = draw(st.booleans())
    step = draw(st.sampled_from([None, 1, 2, 3, 5, 0.5, 0.25] if not integer else [None, 1, 2, 3, 7]))
    k = draw(st.integers(-1000, 1000))
    value = k * (step or 1)
    schema: dict[str, Any] = {"type": "integer" if integer else "number"}
    if step is not None:
        schema["multipleOf"] = step
    below, above = draw(st.integers(0, 30)), draw(st.integers(0, 30))
    if draw(st.booleans()):
        key = "exclusiveMinimum" if below > 0 and draw(st.booleans()) else "minimum"
        schema[key] = value - below
    if draw(st.booleans()):
        key = "exclusiveMaximum" if above > 0 and draw(st.booleans()) else "maximum"
        schema[key] = value + above
    return schema


@st.composite
def strings(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    kind = draw(st.sampled_from(["plain", "lengths", "format", "pattern"]))
    if kind == "lengths":
        lo = draw(st.integers(0, 20))
        schema["minLength"] = lo
        if draw(st.booleans()):
            schema["maxLength"] = lo + draw(st.integers(0, 20))
    elif kind == "format":
        schema["format"] = draw(st.sampled_from(FORMATS))
    elif kind == "pattern":
        schema["pattern"] = draw(st.sampled_from(PATTERNS))
    return schema


leaves = st.one_of(
    strings(),
    numbers(),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.lists(scalars, min_size=1, max_size=4, unique_by=json.dumps).map(lambda v: {"enum": v}),
    scalars.map(lambda v: {"const": v}),
    st.just({"type": ["string", "null"]}),
)


def containers(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def objects(draw: st.DrawFn) -> dict[str, Any]:
        props = draw(st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), children, max_size=4))
        required = [name for name in props if draw(st.booleans())]
        return {"type": "object", "properties": props, "required": required, "additionalProperties": False}

    @st.composite
    def arrays(draw: st.DrawFn) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "array", "items": draw(children)}
        lo = draw(st.integers(0, 3))
        if lo:
            schema["minItems"] = lo
        if draw(st.booleans()):
            schema["maxItems"] = lo + draw(st.integers(0, 3))
        return schema

    return st.one_of(
        objects(),
        arrays(),
        st.lists(children, min_size=1, max_size=3).map(lambda bs: {"anyOf": bs}),
        # oneOf is generated like anyOf (exclusivity is not checked), so its branches here are disjoint.
        st.lists(
            st.sampled_from(["string", "integer", "boolean", "null"]), min_size=1, max_size=3, unique=True
        ).map(lambda types: {"oneOf": [{"type": t} for t in types]}),
    )


schemas = st.recursive(leaves, containers, max_leaves=12)


@st.composite
def with_defs(draw: st.DrawFn) -> dict[str, Any]:
    """A schema that reaches a definition through ``$ref`` (sometimes several times)."""
    inner = draw(schemas)
    root: dict[str, Any] = {
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/Thing"},
            "b": {"type": "array", "items": {"$ref": "#/$defs/Thing"}},
        },
        "required": ["a", "b"],
        "additionalProperties": False,
        "$defs": {"Thing": inner},
    }
    return root


@settings(max_examples=300, deadline=None)
@given(schema=schemas | with_defs(), seq=st.integers(0, 10_000))
def test_generated_values_validate(schema: dict[str, Any], seq: int) -> None:
    check_schema(schema, strict=False, where="schema")
    value = generate(schema, Dice(7, seq))
    validate(value, schema)
    assert generate(schema, Dice(7, seq)) == value  # seeded: the same dice, the same value


@settings(max_examples=100, deadline=None)
@given(schema=schemas, seq=st.integers(0, 10_000))
def test_a_custom_word_source_is_used_and_still_valid(schema: dict[str, Any], seq: int) -> None:
    def words(tokens: int, dice: Any) -> str:
        return "word " * tokens

    validate(generate(schema, Dice(1, seq), words=words), schema)


def test_random_random_is_an_rng_too() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    assert generate(schema, random.Random(3)) == generate(schema, random.Random(3))


# -- recursion ------------------------------------------------------------------------------------------

LINKED_LIST: dict[str, Any] = {
    "type": "object",
    "properties": {"value": {"type": "integer"}, "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}},
    "required": ["value", "next"],
    "additionalProperties": False,
}
TREE: dict[str, Any] = {
    "$defs": {
        "Node": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
            },
            "required": ["name", "children"],
            "additionalProperties": False,
        }
    },
    "type": "object",
    "properties": {"root": {"$ref": "#/$defs/Node"}},
    "required": ["root"],
    "additionalProperties": False,
}


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


@pytest.mark.parametrize("schema", [LINKED_LIST, TREE], ids=["list", "tree"])
def test_recursive_schemas_stop_at_the_depth_cap(schema: dict[str, Any]) -> None:
    check_schema(schema, strict=True, where="schema")
    for seq in range(50):
        value = generate(schema, Dice(0, seq))
        validate(value, schema)
        assert depth(value) <= 3 * (MAX_DEPTH + 2)


def test_a_schema_with_no_finite_value_is_a_problem() -> None:
    forever = {"type": "object", "properties": {"next": {"$ref": "#"}}, "required": ["next"]}
    check_schema(forever, strict=False, where="schema")  # well-formed ...
    with pytest.raises(SchemaProblem, match="no finite value"):
        generate(forever, Dice(0, 0))  # ... but nothing satisfies it


# -- what the generator does with each keyword -------------------------------------------------------


def test_required_properties_always_optional_ones_sometimes() -> None:
    schema = {
        "type": "object",
        "properties": {"need": {"type": "string"}, "maybe": {"type": "integer"}},
        "required": ["need"],
    }
    values = [generate(schema, Dice(0, seq)) for seq in range(40)]
    assert all("need" in v for v in values)
    assert 5 < sum("maybe" in v for v in values) < 35


def test_enums_and_any_of_branches_are_all_drawn() -> None:
    assert {generate({"enum": ["a", "b", "c"]}, Dice(0, s)) for s in range(60)} == {"a", "b", "c"}
    kinds = {
        type(generate({"anyOf": [{"type": "string"}, {"type": "integer"}]}, Dice(0, s))) for s in range(60)
    }
    assert kinds == {str, int}


def test_formats_are_well_formed() -> None:
    for fmt in FORMATS:
        for seq in range(10):
            schema = {"type": "string", "format": fmt}
            validate(generate(schema, Dice(0, seq)), schema)


def test_lorem_words_is_seeded_and_about_the_size_asked() -> None:
    text = lorem_words(10, Dice(0, 1))
    assert text == lorem_words(10, Dice(0, 1))
    assert 40 <= len(text) <= 60


# -- checking -------------------------------------------------------------------------------------------

STRICT_OK: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "where"},
        "unit": {"type": ["string", "null"], "enum": ["c", "f", None]},
        "days": {"type": "array", "items": {"type": "integer", "minimum": 1}, "maxItems": 7},
        "where": {"$ref": "#/$defs/Point"},
    },
    "required": ["city", "unit", "days", "where"],
    "additionalProperties": False,
    "$defs": {
        "Point": {
            "type": "object",
            "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
            "required": ["lat", "lon"],
            "additionalProperties": False,
        }
    },
}


def test_a_strict_schema_passes_and_comes_back() -> None:
    assert check_schema(STRICT_OK, strict=True, where="response_format.json_schema.schema") is STRICT_OK


def _with(path: list[str | int], value: Any, *, drop: bool = False) -> dict[str, Any]:
    schema = json.loads(json.dumps(STRICT_OK))
    node = schema
    for key in path[:-1]:
        node = node[key]
    if drop:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return schema


@pytest.mark.parametrize(
    ("schema", "strict", "path", "words"),
    [
        ([1, 2], False, "(root)", "must be an object"),
        (
            {"type": "object", "properties": {"city": {"type": "strin"}}},
            False,
            "properties.city.type",
            "strin",
        ),
        ({"type": "object", "properties": []}, False, "properties", "object of schemas"),
        ({"type": "object", "required": "city"}, False, "required", "array of strings"),
        (
            {"type": "array", "items": {"type": "string", "minLength": 5, "maxLength": 2}},
            False,
            "items.minLength",
            "greater",
        ),
        ({"type": "integer", "minimum": 10, "maximum": 1}, False, "(root)", "no number"),
        ({"type": "integer", "minimum": 1, "maximum": 2, "multipleOf": 5}, False, "(root)", "no number"),
        ({"type": "number", "multipleOf": 0}, False, "multipleOf", "greater than 0"),
        ({"anyOf": []}, False, "anyOf", "non-empty"),
        ({"enum": []}, False, "enum", "non-empty"),
        ({"type": "string", "pattern": "("}, False, "pattern", "regular expression"),
        (
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/Nope"}}},
            False,
            "properties.a.$ref",
            "does not resolve",
        ),
        ({"$ref": "https://example.com/schema.json"}, False, "$ref", "local"),
        (_with(["additionalProperties"], True), True, "additionalProperties", "false"),
        (
            _with(["$defs", "Point", "additionalProperties"], None, drop=True),
            True,
            "$defs.Point.additionalProperties",
            "false",
        ),
        (_with(["required"], ["city"]), True, "required", "'unit'"),
        (
            _with(["properties", "city", "minProperties"], 1),
            True,
            "properties.city.minProperties",
            "not permitted",
        ),
        (_with(["properties", "days", "allOf"], [{}]), True, "properties.days.allOf", "not permitted"),
        (_with(["properties", "city", "format"], "color"), True, "properties.city.format", "not supported"),
        (
            _with(["properties", "days", "items", "type"], None, drop=True),
            True,
            "properties.days.items",
            "'type'",
        ),
        (
            {"anyOf": [{"type": "object", "properties": {}, "required": [], "additionalProperties": False}]},
            True,
            "(root)",
            "not 'anyOf'",
        ),
        ({"type": "string"}, True, "type", "type 'object'"),
    ],
)
def test_bad_schemas_name_the_path(schema: Any, strict: bool, path: str, words: str) -> None:
    with pytest.raises(SchemaProblem) as info:
        check_schema(schema, strict=strict, where="x")
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: ")
    assert words in info.value.reason


def test_strict_nesting_is_bounded() -> None:
    node: dict[str, Any] = {"type": "object", "properties": {}, "required": [], "additionalProperties": False}
    root = node
    for _ in range(11):
        child: dict[str, Any] = {
            "type": "object",
            "properties": {},
            "required": [],
            "additionalProperties": False,
        }
        node["properties"] = {"c": child}
        node["required"] = ["c"]
        node = child
    with pytest.raises(SchemaProblem, match="nested at most 10"):
        check_schema(root, strict=True, where="x")
    check_schema(root, strict=False, where="x")


def test_unknown_keywords_are_fine_when_not_strict() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "x-anything": 1}},
        "patternProperties": {},
    }
    assert check_schema(schema, strict=False, where="x") is schema


# -- JSON mode: the schema the prompt spells out ---------------------------------------------------------


def test_find_schema_in_text_takes_the_last_outermost_schema() -> None:
    example = {"properties": {"foo": {"type": "array", "items": {"type": "string"}}}, "required": ["foo"]}
    real = {
        "properties": {"a": {"type": "object", "properties": {"b": {"type": "integer"}}}},
        "required": ["a"],
    }
    text = (
        f'As an example, for the schema {json.dumps(example)} the object {{"foo": ["bar"]}} is '
        f"well-formatted.\nHere is the output schema:\n```\n{json.dumps(real)}\n```"
    )
    assert find_schema_in_text(text) == real
    assert find_schema_in_text('no schema {here}, just {"a": 1}') is None
    assert find_schema_in_text("{" * 10_000) is None  # cheap on garbage


def test_huge_minimums_are_a_problem_not_a_hang() -> None:
    nested = {"type": "array", "minItems": 1000, "items": {"type": "array", "minItems": 1000}}
    with pytest.raises(SchemaProblem, match="too large"):
        generate(nested, Dice(0, 0))
    with pytest.raises(SchemaProblem, match="too large"):
        generate({"type": "string", "minLength": 10**9}, Dice(0, 0))
    text = generate({"type": "string", "pattern": "^x{100000}$", "maxLength": 10}, Dice(0, 0))
    assert isinstance(text, str) and len(text) <= 10  # an impossible pattern: words within the lengths


def test_a_problem_knows_the_field_it_came_in() -> None:
    with pytest.raises(SchemaProblem) as info:
        check_schema({"type": "nope"}, strict=False, where="tools[2].function.parameters")
    assert info.value.where == "tools[2].function.parameters" and info.value.path == "type"


def test_a_schema_whose_smallest_value_is_huge_is_refused_at_once() -> None:
    # A million required items is refused before the first is made (it once took seconds to say no).
    from mock_server.dice import Dice
    from mock_server.structured import SchemaProblem, generate

    with pytest.raises(SchemaProblem, match="too large"):
        generate({"type": "array", "minItems": 10**6, "items": {"type": "integer"}}, Dice(0, 0))
