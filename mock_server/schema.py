"""Parse and validate a chat-completions request body.

Real providers reject malformed requests with a 400 that names the offending field (``param``), before
any rate limit is consulted, and so does this server: bad input must never reach the buckets, never
raise anything but :class:`~mock_server.errors.ApiError`, and never become a 500.

Only the fields the mock acts on are checked strictly; unknown fields (``temperature``, ``tools``, ...) are
accepted and ignored, as a lenient provider would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .config import ServerConfig
from .errors import ApiError, model_not_found
from .tokens import prompt_tokens
from .validation import is_int

__all__ = ["ROLES", "ChatRequest", "parse_chat_request"]

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """The parts of a valid request the server uses."""

    model: str
    prompt_tokens: int
    max_tokens: int
    """Effective output budget: the request's ``max_completion_tokens``/``max_tokens`` or the default."""
    stream: bool
    include_usage: bool


def _short(value: object, limit: int = 80) -> str:
    # Error messages quote what they got; a megabyte of garbage should not come back in full.
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_error(param: str, expected: str, got: object) -> ApiError:
    return ApiError(
        f"Invalid type for '{param}': expected {expected}, but got {type(got).__name__} {_short(got)}.",
        param=param,
        code="invalid_type",
    )


def _check_messages(messages: object) -> list[dict[str, Any]]:
    if messages is None:
        raise ApiError(
            "Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter"
        )
    if not isinstance(messages, list):
        raise _type_error("messages", "an array", messages)
    if not messages:
        raise ApiError(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            param="messages",
            code="empty_array",
        )
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _type_error(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise ApiError(
                f"Missing required parameter: '{where}.role'.",
                param=f"{where}.role",
                code="missing_required_parameter",
            )
        if not isinstance(role, str) or role not in ROLES:
            raise ApiError(
                f"Invalid value for '{where}.role': {_short(role)}. Supported values are: {sorted(ROLES)}.",
                param=f"{where}.role",
                code="invalid_value",
            )
        name = message.get("name")
        if name is not None and not isinstance(name, str):
            raise _type_error(f"{where}.name", "a string", name)
        content = message.get("content")
        if content is None:
            # Only an assistant turn may omit content (it carried tool calls instead).
            if role != "assistant":
                raise ApiError(
                    f"Missing required parameter: '{where}.content'.",
                    param=f"{where}.content",
                    code="missing_required_parameter",
                )
        elif isinstance(content, list):
            for j, part in enumerate(content):
                pwhere = f"{where}.content[{j}]"
                if not isinstance(part, dict):
                    raise _type_error(pwhere, "an object", part)
                if not isinstance(part.get("type"), str):
                    raise _type_error(f"{pwhere}.type", "a string", part.get("type"))
                if part["type"] == "text" and not isinstance(part.get("text"), str):
                    raise _type_error(f"{pwhere}.text", "a string", part.get("text"))
        elif not isinstance(content, str):
            raise _type_error(f"{where}.content", "a string or an array of content parts", content)
    return messages


def _optional_bool(payload: dict[str, Any], name: str, where: str = "") -> bool:
    value = payload.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _type_error(where + name, "a boolean", value)
    return value


def parse_chat_request(body: bytes, config: ServerConfig) -> ChatRequest:
    """Validate ``body`` against ``config``; raise :class:`ApiError` (400/404) for anything wrong."""
    try:
        payload = json.loads(body)
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

    model = payload.get("model")
    if model is None:
        raise ApiError(
            "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
        )
    if not isinstance(model, str):
        raise _type_error("model", "a string", model)

    messages = _check_messages(payload.get("messages"))

    max_tokens = config.default_max_tokens
    for name in ("max_tokens", "max_completion_tokens"):
        value = payload.get(name)
        if value is None:
            continue
        if not is_int(value):
            raise _type_error(name, "an integer", value)
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

    n = payload.get("n")
    if n is not None and n != 1:
        if not is_int(n):
            raise _type_error("n", "an integer", n)
        raise ApiError("This mock server supports only n=1.", param="n", code="unsupported_value")

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
            raise _type_error("stream_options", "an object", options)
        include_usage = _optional_bool(options, "include_usage", "stream_options.")

    if config.models and model not in config.models:
        raise model_not_found(model)

    tokens = prompt_tokens(messages)
    if tokens + max_tokens > config.context_window:
        raise ApiError(
            f"This model's maximum context length is {config.context_window} tokens. However, you requested "
            f"{tokens + max_tokens} tokens ({tokens} in the messages, {max_tokens} in the completion). "
            "Please reduce the length of the messages or completion.",
            param="messages",
            code="context_length_exceeded",
        )
    return ChatRequest(model, tokens, max_tokens, stream, include_usage)
