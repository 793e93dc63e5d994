"""Parse and validate request bodies: chat completions and embeddings.

Real providers reject malformed requests with a 400 that names the offending field (``param``), before
any rate limit is consulted, and so does this server: bad input must never reach the buckets, never
raise anything but :class:`~mock_server.errors.ApiError`, and never become a 500.

The fields the mock acts on are checked against OpenAI's OpenAPI spec (types, bounds, which message roles
may have null content). Where the spec leaves a request open (``CreateChatCompletionRequest`` does not
forbid other properties), unknown fields (``temperature``, ``seed``, ...) are accepted and ignored, as a
lenient provider would; where it forbids them (``CreateEmbeddingRequest`` has
``additionalProperties: false``), an unknown field is a 400 ``unknown_parameter``.

Tools and structured outputs (``tools``, ``tool_choice``, ``parallel_tool_calls``, ``response_format``)
are acted on, so they are checked like OpenAI checks them (:func:`parse_tools`,
:func:`parse_response_format`): the spec's shapes (``ChatCompletionTool``, ``ChatCompletionToolChoiceOption``,
``ResponseFormatJsonSchema``), names matching ``^[a-zA-Z0-9_-]{1,64}$``, a named function that is in
``tools``, the word "json" in the messages for JSON mode, and every JSON schema through
:func:`mock_server.structured.check_schema` (strict mode when ``strict: true``). A bad schema is a 400
whose ``param`` names the field (``tools[0].function.parameters``, ``response_format.json_schema.schema``)
and whose message says where in the schema, as OpenAI's ``Invalid schema for function 'f': ...`` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from .asgi import decode_json
from .config import ServerConfig
from .dice import Dice
from .errors import ApiError, invalid_type, invalid_value, missing_parameter, model_not_found, quoted
from .structured import SchemaProblem, check_schema, find_schema_in_text, generate
from .tokens import estimate_tokens, prompt_tokens
from .validation import is_int

__all__ = [
    "EMBEDDING_DIMENSIONS",
    "MAX_EMBEDDING_INPUTS",
    "MAX_EMBEDDING_INPUT_TOKENS",
    "MAX_EMBEDDING_REQUEST_TOKENS",
    "MAX_N",
    "ROLES",
    "ChatRequest",
    "EmbeddingInput",
    "EmbeddingRequest",
    "FunctionTool",
    "OutputFormat",
    "ToolChoice",
    "is_embedding_model",
    "native_dimensions",
    "parse_chat_request",
    "parse_embedding_request",
    "parse_json_object",
    "parse_response_format",
    "parse_tools",
    "schema_error",
]

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


@dataclass(frozen=True, slots=True)
class FunctionTool:
    """A function the model may call: its name and its (checked) parameters schema."""

    name: str
    parameters: dict[str, Any]
    """A JSON schema for the arguments (``{"type": "object", "properties": {}}`` when none was given)."""
    strict: bool = False


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """What the model may do with its tools: ``tools``, ``tool_choice`` and ``parallel_tool_calls`` in one.

    ``mode``: ``"none"`` (answer in text), ``"auto"`` (call a tool or answer, seeded by
    ``ServerConfig.tool_call_rate``) or ``"required"`` (call one or more). A named function or an
    ``allowed_tools`` list narrows ``tools`` to what may be called; a named one is ``required`` with one
    tool and no parallel calls.
    """

    mode: Literal["none", "auto", "required"] = "none"
    tools: tuple[FunctionTool, ...] = ()
    """The function tools that may be called (custom tools are accepted but never called by the mock)."""
    parallel: bool = True
    """Several calls in one reply are allowed (``parallel_tool_calls``, default true)."""


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """``response_format``: plain text, any JSON object, or JSON following a schema."""

    kind: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict[str, Any] | None = None
    """``json_schema``: the checked schema. ``json_object``: a schema found in the prompt, if any."""
    name: str | None = None
    strict: bool = False


NO_TOOLS = ToolChoice()
TEXT = OutputFormat()


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """The parts of a valid request the server uses."""

    model: str
    prompt_tokens: int
    max_tokens: int
    """Effective output budget: the request's ``max_completion_tokens``/``max_tokens`` or the default."""
    stream: bool
    include_usage: bool
    n: int = 1
    """How many choices to generate (the spec: 1 to 128)."""
    tools: ToolChoice = NO_TOOLS
    output: OutputFormat = TEXT
    after_tool_result: bool = False
    """The conversation ends with a tool (or function) result: an ``auto`` reply answers in text."""


