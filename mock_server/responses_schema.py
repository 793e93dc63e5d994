"""Parse and validate ``POST /v1/responses`` bodies (the spec's ``CreateResponse``).

The Responses API is OpenAI's newer surface: one ``input`` (a string, or a list of *items* — messages,
earlier function calls and their outputs) instead of ``messages``, ``instructions`` instead of a system
message, ``max_output_tokens`` instead of ``max_tokens``, flat function tools (``{"type": "function",
"name", "parameters", "strict"}``, not chat's nested ``function``) and ``text.format`` instead of
``response_format``. This module turns a body into a :class:`ResponsesRequest` or raises
:class:`~mock_server.errors.ApiError` naming the offending ``param`` — never anything else, so bad input is
a 4xx before any limit is asked, and never a 500.

What is checked, and why
------------------------
=============================  =========================================================================
field                          rule (from the spec unless marked *mock* or *observed*)
=============================  =========================================================================
any field                      one of ``CreateResponse``'s properties (:data:`CREATE_RESPONSE_FIELDS`);
                               else 400 ``unknown_parameter`` (*observed*: the spec leaves
                               ``additionalProperties`` open, but OpenAI refuses unknown fields — and a
                               chat field such as ``response_format`` or ``max_tokens`` is told where
                               it moved)
``model``                      required string; served (404 ``model_not_found``), not an embedding model
``input``                      required (unless ``previous_response_id``): a string, or a non-empty list
                               of items — ``message`` (role user/assistant/system/developer; content a
                               string or parts), ``function_call`` (``call_id``, ``name``,
                               ``arguments``), ``function_call_output`` (``call_id``, ``output``),
                               ``reasoning`` (accepted, not counted); other item types → 400
                               ``unsupported_value`` (*mock*). A ``function_call_output`` whose
                               ``call_id`` no ``function_call`` in the input made → 400 (*observed*)
``instructions``               string or null; counted as one more message
``max_output_tokens``          integer ≥ 16 (the spec's minimum), ≤ the config's ``max_output_tokens``;
                               default: the config's ``default_max_tokens`` (as chat's ``max_tokens``)
``temperature``, ``top_p``     numbers in [0, 2] and [0, 1] or null; echoed, not used
``stream``, ``store``,         booleans or null; ``stream_options`` only with ``stream``
``parallel_tool_calls``,
``background``
``tools``                      a list; ``function`` tools only (*mock*: hosted tools → 400 naming the
                               type), ``name`` matching ``^[a-zA-Z0-9_-]{1,64}$``, unique; ``parameters``
                               a JSON schema (checked by :func:`mock_server.structured.check_schema`);
                               ``strict`` left out: the schema is normalized into strict mode where it
                               can be (OpenAI's function-calling guide), else kept non-strict
``tool_choice``                ``none`` / ``auto`` / ``required`` / ``{"type": "function", "name"}``
                               naming a tool; ``required`` or a name without tools → 400
``text.format``                ``text`` / ``json_object`` (the input must say "json", *observed*) /
                               ``json_schema`` (``name``, ``schema``, ``strict``)
``metadata``                   at most 16 string pairs, keys ≤ 64 and values ≤ 512 characters
``previous_response_id``       a response this app made and stored (*mock*: nothing else is kept, so
                               another id is 400 ``previous_response_not_found``, as OpenAI answers an
                               unknown one); ``conversation`` and ``prompt`` (stored state the mock does
                               not keep) → 400 ``unsupported_value``
``user``, ``safety_identifier``  strings (or null)
=============================  =========================================================================

The other ``CreateResponse`` fields (``include``, ``reasoning``, ``truncation``, ``service_tier``, ...)
are accepted and ignored once their JSON type is right.

Tokens (the mock's estimate, the same rule as chat's): ``3`` per request, ``4`` per item, ``ceil(chars/4)``
per text (a message's text parts, an instruction, a function call's name and arguments, a function
output), ``85`` per non-text part (an image, a file). Tool definitions are not counted (nor are they on
chat).
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .config import ServerConfig
from .dice import Dice
from .errors import ApiError, invalid_type, invalid_value, missing_parameter, model_not_found, quoted
from .schema import is_embedding_model, parse_json_object
from .structured import SchemaProblem, check_schema, find_schema_in_text, generate
from .tokens import NON_TEXT_PART_TOKENS, PER_MESSAGE_TOKENS, PER_REQUEST_TOKENS, estimate_tokens
from .validation import is_int, is_real

__all__ = [
    "CREATE_RESPONSE_FIELDS",
    "MIN_OUTPUT_TOKENS",
    "FunctionTool",
    "ResponsesRequest",
    "TextFormat",
    "ToolChoice",
    "parse_responses_request",
]

CREATE_RESPONSE_FIELDS = frozenset(
    {
        # ModelResponseProperties / CreateModelResponseProperties
        "metadata",
        "top_logprobs",
        "temperature",
        "top_p",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
        # ResponseProperties
        "previous_response_id",
        "model",
        "background",
        "max_tool_calls",
        "text",
        "tools",
        "tool_choice",
        "prompt",
        # CreateResponse's own
        "service_tier",
        "truncation",
        "reasoning",
        "input",
        "include",
        "parallel_tool_calls",
        "store",
        "instructions",
        "moderation",
        "stream",
        "stream_options",
        "conversation",
        "context_management",
        "max_output_tokens",
    }
)
"""Every property of the spec's ``CreateResponse`` (all its ``allOf`` parts); a test compares the two."""

