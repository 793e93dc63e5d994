"""Validating an Anthropic Messages request body: every mistake a 400, never a 500.

:func:`parse_messages_request` turns the body of ``POST /v1/messages`` (and, with ``count_only``, of
``POST /v1/messages/count_tokens``) into a :class:`MessagesRequest`, or raises
:class:`~mock_server.anthropic_errors.AnthropicError`. What it checks, in Anthropic's terms:

=======================  ==============================================================================
field                    rule
=======================  ==============================================================================
``model``                required string; a model the server does not serve is 404 ``not_found_error``
                         (checked after the rest of the body, as Anthropic does)
``max_tokens``           required integer, 1 ≤ n ≤ ``ServerConfig.max_output_tokens`` (not on
                         count_tokens)
``messages``             required, non-empty list; roles ``user``/``assistant``, the first ``user``;
                         content a string or a non-empty list of blocks: ``text``, ``image``,
                         ``document``, ``tool_use`` (assistant), ``tool_result`` (user), ``thinking``,
                         ``redacted_thinking``, ``search_result``, ``container_upload``; anything else is
                         an unknown block type
``system``               a string or a list of ``text`` blocks
``tools``                a list of client tools: ``name`` (``^[a-zA-Z0-9_-]{1,64}$``, unique),
                         ``description`` (string), ``input_schema`` (a JSON schema of type object,
                         checked by :func:`mock_server.structured.check_schema`). Server tools (a
                         ``type`` such as ``web_search_20250305``) are refused: the mock cannot run them
``tool_choice``          ``{"type": "auto" | "any" | "tool" | "none"}``; ``tool`` needs a ``name`` among
                         the tools; ``disable_parallel_tool_use`` a boolean
``stop_sequences``       a list of non-empty strings (a stop sequence found in the text ends it there)
``temperature``          number in [0, 1]; ``top_p`` in [0, 1]; ``top_k`` integer ≥ 0
``metadata``             an object (``user_id`` a string or null); ``stream`` a boolean
=======================  ==============================================================================

``thinking``, ``service_tier``, ``container``, ``mcp_servers`` and ``context_management`` are accepted
and ignored (the mock does not think); any other top-level field is "Extra inputs are not permitted",
as Anthropic answers. Messages say where the problem is, ``messages.1.content.0.text: ...``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .anthropic_errors import AnthropicError
from .config import ServerConfig
from .dice import Dice
from .structured import SchemaProblem, check_schema, generate
from .tokens import messages_input_tokens
from .validation import is_int, is_real

__all__ = ["MessagesRequest", "Tool", "ToolChoice", "parse_messages_request"]

ToolMode = Literal["auto", "any", "tool", "none"]

_MODES: dict[str, ToolMode] = {"auto": "auto", "any": "any", "tool": "tool", "none": "none"}
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_MAX_TOOLS = 128
_BLOCK_TYPES = frozenset(
    {
        "text",
        "image",
        "document",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "search_result",
        "container_upload",
    }
)
_MESSAGE_FIELDS = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "metadata",
        "stream",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
    }
)
_COUNT_FIELDS = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers", "context_management"}
)


@dataclass(frozen=True, slots=True)
class Tool:
    """A client tool the model may call."""

    name: str
    input_schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """How the model may use the tools: ``auto`` (its choice), ``any`` (must call one), ``tool`` (must call
    ``name``), ``none`` (must not)."""

    mode: ToolMode = "auto"
    name: str | None = None
    parallel: bool = True
    """``disable_parallel_tool_use`` was not set: the model may call more than one tool."""


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    """A validated Messages request: what the route needs to charge it and to answer it."""

    model: str
    max_tokens: int
    input_tokens: int
    """By :func:`mock_server.tokens.messages_input_tokens`."""
    stream: bool = False
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    stop_sequences: tuple[str, ...] = ()
    answers_tool: bool = False
    """The last message carries a ``tool_result``: under ``auto`` the model answers it in text."""


def _invalid(path: str, problem: str) -> AnthropicError:
    return AnthropicError(f"{path}: {problem}" if path else problem)


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object"


def _expect(value: object, kind: type, path: str, wanted: str) -> None:
    if not isinstance(value, kind):
        raise _invalid(path, f"Input should be {wanted}, got {_type_name(value)}")


def _dict(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(path, f"Input should be a valid dictionary, got {_type_name(value)}")
    return value


def _list(value: object, path: str, wanted: str = "a valid list") -> list[Any]:
    if not isinstance(value, list):
        raise _invalid(path, f"Input should be {wanted}, got {_type_name(value)}")
    return value


def _load(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        # ValueError: bad JSON, bad UTF-8, an over-long integer; RecursionError: "[[[[...".
        raise AnthropicError("There was an issue with the request body: it is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise AnthropicError(f"The request body must be a JSON object, got {_type_name(payload)}.")
    return payload


def _text(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise _invalid(path, f"Input should be a valid string, got {_type_name(value)}")
    return value


def _block(block: object, role: str, path: str) -> Mapping[str, Any]:
    """Check one content block of a message (tool_result content blocks recurse here too)."""
    block = _dict(block, path)
    kind = block.get("type")
    if kind is None:
        raise _invalid(f"{path}.type", "Field required")
    if not isinstance(kind, str) or kind not in _BLOCK_TYPES:
        raise _invalid(
            f"{path}.type", f"Input tag {str(kind)[:40]!r} does not match any of the expected block types"
        )
    if kind == "text":
        if not _text(block.get("text"), f"{path}.text"):
            raise _invalid(f"{path}.text", "text content blocks must be non-empty")
    elif kind in ("image", "document"):
        _expect(block.get("source"), dict, f"{path}.source", "a valid dictionary")
    elif kind == "tool_use":
        if role != "assistant":
            raise _invalid(path, "tool_use blocks may only appear in assistant messages")
        _text(block.get("id"), f"{path}.id")
        _text(block.get("name"), f"{path}.name")
        _expect(block.get("input"), dict, f"{path}.input", "a valid dictionary")
    elif kind == "tool_result":
        if role != "user":
            raise _invalid(path, "tool_result blocks may only appear in user messages")
        _text(block.get("tool_use_id"), f"{path}.tool_use_id")
        content = block.get("content")
        if isinstance(content, list):
            for j, inner in enumerate(content):
                inner_path = f"{path}.content.{j}"
                checked = _block(inner, role, inner_path)
                if checked.get("type") in ("tool_use", "tool_result"):
                    raise _invalid(f"{inner_path}.type", "a tool result cannot hold tool blocks")
        elif content is not None and not isinstance(content, str):
            raise _invalid(f"{path}.content", "Input should be a valid string or a list of blocks")
        if block.get("is_error") is not None:
            _expect(block.get("is_error"), bool, f"{path}.is_error", "a valid boolean")
    return block


def _messages(value: object) -> tuple[list[dict[str, Any]], bool]:
    """The checked messages, and whether the last one answers a tool."""
    if value is None:
        raise _invalid("messages", "Field required")
    value = _list(value, "messages")
    if not value:
        raise _invalid("messages", "at least one message is required")
    answers_tool = False
    for i, message in enumerate(value):
        path = f"messages.{i}"
        message = _dict(message, path)
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise _invalid(f"{path}.role", "Input should be 'user' or 'assistant'")
        if i == 0 and role != "user":
            raise _invalid(f"{path}.role", "the first message must use the 'user' role")
        if "content" not in message:
            raise _invalid(f"{path}.content", "Field required")
        content = message["content"]
        if isinstance(content, list):
            if not content:
                raise _invalid(f"{path}.content", "a message must have at least one content block")
            blocks = [_block(b, role, f"{path}.content.{j}") for j, b in enumerate(content)]
            answers_tool = any(b.get("type") == "tool_result" for b in blocks)
        elif isinstance(content, str):
            answers_tool = False
        else:
            raise _invalid(f"{path}.content", "Input should be a valid string or a list of blocks")
        for extra in message:
            if extra not in ("role", "content"):
                raise _invalid(f"{path}.{str(extra)[:40]}", "Extra inputs are not permitted")
    return value, answers_tool


def _system(value: object) -> str | list[dict[str, Any]] | None:
    if value is None or isinstance(value, str):
        return value
    value = _list(value, "system", "a valid string or a list of text blocks")
    for i, block in enumerate(value):
        path = f"system.{i}"
        block = _dict(block, path)
        if block.get("type") != "text":
            raise _invalid(f"{path}.type", "system blocks must be text blocks")
        _text(block.get("text"), f"{path}.text")
    return value


def _tools(value: object) -> tuple[list[dict[str, Any]], tuple[Tool, ...]]:
    if value is None:
        return [], ()
    value = _list(value, "tools")
    if len(value) > _MAX_TOOLS:
        raise _invalid("tools", f"at most {_MAX_TOOLS} tools are allowed, got {len(value)}")
    tools: list[Tool] = []
    for i, tool in enumerate(value):
        path = f"tools.{i}"
        tool = _dict(tool, path)
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise _invalid(
                f"{path}.type",
                f"server tool {str(kind)[:60]!r} is not supported by this mock server (client tools only)",
            )
        if "name" not in tool:
            raise _invalid(f"{path}.name", "Field required")
        name = _text(tool.get("name"), f"{path}.name")
        if not _TOOL_NAME.fullmatch(name):
            raise _invalid(f"{path}.name", "String should match pattern '^[a-zA-Z0-9_-]{1,64}$'")
        if any(t.name == name for t in tools):
            raise _invalid("tools", f"Tool names must be unique: {name!r} appears twice")
        if tool.get("description") is not None:
            _text(tool.get("description"), f"{path}.description")
        if "input_schema" not in tool:
            raise _invalid(f"{path}.input_schema", "Field required")
        tools.append(Tool(name, _input_schema(tool["input_schema"], f"{path}.input_schema")))
    return value, tuple(tools)


def _input_schema(value: object, path: str) -> dict[str, Any]:
    value = _dict(value, path)
    if value.get("type") != "object":
        raise _invalid(f"{path}.type", "Input should be 'object'")
    try:
        schema = check_schema(value, strict=False, where=path)
        # One trial value now, so a schema with no finite value is a 400, not a failure after admission.
        generate(schema, Dice(0, 0))
    except SchemaProblem as problem:
        raise _invalid(path, f"JSON schema is invalid: {problem}") from None
    except (RecursionError, ValueError, ArithmeticError):
        raise _invalid(path, "JSON schema is invalid: no value can satisfy it") from None
    return schema


def _tool_choice(value: object, tools: tuple[Tool, ...]) -> ToolChoice:
    if value is None:
        return ToolChoice("auto" if tools else "none")
    value = _dict(value, "tool_choice")
    raw = value.get("type")
    mode = _MODES.get(raw) if isinstance(raw, str) else None  # a list is not even hashable
    if mode is None:
        raise _invalid("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'")
    disable = value.get("disable_parallel_tool_use", False)
    if mode != "none":
        _expect(disable, bool, "tool_choice.disable_parallel_tool_use", "a valid boolean")
    name = None
    if mode == "tool":
        name = _text(value.get("name"), "tool_choice.name")
        if not any(tool.name == name for tool in tools):
            raise _invalid("tool_choice.name", f"Tool {name[:64]!r} not found in the provided tools")
    if mode in ("any", "tool") and not tools:
        raise _invalid("tool_choice", f"tool_choice type {mode!r} requires tools")
    if not tools:
        mode = "none"
    return ToolChoice(mode, name, not disable)


def _unit(payload: Mapping[str, Any], name: str) -> None:
    value = payload.get(name)
    if value is None:
        return
    if not is_real(value) or not 0.0 <= value <= 1.0:
        raise _invalid(name, "Input should be a number between 0 and 1")


def _options(payload: Mapping[str, Any]) -> tuple[bool, tuple[str, ...]]:
    """Check the optional sampling fields; return ``stream`` and ``stop_sequences``."""
    _unit(payload, "temperature")
    _unit(payload, "top_p")
    top_k = payload.get("top_k")
    if top_k is not None and (not is_int(top_k) or top_k < 0):
        raise _invalid("top_k", "Input should be an integer greater than or equal to 0")
    stream = payload.get("stream", False)
    if stream is None:
        stream = False
    _expect(stream, bool, "stream", "a valid boolean")
    stops = payload.get("stop_sequences")
    stop_sequences: tuple[str, ...] = ()
    if stops is not None:
        stop_list = _list(stops, "stop_sequences")
        for i, stop in enumerate(stop_list):
            if not _text(stop, f"stop_sequences.{i}"):
                raise _invalid(f"stop_sequences.{i}", "stop sequences must be non-empty")
        stop_sequences = tuple(stop_list)
    metadata = payload.get("metadata")
    if metadata is not None:
        user_id = _dict(metadata, "metadata").get("user_id")
        if user_id is not None:
            _text(user_id, "metadata.user_id")
    return bool(stream), stop_sequences


def _max_tokens(value: object, config: ServerConfig) -> int:
    if value is None:
        raise _invalid("max_tokens", "Field required")
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        value = int(value)  # 1024.0 is an integer to a JSON schema validator
    if not is_int(value):
        raise _invalid("max_tokens", f"Input should be a valid integer, got {_type_name(value)}")
    if value < 1:
        raise _invalid("max_tokens", "Input should be greater than or equal to 1")
    if value > config.max_output_tokens:
        raise _invalid(
            "max_tokens",
            f"{value} > {config.max_output_tokens}, which is the maximum allowed number of output tokens "
            "for this model",
        )
    return value


def parse_messages_request(body: bytes, config: ServerConfig, *, count_only: bool = False) -> MessagesRequest:
    """Validate a Messages (``count_only``: count_tokens) body; raise :class:`AnthropicError` if it is bad.

    The fields are checked in the order ``model``, ``max_tokens``, ``messages``, ``system``, ``tools``,
    ``tool_choice``, the rest; the model's existence last (404), so a bad body is a 400 whatever its model.
    """
    payload = _load(body)
    allowed = _COUNT_FIELDS if count_only else _MESSAGE_FIELDS
    for name in payload:
        if name not in allowed:
            raise _invalid(str(name)[:60], "Extra inputs are not permitted")
    if "model" not in payload:
        raise _invalid("model", "Field required")
    model = _text(payload["model"], "model")
    max_tokens = 1 if count_only else _max_tokens(payload.get("max_tokens"), config)
    messages, answers_tool = _messages(payload.get("messages"))
    system = _system(payload.get("system"))
    raw_tools, tools = _tools(payload.get("tools"))
    choice = _tool_choice(payload.get("tool_choice"), tools)
    stream, stop_sequences = (False, ()) if count_only else _options(payload)
    try:
        input_tokens = messages_input_tokens(system, messages, raw_tools)
    except (RecursionError, ValueError):
        # A tool_use input nested past what the encoder can walk (or holding NaN): not countable.
        raise _invalid("messages", "a tool_use input is nested too deeply") from None
    if input_tokens + (0 if count_only else max_tokens) > config.context_window:
        raise AnthropicError(
            f"prompt is too long: {input_tokens} tokens + max_tokens {max_tokens} > "
            f"{config.context_window} maximum"
        )
    if config.models and model not in config.models:
        shown = model if len(model) <= 100 else model[:97] + "..."
        raise AnthropicError(f"model: {shown}", status=404)
    return MessagesRequest(
        model=model,
        max_tokens=max_tokens,
        input_tokens=input_tokens,
        stream=stream,
        tools=tools,
        tool_choice=choice,
        stop_sequences=stop_sequences,
        answers_tool=answers_tool,
    )