# Which content part types each role may send (the spec's ChatCompletionRequest*MessageContentPart).
_PART_TYPES: dict[str, frozenset[str]] = {
    "system": frozenset({"text"}),
    "developer": frozenset({"text"}),
    "user": frozenset({"text", "image_url", "input_audio", "file"}),
    "assistant": frozenset({"text", "refusal"}),
    "tool": frozenset({"text"}),
}
# Roles whose message may have ``content: null`` (assistant: it may carry tool calls instead; function: the
# deprecated function result, whose content the spec types as string or null) ...
_NULLABLE_CONTENT = frozenset({"assistant", "function"})
# ... and those of them that may leave it out altogether (the spec requires it of every other role).
_OPTIONAL_CONTENT = frozenset({"assistant"})


def _check_string(message: dict[str, Any], name: str, where: str, *, required: bool) -> None:
    value = message.get(name)
    if value is None:
        if required:
            raise missing_parameter(f"{where}.{name}")
    elif not isinstance(value, str):
        raise invalid_type(f"{where}.{name}", "a string", value)


def _check_content(role: str, message: dict[str, Any], where: str) -> None:
    param = f"{where}.content"
    if "content" not in message and role not in _OPTIONAL_CONTENT:
        raise missing_parameter(param)
    content = message.get("content")
    if content is None:
        if role not in _NULLABLE_CONTENT:
            raise invalid_type(param, "a string or an array of content parts", content)
        return
    if isinstance(content, str):
        return
    if not isinstance(content, list) or role == "function":
        expected = "a string or null" if role == "function" else "a string or an array of content parts"
        raise invalid_type(param, expected, content)
    if not content:
        raise ApiError(
            f"Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty "
            "array instead.",
            param=param,
            code="empty_array",
        )
    allowed = _PART_TYPES[role]
    for j, part in enumerate(content):
        pwhere = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise invalid_type(pwhere, "an object", part)
        kind = part.get("type")
        if not isinstance(kind, str):
            raise invalid_type(f"{pwhere}.type", "a string", kind)
        if kind not in allowed:
            raise ApiError(
                f"Invalid value: {quoted(kind)}. Supported values for a {role} message are: "
                f"{sorted(allowed)}.",
                param=f"{pwhere}.type",
                code="invalid_value",
            )
        if kind in ("text", "refusal") and not isinstance(part.get(kind), str):
            raise invalid_type(f"{pwhere}.{kind}", "a string", part.get(kind))


def _check_tool_calls(message: dict[str, Any], where: str) -> None:
    calls = message.get("tool_calls")
    if calls is None:
        return
    if not isinstance(calls, list):
        raise invalid_type(f"{where}.tool_calls", "an array", calls)
    for k, call in enumerate(calls):
        cwhere = f"{where}.tool_calls[{k}]"
        if not isinstance(call, dict):
            raise invalid_type(cwhere, "an object", call)
        _check_string(call, "id", cwhere, required=True)
        _check_string(call, "type", cwhere, required=True)
        function = call.get("function") if call.get("type") == "function" else call.get("custom")
        if function is not None and not isinstance(function, dict):
            raise invalid_type(f"{cwhere}.{call['type']}", "an object", function)