MIN_OUTPUT_TOKENS = 16
"""The spec's ``minimum`` for ``max_output_tokens``."""

_MOVED = {
    "messages": "input",
    "max_tokens": "max_output_tokens",
    "max_completion_tokens": "max_output_tokens",
    "response_format": "text.format",
}
"""Chat-completions fields a Responses request sometimes carries by mistake, and where they went."""

_ROLES = ("assistant", "developer", "system", "user")
_INPUT_PARTS = frozenset({"input_text", "input_image", "input_file"})
_ASSISTANT_PARTS = frozenset({"output_text", "refusal", "input_text"})
_TEXT_KEYS = {"input_text": "text", "output_text": "text", "refusal": "refusal"}
_STORED_ITEMS = frozenset({"item_reference"})
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_MAX_METADATA = 16
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})

# What each accepted-and-ignored field must be (its JSON type per the spec); None is always allowed.
_IGNORED_TYPES: dict[str, tuple[type, ...]] = {
    "include": (list,),
    "reasoning": (dict,),
    "truncation": (str,),
    "service_tier": (str,),
    "prompt_cache_key": (str,),
    "prompt_cache_retention": (str,),
    "prompt_cache_options": (dict,),
    "moderation": (dict,),
    "context_management": (list,),
}


@dataclass(frozen=True, slots=True)
class FunctionTool:
    """One ``{"type": "function"}`` tool of the request."""

    name: str
    parameters: Mapping[str, Any] | None
    """The JSON schema of the arguments (None: the function takes none)."""
    strict: bool
    echo: dict[str, Any]
    """The tool as the response's ``tools`` shows it (the spec's ``FunctionTool``, every required key)."""
    example: Any
    """Arguments generated once at parse time (the fallback should the seeded generation fail)."""


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """``tool_choice`` resolved: ``mode`` and, for a named function, its name."""

    mode: Literal["none", "auto", "required", "function"]
    name: str | None
    echo: str | dict[str, Any]
    """As the response's ``tool_choice`` shows it."""


