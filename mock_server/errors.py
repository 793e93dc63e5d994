"""OpenAI-shaped errors: one exception type and the JSON body every error response uses.

Every error the server sends — bad JSON, an unknown model, a rate limit, an injected 500 — has the same
body, because client code (and the official SDK) parse exactly this shape::

    {"error": {"message": "...", "type": "...", "param": null | "<field>", "code": null | "<code>"}}

``type`` says which family the error belongs to (``invalid_request_error``, ``requests``/``tokens`` for
rate limits, ``insufficient_quota``, ``server_error``); ``code`` is the machine-readable reason.
"""

from __future__ import annotations

import json

__all__ = [
    "ApiError",
    "error_body",
    "invalid_type",
    "invalid_value",
    "missing_parameter",
    "model_not_found",
    "quoted",
]

_ENCODER = json.JSONEncoder(separators=(",", ":"))


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> bytes:
    """The JSON bytes of an OpenAI-style error object."""
    return _ENCODER.encode(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}
    ).encode()


class ApiError(Exception):
    """A request the server refuses: raised while handling it, turned into a response by the app.

    Defaults describe the common case, a malformed request (400 ``invalid_request_error``).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        param: str | None = None,
        code: str | None = None,
        type_: str = "invalid_request_error",
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
        self.code = code
        self.type = type_
        self.headers = headers

    def body(self) -> bytes:
        """The response body for this error."""
        return error_body(self.message, self.type, self.param, self.code)


def model_not_found(model: str) -> ApiError:
    """404 for a model id the server does not serve, in OpenAI's words (a very long id is shortened)."""
    shown = model if len(model) <= 100 else model[:97] + "..."
    return ApiError(
        f"The model `{shown}` does not exist or you do not have access to it.",
        status=404,
        code="model_not_found",
    )


def quoted(value: object, limit: int = 80) -> str:
    """``repr(value)`` for an error message, cut at ``limit``: a megabyte of garbage does not come back."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def invalid_type(param: str, expected: str, got: object) -> ApiError:
    """400 ``invalid_type``: ``param`` holds the wrong JSON type, in OpenAI's words."""
    return ApiError(
        f"Invalid type for '{param}': expected {expected}, but got {type(got).__name__} {quoted(got)}.",
        param=param,
        code="invalid_type",
    )


def missing_parameter(param: str) -> ApiError:
    """400 ``missing_required_parameter`` for ``param``, in OpenAI's words."""
    return ApiError(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def invalid_value(param: str, message: str, code: str = "invalid_value") -> ApiError:
    """400 with ``message`` about ``param`` (``code`` ``invalid_value`` unless another is given)."""
    return ApiError(message, param=param, code=code)
