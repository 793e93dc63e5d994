"""API keys: who may call the server, answered the way OpenAI answers a missing or wrong key.

OpenAI authenticates every API call by bearer token (the spec's only security scheme for the API is
``ApiKeyAuth: {type: http, scheme: bearer}``), so a client sends ``Authorization: Bearer sk-...``. With
``ServerConfig(api_keys=("sk-a", "sk-b"))`` (``--api-key``, ``MOCK_SERVER_API_KEYS``) the mock checks it too:

====================================  ======================================================================
the request has                       answer (401, ``invalid_request_error``)
====================================  ======================================================================
no ``Authorization`` header, or no    "You didn't provide an API key. ..." (OpenAI's wording), code ``null``
bearer token in it
a token that is not one of the keys   "Incorrect API key provided: sk-abc***. ..." code ``invalid_api_key``
====================================  ======================================================================

A 401 is decided before anything else about the request — before its method, its body or any limit — so it
is never charged. The rate-limited routes record it as a ``rejected`` event like any other 4xx. Without
``api_keys`` every request is accepted, with any key or none (the mock's default, as before).

The key shown in the message is masked (the mock's own rule: at most its first six characters, and never
more than half of it, then ``***``), so a log of error bodies never holds a whole key.
"""

from __future__ import annotations

from .errors import ApiError

__all__ = ["bearer_token", "check_key", "mask_key"]

_MISSING = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
    "you're accessing the API from your browser and are prompted for a username and password. You can "
    "obtain an API key from https://platform.openai.com/account/api-keys."
)


def bearer_token(authorization: bytes | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None if there is none.

    The scheme is case-insensitive (RFC 9110); a header in another scheme (``Basic ...``) has no token.

    >>> bearer_token(b"Bearer sk-1"), bearer_token(b"bearer  sk-1 "), bearer_token(b"Basic x")
    ('sk-1', 'sk-1', None)
    """
    if not authorization:
        return None
    scheme, _, token = authorization.decode("latin-1").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def mask_key(key: str) -> str:
    """What a 401 shows of a wrong key: at most six characters, never more than half of it.

    >>> mask_key("sk-abcdef123456"), mask_key("abc"), mask_key("x" * 500)[-4:]
    ('sk-abc***', 'a***', 'x***')
    """
    return key[: min(6, len(key) // 2)] + "***"


def check_key(authorization: bytes | None, keys: frozenset[str]) -> None:
    """Raise the 401 :class:`ApiError` for a request whose bearer token is not in ``keys``.

    Call it only when keys are configured (an empty set would refuse everyone).
    """
    token = bearer_token(authorization)
    if token is None:
        raise ApiError(_MISSING, status=401)
    if token not in keys:
        raise ApiError(
            f"Incorrect API key provided: {mask_key(token[:200])}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            status=401,
            code="invalid_api_key",
        )