@dataclass(frozen=True, slots=True)
class TextFormat:
    """``text.format`` resolved."""

    type: Literal["text", "json_object", "json_schema"]
    schema: Mapping[str, Any] | None
    """The schema the output text must satisfy: ``json_schema``'s, or for ``json_object`` the last one
    written in the prompt (None: any JSON object)."""
    echo: dict[str, Any]
    """As the response's ``text.format`` shows it."""
    example: Any
    """A value generated once at parse time from ``schema`` (the fallback should the seeded one fail)."""


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    """The parts of a valid ``POST /v1/responses`` request the server uses or echoes."""

    model: str
    prompt_tokens: int
    max_output_tokens: int
    """Effective output budget: the request's ``max_output_tokens`` or the config's ``default_max_tokens``."""
    stream: bool
    tools: tuple[FunctionTool, ...]
    tool_choice: ToolChoice
    text_format: TextFormat
    answers_tool: bool
    """The input ends with a ``function_call_output``: under ``tool_choice: auto`` the model answers it in
    text (an agent loop ends), instead of maybe calling a tool again."""
    echo: dict[str, Any]
    """The request-side fields of the spec's ``Response`` object, as this response must show them
    (``instructions``, ``max_output_tokens``, ``metadata``, ``parallel_tool_calls``, ``store``, ``text``,
    ``temperature``, ``top_p``, ``tools``, ``tool_choice``, ``user``, ...)."""

    @property
    def store(self) -> bool:
        """Whether the response is kept (so a later ``previous_response_id`` may name it)."""
        return bool(self.echo["store"])


# -- errors in OpenAI's words --------------------------------------------------------------------------


def _unsupported(param: str, message: str) -> ApiError:
    return ApiError(message, param=param, code="unsupported_value")


