"""Anthropic-shaped errors: the body every ``/v1/messages`` error uses, and the status each type has.

Anthropic's error body differs from OpenAI's (:mod:`mock_server.errors`): a ``type: "error"`` envelope
and an error object with only a ``type`` and a ``message`` — no ``param``, no ``code``::

    {"type": "error", "error": {"type": "rate_limit_error", "message": "..."}}

The ``type`` follows from the HTTP status, as Anthropic documents its errors:

======  =========================  =====================================================================
status  type                       when (on this mock)
======  =========================  =====================================================================
400     ``invalid_request_error``  malformed JSON, a missing or ill-typed field, a bad tool definition
401     ``authentication_error``   keys are configured and ``x-api-key`` (or a bearer token) is missing or
                                   wrong
404     ``not_found_error``        an unknown model, or a path nothing serves
405     ``invalid_request_error``  a method other than POST (Anthropic has no type of its own for it)
413     ``request_too_large``      a body over ``max_body_bytes``
429     ``rate_limit_error``       a requests, input-tokens, output-tokens or concurrency limit
500     ``api_error``              the injected ``error_500`` fault
529     ``overloaded_error``       the injected ``error_503`` and ``overloaded`` faults (Anthropic's
                                   overload has its own, non-standard status)
======  =========================  =====================================================================

The messages are the mock's own words, written in the style of Anthropic's (``"max_tokens: Field
required"``: the field's path, a colon, what is wrong).
"""

from __future__ import annotations

from .asgi import encode_json
from .errors import ApiError

__all__ = ["TYPE_BY_STATUS", "AnthropicError", "anthropic_error_body", "from_api_error"]

TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
"""The error type Anthropic uses for each status."""


def anthropic_error_body(type_: str, message: str) -> bytes:
    """The JSON bytes of an Anthropic error."""
    return encode_json({"type": "error", "error": {"type": type_, "message": message}}).encode()


class AnthropicError(Exception):
    """A ``/v1/messages`` request the server refuses; the route turns it into a response.

    The default is the common case: a malformed request (400 ``invalid_request_error``).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = TYPE_BY_STATUS.get(status, "api_error")
        self.headers = headers

    def body(self) -> bytes:
        """The response body for this error."""
        return anthropic_error_body(self.type, self.message)


def from_api_error(err: ApiError) -> AnthropicError:
    """An error raised by the shared plumbing (body too large, wrong method) in Anthropic's shape."""
    return AnthropicError(err.message, status=err.status, headers=err.headers)
