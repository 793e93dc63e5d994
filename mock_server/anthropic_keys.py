"""API keys the Anthropic way: ``x-api-key``, or a bearer token, checked before anything else.

Anthropic's SDK sends the key in an ``x-api-key`` header (``Anthropic(api_key=...)``), or a bearer token in
``Authorization`` (``Anthropic(auth_token=...)``, for OAuth-style tokens). The mock accepts either, checked
against the same ``ServerConfig.api_keys`` the OpenAI routes use; ``x-api-key`` wins when both are sent.

=====================================  ===============================================================
the request has                        answer (401 ``authentication_error``)
=====================================  ===============================================================
neither header                         "x-api-key header is required"
a key that is not one of the keys      "invalid x-api-key" (the key itself is never echoed)
=====================================  ===============================================================

For ``per_key`` limits the key is labelled as the OpenAI routes label ``Authorization: Bearer <key>``
(:func:`rate_limit_label`), so one key spends one set of buckets, whichever dialect and header it uses.
"""

from __future__ import annotations

from .anthropic_errors import AnthropicError
from .keys import bearer_token
from .policy import hash_key

__all__ = ["check_anthropic_key", "presented_key", "rate_limit_label"]


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    """The key a request presents: its ``x-api-key``, else its bearer token, else None."""
    api_key = headers.get(b"x-api-key")
    if api_key:
        return api_key.decode("latin-1").strip() or None
    return bearer_token(headers.get(b"authorization"))


def rate_limit_label(headers: dict[bytes, bytes]) -> str:
    """The per-key bucket label: the same as the OpenAI routes give ``Authorization: Bearer <key>``."""
    if headers.get(b"x-api-key"):
        key = presented_key(headers)
        return hash_key(f"Bearer {key}" if key else None)
    authorization = headers.get(b"authorization")
    return hash_key(authorization.decode("latin-1") if authorization else None)


def check_anthropic_key(headers: dict[bytes, bytes], keys: frozenset[str]) -> None:
    """Raise the 401 for a request presenting none of ``keys`` (call only when keys are configured)."""
    key = presented_key(headers)
    if key is None:
        raise AnthropicError("x-api-key header is required", status=401)
    if key not in keys:
        raise AnthropicError("invalid x-api-key", status=401)