def _string(value: object, param: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise missing_parameter(param)
        return None
    if not isinstance(value, str):
        raise invalid_type(param, "a string", value)
    return value


def _boolean(value: object, param: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid_type(param, "a boolean", value)
    return value


def _number(value: object, param: str, maximum: float) -> float | None:
    if value is None:
        return None
    # An integer too large for a float is out of range, not a crash (is_real would overflow on it).
    if is_int(value) and abs(value) > 2**53:
        number = float("inf") if value > 0 else float("-inf")
    elif is_real(value):
        number = float(value)
    else:
        raise invalid_type(param, "a number", value)
    if not 0 <= number <= maximum:
        raise ApiError(
            f"Invalid '{param}': expected a number between 0 and {maximum:g}, but got {quoted(value, 40)} "
            "instead.",
            param=param,
            code="decimal_above_max_value" if number > maximum else "decimal_below_min_value",
        )
    return number


# -- input ---------------------------------------------------------------------------------------------


def _parts_tokens(role: str, content: list[Any], where: str, texts: list[str]) -> int:
    """Tokens of a message's content parts, each checked against what ``role`` may send; texts → ``texts``."""
    if not content:
        raise ApiError(
            f"Invalid '{where}': empty array. Expected an array with minimum length 1, but got an empty "
            "array instead.",
            param=where,
            code="empty_array",
        )
    allowed = _ASSISTANT_PARTS if role == "assistant" else _INPUT_PARTS
    tokens = 0
    for j, part in enumerate(content):
        pwhere = f"{where}[{j}]"
        if not isinstance(part, dict):
            raise invalid_type(pwhere, "an object", part)
        kind = part.get("type")
        if not isinstance(kind, str):
            raise invalid_type(f"{pwhere}.type", "a string", kind)
        if kind not in allowed:
            raise invalid_value(
                f"{pwhere}.type",
                f"Invalid value: {quoted(kind)}. Supported values for a {role} message are: "
                f"{sorted(allowed)}.",
            )
        key = _TEXT_KEYS.get(kind)
        if key is None:
            tokens += NON_TEXT_PART_TOKENS
        else:
            text = _string(part.get(key), f"{pwhere}.{key}", required=True) or ""
            texts.append(text)
            tokens += estimate_tokens(text)
    return tokens


def _message_tokens(item: dict[str, Any], where: str, texts: list[str]) -> int:
    role = item.get("role")
    if role is None:
        raise missing_parameter(f"{where}.role")
    if not isinstance(role, str) or role not in _ROLES:
        raise invalid_value(
            f"{where}.role",
            f"Invalid value for '{where}.role': {quoted(role)}. Supported values are: {list(_ROLES)}.",
        )
    if "content" not in item:
        raise missing_parameter(f"{where}.content")
    content = item["content"]
    if isinstance(content, str):
        texts.append(content)
        return estimate_tokens(content)
    if not isinstance(content, list):
        raise invalid_type(f"{where}.content", "a string or an array of content parts", content)
    return _parts_tokens(role, content, f"{where}.content", texts)


def _output_tokens(output: object, where: str, texts: list[str]) -> int:
    """A ``function_call_output``'s ``output``: a string or an array of input parts."""
    if isinstance(output, str):
        texts.append(output)
        return estimate_tokens(output)
    if isinstance(output, list):
        return _parts_tokens("tool", output, where, texts)
    if output is None:
        raise missing_parameter(where)
    raise invalid_type(where, "a string or an array of content parts", output)


def _input_tokens(value: object, continued: bool, texts: list[str]) -> int:
    """Tokens of ``input`` (items only, no per-request cost); every text it holds is added to ``texts``.

    ``continued``: a ``previous_response_id`` was given, so ``input`` may be left out and a function output
    may answer a call made in that earlier response.
    """
    if value is None:
        if continued:
            return 0
        raise missing_parameter("input")
    if isinstance(value, str):
        texts.append(value)
        return PER_MESSAGE_TOKENS + estimate_tokens(value)
    if not isinstance(value, list):
        raise invalid_type("input", "a string or an array of input items", value)
    if not value:
        raise ApiError(
            "Invalid 'input': empty array. Expected an array with minimum length 1, but got an empty array "
            "instead.",
            param="input",
            code="empty_array",
        )
    tokens = 0
    calls: set[str] = set()
    outputs: list[tuple[int, str]] = []
    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise invalid_type(where, "an object", item)
        kind = item.get("type", "message")
        if not isinstance(kind, str):
            raise invalid_type(f"{where}.type", "a string", kind)
        tokens += PER_MESSAGE_TOKENS
        if kind == "message":
            tokens += _message_tokens(item, where, texts)
        elif kind == "function_call":
            call_id = _string(item.get("call_id"), f"{where}.call_id", required=True)
            name = _string(item.get("name"), f"{where}.name", required=True)
            arguments = _string(item.get("arguments"), f"{where}.arguments", required=True)
            calls.add(call_id or "")
            tokens += estimate_tokens(name or "") + estimate_tokens(arguments or "")
        elif kind == "function_call_output":
            call_id = _string(item.get("call_id"), f"{where}.call_id", required=True)
            outputs.append((i, call_id or ""))
            tokens += _output_tokens(item.get("output"), f"{where}.output", texts)
        elif kind == "reasoning":
            tokens -= PER_MESSAGE_TOKENS  # an earlier turn's reasoning: kept as context, not counted
        elif kind in _STORED_ITEMS:
            raise _unsupported(
                f"{where}.type",
                f"Input items of type {kind!r} refer to stored items, and this mock server stores none; "
                "send the items themselves.",
            )
        else:
            raise _unsupported(
                f"{where}.type",
                f"Input items of type {quoted(kind, 60)} are not supported by this mock server; it "
                "understands 'message', 'function_call', 'function_call_output' and 'reasoning'.",
            )
    if not continued:
        for i, call_id in outputs:
            if call_id not in calls:
                raise invalid_value(
                    f"input[{i}].call_id",
                    f"No tool call found for function call output with call_id {quoted(call_id, 70)}.",
                )
    return tokens


# -- tools ---------------------------------------------------------------------------------------------


_GENERATION_ERRORS = (ValueError, ArithmeticError, RecursionError)
"""What checking or generating from a hostile schema may raise (``SchemaProblem`` is a ValueError; a bound
of 10**400 overflows a float): a 400 at parse time, never a 500 after admission."""


def _check_schema(schema: dict[str, Any], strict: bool, where: str, what: str, code: str) -> Any:
    """A client's JSON schema, checked as OpenAI checks it (:func:`mock_server.structured.check_schema`);
    returns an example value, generated once here so a schema no value satisfies is a 400 now."""
    try:
        check_schema(schema, strict=strict, where=where)
        return generate(schema, Dice(0, 0))
    except SchemaProblem as problem:
        context = "" if problem.path == "(root)" else problem.path
        raise ApiError(
            f"Invalid schema for {what}: In context=({context}), {problem.reason}.", param=where, code=code
        ) from None
    except _GENERATION_ERRORS as err:
        raise ApiError(
            f"Invalid schema for {what}: {quoted(str(err), 200)}", param=where, code=code
        ) from None


def _strict_form(schema: Any) -> Any:
    """``schema`` as strict mode wants it: every object schema closed (``additionalProperties: false``)
    and requiring all its properties — what Responses does to a function's schema sent without ``strict``."""
    if isinstance(schema, list):
        return [_strict_form(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        key: {name: _strict_form(sub) for name, sub in value.items()}
        if key in _SCHEMA_MAPS and isinstance(value, dict)
        else _strict_form(value)
        for key, value in schema.items()
    }
    properties = schema.get("properties")
    if isinstance(properties, dict) or schema.get("type") == "object":
        out["additionalProperties"] = False
        out["required"] = list(properties) if isinstance(properties, dict) else []
    return out


def _example(schema: dict[str, Any] | None) -> tuple[dict[str, Any] | None, Any]:
    """A schema found in a JSON-mode prompt and an example value, or ``(None, None)`` if none can be made."""
    if schema is None:
        return None, None
    try:
        return schema, generate(schema, Dice(0, 0))
    except _GENERATION_ERRORS:
        return None, None


def _tools(value: object) -> tuple[FunctionTool, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise invalid_type("tools", "an array", value)
    tools: list[FunctionTool] = []
    names: set[str] = set()
    for i, tool in enumerate(value):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise invalid_type(where, "an object", tool)
        kind = tool.get("type")
        if kind is None:
            raise missing_parameter(f"{where}.type")
        if not isinstance(kind, str):
            raise invalid_type(f"{where}.type", "a string", kind)
        if kind != "function":
            raise _unsupported(
                f"{where}.type",
                f"Tools of type {quoted(kind, 60)} are not supported by this mock server; only 'function' "
                "tools are (hosted tools such as web_search or file_search run on OpenAI's side).",
            )
        name = _string(tool.get("name"), f"{where}.name", required=True) or ""
        if not _TOOL_NAME.fullmatch(name):
            raise invalid_value(
                f"{where}.name",
                f"Invalid '{where}.name': string does not match pattern. Expected a string that matches "
                f"the pattern '^[a-zA-Z0-9_-]{{1,64}}$', but got {quoted(name)}.",
            )
        if name in names:
            raise invalid_value(f"{where}.name", f"Duplicate tool name: {name!r}. Tool names must be unique.")
        names.add(name)
        description = _string(tool.get("description"), f"{where}.description")
        given = tool.get("strict")
        strict = _boolean(given, f"{where}.strict", False)
        parameters = tool.get("parameters")
        example: Any = {}
        if parameters is not None:
            if not isinstance(parameters, dict):
                raise invalid_type(f"{where}.parameters", "an object (a JSON schema)", parameters)
            what, code = f"function {name!r}", "invalid_function_parameters"
            example = _check_schema(parameters, strict, f"{where}.parameters", what, code)
            if given is None:
                # OpenAI's guide: with ``strict`` left out, Responses normalizes the schema into strict
                # mode where it can (every property required, no additional ones).
                normalized = _strict_form(parameters)
                try:
                    check_schema(normalized, strict=True, where=where)
                    example = generate(normalized, Dice(0, 0))
                except _GENERATION_ERRORS:
                    pass  # not expressible in strict mode: it stays as given, non-strict
                else:
                    parameters, strict = normalized, True
        elif given is None:
            strict = True
        echo = {
            "type": "function",
            "name": name,
            "description": description,
            "parameters": parameters,
            "strict": strict,
        }
        tools.append(FunctionTool(name, parameters, strict, echo, example))
    return tuple(tools)


def _tool_choice(value: object, tools: tuple[FunctionTool, ...]) -> ToolChoice:
    if value is None:
        return ToolChoice("auto", None, "auto")
    if isinstance(value, str):
        if value not in ("none", "auto", "required"):
            raise invalid_value(
                "tool_choice",
                f"Invalid value for 'tool_choice': {quoted(value)}. Supported values are: 'none', 'auto' "
                "and 'required'.",
            )
        if value == "required" and not tools:
            raise invalid_value(
                "tool_choice", "Tool choice 'required' must be specified with 'tools' parameter."
            )
        mode: Literal["none", "auto", "required"] = (
            "none" if value == "none" else "required" if value == "required" else "auto"
        )
        return ToolChoice(mode, None, value)
    if not isinstance(value, dict):
        raise invalid_type("tool_choice", "a string or an object", value)
    kind = _string(value.get("type"), "tool_choice.type", required=True)
    if kind != "function":
        raise _unsupported(
            "tool_choice.type",
            f"tool_choice of type {quoted(kind, 60)} is not supported by this mock server; use 'none', "
            "'auto', 'required' or {'type': 'function', 'name': ...}.",
        )
    name = _string(value.get("name"), "tool_choice.name", required=True)
    if name not in {tool.name for tool in tools}:
        raise invalid_value(
            "tool_choice.name",
            f"Tool choice names the function {quoted(name, 70)}, which is not in 'tools'.",
        )
    return ToolChoice("function", name, {"type": "function", "name": name})


# -- text.format ---------------------------------------------------------------------------------------


def _text(value: object, prompt: str) -> tuple[TextFormat, dict[str, Any]]:
    """``text`` → the format and the response's ``text`` echo (``format`` and ``verbosity``).

    ``prompt``: every text of the input and the instructions. JSON mode (``json_object``) needs the word
    "json" in it, as OpenAI does, and answers with an object following the last JSON schema written
    there (:func:`mock_server.structured.find_schema_in_text`), if any.
    """
    plain = TextFormat("text", None, {"type": "text"}, None)
    if value is None:
        return plain, {"format": plain.echo, "verbosity": "medium"}
    if not isinstance(value, dict):
        raise invalid_type("text", "an object", value)
    verbosity = _string(value.get("verbosity"), "text.verbosity") or "medium"
    if verbosity not in ("low", "medium", "high"):
        raise invalid_value(
            "text.verbosity",
            f"Invalid value for 'text.verbosity': {quoted(verbosity)}. Supported values are: 'low', "
            "'medium' and 'high'.",
        )
    spec = value.get("format")
    if spec is None:
        return plain, {"format": plain.echo, "verbosity": verbosity}
    if not isinstance(spec, dict):
        raise invalid_type("text.format", "an object", spec)
    kind = _string(spec.get("type"), "text.format.type", required=True)
    if kind == "text":
        fmt = plain
    elif kind == "json_object":
        if "json" not in prompt.lower():
            raise invalid_value(
                "input",
                "Response input messages must contain the word 'json' in some form to use 'text.format' "
                "of type 'json_object'.",
            )
        found, example = _example(find_schema_in_text(prompt))
        fmt = TextFormat("json_object", found, {"type": "json_object"}, example)
    elif kind == "json_schema":
        name = _string(spec.get("name"), "text.format.name", required=True) or ""
        if not _TOOL_NAME.fullmatch(name):
            raise invalid_value(
                "text.format.name",
                "Invalid 'text.format.name': string does not match pattern. Expected a string that "
                f"matches the pattern '^[a-zA-Z0-9_-]{{1,64}}$', but got {quoted(name)}.",
            )
        schema = spec.get("schema")
        if schema is None:
            raise missing_parameter("text.format.schema")
        if not isinstance(schema, dict):
            raise invalid_type("text.format.schema", "an object (a JSON schema)", schema)
        strict = _boolean(spec.get("strict"), "text.format.strict", False)
        description = _string(spec.get("description"), "text.format.description")
        example = _check_schema(
            schema, strict, "text.format.schema", f"response_format {name!r}", "invalid_json_schema"
        )
        echo: dict[str, Any] = {"type": "json_schema", "name": name, "schema": schema, "strict": strict}
        if description is not None:
            echo["description"] = description
        fmt = TextFormat("json_schema", schema, echo, example)
    else:
        raise invalid_value(
            "text.format.type",
            f"Invalid value for 'text.format.type': {quoted(kind)}. Supported values are: 'text', "
            "'json_object' and 'json_schema'.",
        )
    return fmt, {"format": fmt.echo, "verbosity": verbosity}


# -- the request ---------------------------------------------------------------------------------------


def _metadata(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid_type("metadata", "an object of string values", value)
    if len(value) > _MAX_METADATA:
        raise invalid_value(
            "metadata", f"Invalid 'metadata': at most {_MAX_METADATA} pairs, got {len(value)}."
        )
    for key, item in value.items():
        if len(key) > 64:
            raise invalid_value("metadata", f"Invalid 'metadata': key {quoted(key, 40)} is longer than 64.")
        if not isinstance(item, str):
            raise invalid_type(f"metadata.{key[:64]}", "a string", item)
        if len(item) > 512:
            raise invalid_value(f"metadata.{key[:64]}", "Invalid 'metadata': a value is longer than 512.")
    return dict(value)


def _max_output_tokens(value: object, config: ServerConfig) -> int | None:
    if value is None:
        return None
    if not is_int(value):
        raise invalid_type("max_output_tokens", "an integer", value)
    if value < MIN_OUTPUT_TOKENS:
        raise ApiError(
            "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
            f"{MIN_OUTPUT_TOKENS}, but got {value} instead.",
            param="max_output_tokens",
            code="integer_below_min_value",
        )
    if value > config.max_output_tokens:
        raise invalid_value(
            "max_output_tokens",
            f"Invalid 'max_output_tokens': {value} is too large. This model supports at most "
            f"{config.max_output_tokens} output tokens.",
        )
    return value


def _check_ignored(payload: dict[str, Any]) -> None:
    for name, types in _IGNORED_TYPES.items():
        value = payload.get(name)
        if value is not None and not isinstance(value, types):
            expected = "an array" if types == (list,) else "an object" if types == (dict,) else "a string"
            raise invalid_type(name, expected, value)
    for name in ("top_logprobs", "max_tool_calls"):
        value = payload.get(name)
        if value is not None and not is_int(value):
            raise invalid_type(name, "an integer", value)
    top = payload.get("top_logprobs")
    if top is not None and not 0 <= top <= 20:
        raise invalid_value(
            "top_logprobs", f"Invalid 'top_logprobs': expected 0 to 20, got {quoted(top, 40)}."
        )


def parse_responses_request(
    body: bytes, config: ServerConfig, stored: Container[str] = ()
) -> ResponsesRequest:
    """Validate a ``POST /v1/responses`` body; raise :class:`ApiError` (400/404) for anything wrong.

    ``stored``: the ids of the responses this app made with ``store`` on — the only ones a
    ``previous_response_id`` may name. The checks, first failure first: the JSON object; no field the
    spec does not define; ``model``; ``previous_response_id``; ``input``; ``instructions``; the numbers and
    booleans; ``tools``, ``tool_choice``, ``text``; ``metadata``; the model served; the context window.
    """
    payload = parse_json_object(body)
    for name in payload:
        if name not in CREATE_RESPONSE_FIELDS:
            moved = _MOVED.get(name)
            hint = f" In the Responses API, this parameter has moved to '{moved}'." if moved else ""
            shown = name if len(name) <= 60 else name[:57] + "..."
            raise ApiError(
                f"Unsupported parameter: '{shown}'.{hint}",
                param=name[:60],
                code="unknown_parameter",
            )
    model = _string(payload.get("model"), "model", required=True) or ""
    previous = _string(payload.get("previous_response_id"), "previous_response_id")
    if previous is not None and previous not in stored:
        raise ApiError(
            f"Previous response with id {quoted(previous, 80)} not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    for name in ("conversation", "prompt"):
        if payload.get(name) is not None:
            raise _unsupported(
                name,
                f"'{name}' refers to state stored on OpenAI's side, which this mock server does not keep; "
                "send the whole 'input' instead.",
            )
    texts: list[str] = []
    tokens = PER_REQUEST_TOKENS + _input_tokens(payload.get("input"), previous is not None, texts)
    instructions = _string(payload.get("instructions"), "instructions")
    if instructions is not None:
        texts.append(instructions)
        tokens += PER_MESSAGE_TOKENS + estimate_tokens(instructions)

    asked = _max_output_tokens(payload.get("max_output_tokens"), config)
    temperature = _number(payload.get("temperature"), "temperature", 2)
    top_p = _number(payload.get("top_p"), "top_p", 1)
    stream = _boolean(payload.get("stream"), "stream", False)
    options = payload.get("stream_options")
    if options is not None:
        if not stream:
            raise invalid_value(
                "stream_options", "The 'stream_options' parameter is only allowed when 'stream' is enabled."
            )
        if not isinstance(options, dict):
            raise invalid_type("stream_options", "an object", options)
    store = _boolean(payload.get("store"), "store", True)
    parallel = _boolean(payload.get("parallel_tool_calls"), "parallel_tool_calls", True)
    if _boolean(payload.get("background"), "background", False):
        raise _unsupported(
            "background",
            "Background responses are not supported by this mock server (it keeps no response to poll).",
        )
    user = _string(payload.get("user"), "user")
    safety_identifier = _string(payload.get("safety_identifier"), "safety_identifier")
    _check_ignored(payload)

    tools = _tools(payload.get("tools"))
    tool_choice = _tool_choice(payload.get("tool_choice"), tools)
    text_format, text = _text(payload.get("text"), "\n".join(texts))
    metadata = _metadata(payload.get("metadata"))

    if config.models and model not in config.models:
        raise model_not_found(model)
    if is_embedding_model(model):
        shown = model if len(model) <= 100 else model[:97] + "..."
        raise invalid_value(
            "model",
            f"The model `{shown}` is an embedding model and is not supported on /v1/responses; use "
            "/v1/embeddings.",
        )
    budget = asked if asked is not None else config.default_max_tokens
    if tokens + budget > config.context_window:
        raise ApiError(
            f"Your input exceeds the context window of this model: {config.context_window} tokens. You "
            f"requested {tokens + budget} tokens ({tokens} in the input, {budget} for the output). Please "
            "shorten the input or lower 'max_output_tokens'.",
            param="input",
            code="context_length_exceeded",
        )
    echo: dict[str, Any] = {
        "instructions": instructions,
        "max_output_tokens": asked,
        "max_tool_calls": payload.get("max_tool_calls"),
        "metadata": metadata,
        "parallel_tool_calls": parallel,
        "previous_response_id": previous,
        "prompt_cache_key": payload.get("prompt_cache_key"),
        "reasoning": {"effort": None, "summary": None},
        "safety_identifier": safety_identifier,
        "service_tier": "default",
        "store": store,
        "temperature": 1.0 if temperature is None else temperature,
        "text": text,
        "tool_choice": tool_choice.echo,
        "tools": [tool.echo for tool in tools],
        "top_logprobs": payload.get("top_logprobs") or 0,
        "top_p": 1.0 if top_p is None else top_p,
        "truncation": "disabled",
    }
    if user is not None:
        echo["user"] = user  # the spec types the response's ``user`` as a string, never null
    given = payload.get("input")
    answers_tool = isinstance(given, list) and given[-1].get("type") == "function_call_output"
    return ResponsesRequest(
        model, tokens, budget, stream, tools, tool_choice, text_format, answers_tool, echo
    )