def _check_messages(messages: object) -> list[dict[str, Any]]:
    """Each message against its role's variant of the spec's ``ChatCompletionRequestMessage``.

    ============  =====================================================  ===================================
    role          content                                                also required / checked
    ============  =====================================================  ===================================
    system,       a string or a non-empty array of text parts            ``name`` a string if given
    developer
    user          a string or a non-empty array of text, image_url,      ``name`` a string if given
                  input_audio or file parts
    assistant     optional: a string, text/refusal parts, or null        ``tool_calls`` an array of objects
                  (a turn that called tools has none)                    with ``id`` and ``type``
    tool          a string or a non-empty array of text parts            ``tool_call_id`` (a string)
    function      present, a string or null (deprecated)                 ``name`` (a string)
    ============  =====================================================  ===================================
    """
    if messages is None:
        raise missing_parameter("messages")
    if not isinstance(messages, list):
        raise invalid_type("messages", "an array", messages)
    if not messages:
        raise ApiError(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            param="messages",
            code="empty_array",
        )
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise invalid_type(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise missing_parameter(f"{where}.role")
        if not isinstance(role, str) or role not in ROLES:
            raise ApiError(
                f"Invalid value for '{where}.role': {quoted(role)}. Supported values are: {sorted(ROLES)}.",
                param=f"{where}.role",
                code="invalid_value",
            )
        _check_string(message, "name", where, required=role == "function")
        _check_content(role, message, where)
        if role == "tool":
            _check_string(message, "tool_call_id", where, required=True)
        elif role == "assistant":
            _check_tool_calls(message, where)
            refusal = message.get("refusal")
            if refusal is not None and not isinstance(refusal, str):
                raise invalid_type(f"{where}.refusal", "a string or null", refusal)
    return messages


def _optional_bool(payload: dict[str, Any], name: str, where: str = "") -> bool:
    value = payload.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid_type(where + name, "a boolean", value)
    return value


EmbeddingInput = str | tuple[int, ...]
"""One input to embed: a text, or the token ids of one (no tokenizer here: ids are taken as given)."""

MAX_N = 128
"""The largest ``n`` a chat request may ask for (the spec's ``maximum``)."""


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The JSON object ``body`` holds; 400 ``invalid_json`` for anything else (bad bytes, deep nesting)."""
    try:
        payload = decode_json(body)
    except (ValueError, RecursionError):
        # ValueError covers bad JSON, bad UTF-8 and over-long integers; RecursionError covers "[[[[...".
        raise ApiError(
            "We could not parse the JSON body of your request. The body must be a JSON object; "
            "check that you send valid JSON with an application/json content type.",
            code="invalid_json",
        ) from None
    if not isinstance(payload, dict):
        raise ApiError(
            f"The request body must be a JSON object, got {type(payload).__name__}.", code="invalid_json"
        )
    return payload


def _bounded_int(
    payload: dict[str, Any], name: str, minimum: int, maximum: int | None, *, default: int
) -> int:
    """An optional integer field within bounds, in OpenAI's words when it is not."""
    value = payload.get(name)
    if value is None:
        return default
    if not is_int(value):
        raise invalid_type(name, "an integer", value)
    if value < minimum:
        raise ApiError(
            f"Invalid '{name}': integer below minimum value. Expected a value >= {minimum}, but got {value} "
            "instead.",
            param=name,
            code="integer_below_min_value",
        )
    if maximum is not None and value > maximum:
        raise ApiError(
            f"Invalid '{name}': integer above maximum value. Expected a value <= {maximum}, but got {value} "
            "instead.",
            param=name,
            code="integer_above_max_value",
        )
    return value


def is_embedding_model(model: str) -> bool:
    """The mock's rule for a model's family: an id containing ``embedding`` embeds, any other one chats."""
    return "embedding" in model


def _wrong_family(model: str, family: str, path: str, other: str) -> ApiError:
    shown = model if len(model) <= 100 else model[:97] + "..."
    return ApiError(
        f"The model `{shown}` is {family} and is not supported on {path}; use {other}.",
        param="model",
        code="invalid_value",
    )


def parse_chat_request(body: bytes, config: ServerConfig) -> ChatRequest:
    """Validate ``body`` against ``config``; raise :class:`ApiError` (400/404) for anything wrong."""
    payload = parse_json_object(body)

    model = payload.get("model")
    if model is None:
        raise ApiError(
            "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
        )
    if not isinstance(model, str):
        raise invalid_type("model", "a string", model)

    messages = _check_messages(payload.get("messages"))

    max_tokens = config.default_max_tokens
    for name in ("max_tokens", "max_completion_tokens"):
        value = payload.get(name)
        if value is None:
            continue
        if not is_int(value):
            raise invalid_type(name, "an integer", value)
        if value < 1:
            raise ApiError(
                f"Invalid '{name}': integer below minimum value. Expected a value >= 1, got {value}.",
                param=name,
                code="integer_below_min_value",
            )
        if value > config.max_output_tokens:
            raise ApiError(
                f"Invalid '{name}': {value} is too large. This model supports at most "
                f"{config.max_output_tokens} completion tokens.",
                param=name,
                code="invalid_value",
            )
        max_tokens = value

    n = _bounded_int(payload, "n", 1, MAX_N, default=1)

    stream = _optional_bool(payload, "stream")
    options = payload.get("stream_options")
    include_usage = False
    if options is not None:
        if not stream:
            raise ApiError(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
                code="invalid_value",
            )
        if not isinstance(options, dict):
            raise invalid_type("stream_options", "an object", options)
        include_usage = _optional_bool(options, "include_usage", "stream_options.")

    if config.models and model not in config.models:
        raise model_not_found(model)
    if is_embedding_model(model):
        raise _wrong_family(model, "an embedding model", "/v1/chat/completions", "/v1/embeddings")

    tokens = prompt_tokens(messages)
    if tokens + max_tokens > config.context_window:
        raise ApiError(
            f"This model's maximum context length is {config.context_window} tokens. However, you requested "
            f"{tokens + max_tokens} tokens ({tokens} in the messages, {max_tokens} in the completion). "
            "Please reduce the length of the messages or completion.",
            param="messages",
            code="context_length_exceeded",
        )
    tools = parse_tools(payload)
    output = parse_response_format(payload.get("response_format"), messages)
    after_tool = messages[-1].get("role") in ("tool", "function")
    return ChatRequest(model, tokens, max_tokens, stream, include_usage, n, tools, output, after_tool)


# -- tools and structured outputs ------------------------------------------------------------------------

_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
MAX_TOOLS = 128
"""The most tools a request may offer (OpenAI's documented limit)."""
_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


def _check_name(value: object, param: str) -> str:
    if value is None:
        raise missing_parameter(param)
    if not isinstance(value, str):
        raise invalid_type(param, "a string", value)
    if not _NAME.fullmatch(value):
        raise invalid_value(
            param,
            f"Invalid '{param}': string does not match pattern. Expected a string that matches the pattern "
            f"'^[a-zA-Z0-9_-]+$' with at most 64 characters, got {quoted(value)}.",
            "invalid_value" if len(value) <= 64 else "string_above_max_length",
        )
    return value


def _optional_strict(payload: dict[str, Any], param: str) -> bool:
    value = payload.get("strict")
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid_type(param, "a boolean or null", value)
    return value


def _schema(
    value: object, *, strict: bool, param: str, subject: str, code: str, root_object: bool
) -> dict[str, Any]:
    """A client's JSON schema, checked; a problem becomes OpenAI's 400 naming ``param`` and the path."""
    if not isinstance(value, dict):
        raise invalid_type(param, "an object (a JSON schema)", value)
    try:
        schema = check_schema(value, strict=strict, where=param)
        if root_object and value and schema.get("type") != "object":
            raise SchemaProblem(
                "type",
                f"schema must be a JSON Schema of 'type: \"object\"', got 'type: {schema.get('type')!r}'",
            )
        # One trial value, so that a schema with no finite value (a required self-reference) is a 400
        # now rather than a failure after admission.
        generate(schema, Dice(0, 0))
    except RecursionError:
        raise schema_error(
            SchemaProblem("", "the schema is nested too deeply", param), subject, code
        ) from None
    except SchemaProblem as problem:
        problem.where = param
        raise schema_error(problem, subject, code) from None
    return schema


def schema_error(problem: SchemaProblem, subject: str, code: str) -> ApiError:
    """The 400 for a bad schema, in OpenAI's words: ``Invalid schema for <subject>: <path>: <problem>``.

    ``subject`` is ``function 'name'`` or ``response_format 'name'``; ``param`` is the field the schema
    came in (:attr:`SchemaProblem.where`); ``code`` is ``invalid_function_parameters`` for a function's
    parameters and ``invalid_json_schema`` for a response format's schema.
    """
    return ApiError(f"Invalid schema for {subject}: {problem}", param=problem.where or None, code=code)


def _function_tool(tool: dict[str, Any], where: str) -> FunctionTool:
    function = tool.get("function")
    if function is None:
        raise missing_parameter(f"{where}.function")
    if not isinstance(function, dict):
        raise invalid_type(f"{where}.function", "an object", function)
    name = _check_name(function.get("name"), f"{where}.function.name")
    _check_string(function, "description", f"{where}.function", required=False)
    strict = _optional_strict(function, f"{where}.function.strict")
    parameters = function.get("parameters")
    if parameters is None:
        schema = _EMPTY_PARAMETERS
        if strict:  # strict needs a closed object; "no parameters" is the empty one
            schema = {**_EMPTY_PARAMETERS, "required": [], "additionalProperties": False}
    else:
        schema = _schema(
            parameters,
            strict=strict,
            param=f"{where}.function.parameters",
            subject=f"function '{name}'",
            code="invalid_function_parameters",
            root_object=True,
        )
        if not schema:
            schema = _EMPTY_PARAMETERS
    return FunctionTool(name, schema, strict)


def parse_tools(payload: dict[str, Any]) -> ToolChoice:
    """``tools``, ``tool_choice`` and ``parallel_tool_calls`` of a chat request, checked (module docs).

    ================================================  ========================================================
    ``tool_choice``                                   what may happen
    ================================================  ========================================================
    absent                                            ``auto`` when there are function tools, else ``none``
    ``"none"`` / ``"auto"`` / ``"required"``          text / seeded choice / one or more tool calls
    ``{"type": "function", "function": {"name"}}``    exactly one call of that function (400 if not in tools)
    ``{"type": "allowed_tools", "allowed_tools":      ``mode`` over the listed tools only
    {"mode": "auto"|"required", "tools": [...]}}``
    ``{"type": "custom", "custom": {"name"}}``        must name a custom tool; the mock answers in text
    ================================================  ========================================================

    ``tool_choice`` without ``tools`` is a 400, as OpenAI answers it.
    """
    raw_tools = payload.get("tools")
    functions: list[FunctionTool] = []
    customs: set[str] = set()
    if raw_tools is not None:
        if not isinstance(raw_tools, list):
            raise invalid_type("tools", "an array", raw_tools)
        if not raw_tools:
            raise _empty_array("tools")
        if len(raw_tools) > MAX_TOOLS:
            raise invalid_value(
                "tools",
                f"Invalid 'tools': array too long. Expected an array with maximum length {MAX_TOOLS}, but "
                f"got an array with length {len(raw_tools)} instead.",
                "array_above_max_length",
            )
        for i, tool in enumerate(raw_tools):
            where = f"tools[{i}]"
            if not isinstance(tool, dict):
                raise invalid_type(where, "an object", tool)
            kind = tool.get("type")
            if kind is None:
                raise missing_parameter(f"{where}.type")
            if kind == "function":
                functions.append(_function_tool(tool, where))
            elif kind == "custom":
                custom = tool.get("custom")
                if not isinstance(custom, dict):
                    raise invalid_type(f"{where}.custom", "an object", custom)
                customs.add(_check_name(custom.get("name"), f"{where}.custom.name"))
            else:
                raise invalid_value(
                    f"{where}.type",
                    f"Invalid value: {quoted(kind)}. Supported values are: 'function' and 'custom'.",
                )
    parallel = payload.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise invalid_type("parallel_tool_calls", "a boolean", parallel)
    allow_parallel = parallel is not False

    choice = payload.get("tool_choice")
    if choice is None:
        return ToolChoice("auto", tuple(functions), allow_parallel) if functions else NO_TOOLS
    if raw_tools is None:
        raise invalid_value(
            "tool_choice",
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
        )
    by_name = {tool.name: tool for tool in functions}
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise invalid_value(
                "tool_choice",
                f"Invalid value: {quoted(choice)}. Supported values are: 'none', 'auto', and 'required'.",
            )
        if choice == "none" or not functions:
            return NO_TOOLS
        return ToolChoice("auto" if choice == "auto" else "required", tuple(functions), allow_parallel)
    if not isinstance(choice, dict):
        raise invalid_type("tool_choice", "a string or an object", choice)
    kind = choice.get("type")
    if kind == "function":
        function = choice.get("function")
        if not isinstance(function, dict):
            raise invalid_type("tool_choice.function", "an object", function)
        name = _check_name(function.get("name"), "tool_choice.function.name")
        if name not in by_name:
            raise invalid_value(
                "tool_choice",
                f"Invalid value for 'tool_choice': function '{name}' is not one of the functions in 'tools' "
                f"(available: {', '.join(sorted(by_name)) or 'none'}).",
            )
        return ToolChoice("required", (by_name[name],), parallel=False)
    if kind == "custom":
        custom = choice.get("custom")
        if not isinstance(custom, dict):
            raise invalid_type("tool_choice.custom", "an object", custom)
        name = _check_name(custom.get("name"), "tool_choice.custom.name")
        if name not in customs:
            raise invalid_value(
                "tool_choice", f"Invalid value for 'tool_choice': custom tool '{name}' is not in 'tools'."
            )
        return NO_TOOLS
    if kind == "allowed_tools":
        return _allowed_tools(choice.get("allowed_tools"), by_name, customs, allow_parallel)
    if kind is None:
        raise missing_parameter("tool_choice.type")
    raise invalid_value(
        "tool_choice.type",
        f"Invalid value: {quoted(kind)}. Supported values are: 'function', 'custom' and 'allowed_tools'.",
    )


def _allowed_tools(
    allowed: object, by_name: dict[str, FunctionTool], customs: set[str], parallel: bool
) -> ToolChoice:
    param = "tool_choice.allowed_tools"
    if not isinstance(allowed, dict):
        raise invalid_type(param, "an object", allowed)
    mode = allowed.get("mode")
    if mode not in ("auto", "required"):
        raise invalid_value(
            f"{param}.mode", f"Invalid value: {quoted(mode)}. Supported values are: 'auto' and 'required'."
        )
    listed = allowed.get("tools")
    if not isinstance(listed, list):
        raise invalid_type(f"{param}.tools", "an array", listed)
    chosen: list[FunctionTool] = []
    for k, entry in enumerate(listed):
        where = f"{param}.tools[{k}]"
        if not isinstance(entry, dict):
            raise invalid_type(where, "an object", entry)
        body = entry.get(entry.get("type")) if isinstance(entry.get("type"), str) else None
        name = body.get("name") if isinstance(body, dict) else entry.get("name")
        if isinstance(name, str) and name in by_name:
            chosen.append(by_name[name])
        elif not (isinstance(name, str) and name in customs):
            raise invalid_value(
                where, f"Invalid value for '{where}': {quoted(name)} is not a tool in 'tools'."
            )
    if not chosen:
        return NO_TOOLS
    return ToolChoice("auto" if mode == "auto" else "required", tuple(chosen), parallel)


def _mentions_json(messages: list[dict[str, Any]]) -> bool:
    for message in messages:
        content = message.get("content")
        texts = [content] if isinstance(content, str) else []
        if isinstance(content, list):
            texts = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        if any("json" in text.lower() for text in texts):
            return True
    return False


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return "\n".join(parts)


def parse_response_format(value: object, messages: list[dict[str, Any]]) -> OutputFormat:
    """``response_format``, checked: ``text``, ``json_object`` or ``json_schema`` (the spec's three).

    * ``json_object`` needs the word "json" somewhere in the messages — OpenAI answers a 400 otherwise
      (param ``messages``); the reply follows the last JSON schema written in the prompt, if there is one
      (:func:`~mock_server.structured.find_schema_in_text`), else it is a small object.
    * ``json_schema`` needs ``json_schema.name`` (``^[a-zA-Z0-9_-]{1,64}$``); its ``schema`` is checked, in
      strict mode when ``strict`` is true; without a ``schema`` any JSON object will do.
    """
    if value is None:
        return TEXT
    if not isinstance(value, dict):
        raise invalid_type("response_format", "an object", value)
    kind = value.get("type")
    if kind is None:
        raise missing_parameter("response_format.type")
    if kind == "text":
        return TEXT
    if kind == "json_object":
        if not _mentions_json(messages):
            raise ApiError(
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
                "'json_object'.",
                param="messages",
                code=None,
            )
        return OutputFormat("json_object", find_schema_in_text(_prompt_text(messages)))
    if kind != "json_schema":
        raise invalid_value(
            "response_format.type",
            f"Invalid value: {quoted(kind)}. Supported values are: 'text', 'json_object', and 'json_schema'.",
        )
    spec = value.get("json_schema")
    if spec is None:
        raise missing_parameter("response_format.json_schema")
    if not isinstance(spec, dict):
        raise invalid_type("response_format.json_schema", "an object", spec)
    name = _check_name(spec.get("name"), "response_format.json_schema.name")
    _check_string(spec, "description", "response_format.json_schema", required=False)
    strict = _optional_strict(spec, "response_format.json_schema.strict")
    raw = spec.get("schema")
    schema: dict[str, Any] = {"type": "object"}
    if raw is not None:
        schema = _schema(
            raw,
            strict=strict,
            param="response_format.json_schema.schema",
            subject=f"response_format '{name}'",
            code="invalid_json_schema",
            root_object=False,
        )
    return OutputFormat("json_schema", schema, name, strict)


# -- embeddings ------------------------------------------------------------------------------------------

EMBEDDING_DIMENSIONS: dict[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
"""Native vector sizes (OpenAI's published sizes); any other embedding model id gets 1536."""

MAX_EMBEDDING_INPUTS = 2048
"""The spec's ``maxItems`` for every array form of ``input``."""
MAX_EMBEDDING_INPUT_TOKENS = 8192
"""The spec: "The input must not exceed the max input tokens for the model (8192 tokens for all ...)"."""
MAX_EMBEDDING_REQUEST_TOKENS = 300_000
"""The spec: "all embedding models enforce a maximum of 300,000 tokens summed across all inputs"."""

_EMBEDDING_FIELDS = frozenset({"input", "model", "encoding_format", "dimensions", "user"})
_DEFAULT_EMBEDDING_DIMENSIONS = 1536


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    """The parts of a valid ``POST /v1/embeddings`` request the server uses."""

    model: str
    inputs: tuple[EmbeddingInput, ...]
    """What to embed, one entry per vector returned (a single string or token array is one input)."""
    tokens: tuple[int, ...]
    """Tokens of each input: ``ceil(chars/4)`` for a text, the number of ids for a token array."""
    native_dimensions: int
    """The model's own vector size."""
    dimensions: int
    """The size asked for (``dimensions``), else the native size."""
    encoding_format: str
    """``float`` (a JSON array) or ``base64`` (little-endian float32 bytes)."""

    @property
    def prompt_tokens(self) -> int:
        """All inputs' tokens: what ``usage`` reports and what is charged against TPM."""
        return sum(self.tokens)


def native_dimensions(model: str) -> int:
    """The vector size of an embedding model (:data:`EMBEDDING_DIMENSIONS`, else 1536)."""
    return EMBEDDING_DIMENSIONS.get(model, _DEFAULT_EMBEDDING_DIMENSIONS)


def _token_ids(value: list[Any], param: str) -> tuple[int, ...]:
    for k, token in enumerate(value):
        if not is_int(token):
            raise invalid_type(f"{param}[{k}]", "an integer token id", token)
        if token < 0:
            raise ApiError(
                f"Invalid '{param}[{k}]': integer below minimum value. Token ids are >= 0, got {token}.",
                param=f"{param}[{k}]",
                code="integer_below_min_value",
            )
    return tuple(value)


def _empty_array(param: str) -> ApiError:
    return ApiError(
        f"Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty array "
        "instead.",
        param=param,
        code="empty_array",
    )


def _embedding_inputs(value: object) -> tuple[EmbeddingInput, ...]:
    """The spec's four forms of ``input``: a string, strings, token ids, or lists of token ids."""
    expected = "a string, an array of strings, an array of integers or an array of arrays of integers"
    if value is None:
        raise missing_parameter("input")
    if isinstance(value, str):
        if not value:
            raise ApiError(
                "Invalid 'input': empty string. Expected a non-empty string.",
                param="input",
                code="invalid_value",
            )
        return (value,)
    if not isinstance(value, list):
        raise invalid_type("input", expected, value)
    if not value:
        raise _empty_array("input")
    if len(value) > MAX_EMBEDDING_INPUTS:
        raise ApiError(
            f"Invalid 'input': array too long. Expected an array with maximum length {MAX_EMBEDDING_INPUTS}, "
            f"but got an array with length {len(value)} instead.",
            param="input",
            code="array_above_max_length",
        )
    first = value[0]
    if is_int(first):
        return (_token_ids(value, "input"),)  # one text, given as its token ids
    inputs: list[EmbeddingInput] = []
    for i, item in enumerate(value):
        param = f"input[{i}]"
        if isinstance(first, str):
            if not isinstance(item, str):
                raise invalid_type(param, "a string (like input[0])", item)
            if not item:
                raise ApiError(
                    f"Invalid '{param}': empty string. Expected a non-empty string.",
                    param=param,
                    code="invalid_value",
                )
            inputs.append(item)
        elif isinstance(first, list):
            if not isinstance(item, list):
                raise invalid_type(param, "an array of integers (like input[0])", item)
            if not item:
                raise _empty_array(param)
            inputs.append(_token_ids(item, param))
        else:
            raise invalid_type(param, "a string, an integer or an array of integers", item)
    return tuple(inputs)


def parse_embedding_request(body: bytes, config: ServerConfig) -> EmbeddingRequest:
    """Validate an embeddings ``body`` (the spec's ``CreateEmbeddingRequest``); :class:`ApiError` if wrong.

    The checks, first failure first: the JSON object; no field the spec does not define; ``model``;
    ``input``; ``encoding_format``, ``dimensions``, ``user`` (types and bounds); the model served and an
    embedding model; ``dimensions`` supported and not above the model's size; each input within 8192
    tokens and all of them within 300,000.
    """
    payload = parse_json_object(body)
    for name in payload:
        if name not in _EMBEDDING_FIELDS:
            raise ApiError(
                f"Unknown parameter: '{quoted(name, 60)}'.", param=name[:60], code="unknown_parameter"
            )
    model = payload.get("model")
    if model is None:
        raise missing_parameter("model")
    if not isinstance(model, str):
        raise invalid_type("model", "a string", model)
    inputs = _embedding_inputs(payload.get("input"))

    encoding_format = payload.get("encoding_format", "float")
    if encoding_format is None:
        encoding_format = "float"
    if not isinstance(encoding_format, str):
        raise invalid_type("encoding_format", "a string", encoding_format)
    if encoding_format not in ("float", "base64"):
        raise ApiError(
            f"Invalid value for 'encoding_format': {quoted(encoding_format)}. Supported values are: "
            "'float' and 'base64'.",
            param="encoding_format",
            code="invalid_value",
        )
    asked = payload.get("dimensions")
    if asked is not None:
        asked = _bounded_int(payload, "dimensions", 1, None, default=0)
    user = payload.get("user")
    if user is not None and not isinstance(user, str):
        raise invalid_type("user", "a string", user)

    if config.models and model not in config.models:
        raise model_not_found(model)
    if not is_embedding_model(model):
        raise _wrong_family(model, "not an embedding model", "/v1/embeddings", "/v1/chat/completions")
    native = native_dimensions(model)
    dimensions = native
    if asked is not None:
        if "ada" in model:
            # The spec: dimensions are "Only supported in text-embedding-3 and later models".
            raise ApiError(
                "This model does not support specifying dimensions.", param="dimensions", code="invalid_value"
            )
        if asked > native:
            raise ApiError(
                f"Invalid 'dimensions': {asked}. The model `{model[:100]}` has {native} dimensions; ask "
                "for at most that many.",
                param="dimensions",
                code="invalid_value",
            )
        dimensions = asked

    tokens = tuple(estimate_tokens(item) if isinstance(item, str) else len(item) for item in inputs)
    for i, count in enumerate(tokens):
        if count > MAX_EMBEDDING_INPUT_TOKENS:
            raise ApiError(
                f"This model's maximum context length is {MAX_EMBEDDING_INPUT_TOKENS} tokens, however you "
                f"requested {count} tokens ({count} in your prompt; 0 for the completion). Please reduce "
                "your prompt; or completion length.",
                param="input" if len(inputs) == 1 else f"input[{i}]",
                code="context_length_exceeded",
            )
    total = sum(tokens)
    if total > MAX_EMBEDDING_REQUEST_TOKENS:
        raise ApiError(
            f"Requested {total} tokens, max {MAX_EMBEDDING_REQUEST_TOKENS} tokens per request",
            param="input",
            code="max_tokens_per_request",
            type_="max_tokens_per_request",
        )
    return EmbeddingRequest(model, inputs, tokens, native, dimensions, encoding_format)
