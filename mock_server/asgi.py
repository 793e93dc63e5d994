"""ASGI plumbing: reading a request body within a size limit, sending JSON, errors and SSE.

The server is a raw ASGI3 callable, no framework, so this is the little a framework would have done for
it. An ASGI server hands the app a ``scope`` (method, path, headers as lower-cased ``bytes`` pairs) and two
coroutines: ``receive()`` yields the body in ``http.request`` messages (``more_body`` says whether more
follow; ``http.disconnect`` if the client left), and ``send()`` takes the response as one
``http.response.start`` (status, headers) and then ``http.response.body`` messages::

    {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    {"type": "http.response.body", "body": b'{"status":"ok"}', "more_body": False}

Nothing here knows a route or a dialect; errors it raises are :class:`~mock_server.errors.ApiError`, which
the routes answer with :func:`respond_error`.

Every response also carries the headers OpenAI's do, built by :func:`service_headers`: ``x-request-id``
(``req_`` and 32 hex digits: :func:`request_id` for a recorded request, the same id its events carry),
``openai-processing-ms`` (the mock's *planned* time for the reply, in whole ms) and ``openai-version``
(``2020-10-01``, the value OpenAI sends), plus ``openai-organization`` when the config names one.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from .errors import ApiError
from .validation import parse_count

__all__ = [
    "JSON",
    "SSE",
    "ClientGone",
    "Headers",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "decode_json",
    "encode_json",
    "header_int",
    "method_not_allowed",
    "random_request_id",
    "read_body",
    "request_id",
    "respond",
    "respond_error",
    "respond_json",
    "send_body",
    "service_headers",
    "start_stream",
    "unknown_url",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON = b"application/json"
SSE = b"text/event-stream; charset=utf-8"
encode_json = json.JSONEncoder(separators=(",", ":")).encode  # one compact encoder, not one per call


OPENAI_VERSION = b"2020-10-01"
"""The ``openai-version`` header OpenAI's API sends on every response."""


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


# -- reading --------------------------------------------------------------------------------------------


def header_int(value: bytes | None) -> int | None:
    """A header's non-negative integer value, or None if it is not one.

    Absurdly long numbers are capped at 10**18 rather than parsed (see :func:`parse_count`): a
    ``content-length`` of a million digits is simply "too large".
    """
    return parse_count(value, too_long=10**18)


async def read_body(receive: Receive, declared: bytes | None, limit: int) -> bytes:
    """The whole request body; :class:`ApiError` 413 past ``limit`` bytes, :class:`ClientGone` if the
    client leaves first.

    ``declared`` is the ``content-length`` header: a body announced too large is refused before a byte of
    it is read. One that lies (or is chunked) is counted as it arrives and refused as soon as it passes.
    """
    declared_size = header_int(declared)
    if declared_size is not None and declared_size > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        more = message.get("more_body", False)
        if not chunks and not more:
            return chunk  # the common case: the whole body in one message
        chunks.append(chunk)
        if not more:
            return b"".join(chunks)


def decode_json(body: bytes) -> Any:
    """``json.loads(body)``, with its encoding guess skipped for the bodies every client sends.

    ``json.loads`` of bytes first guesses their encoding in Python (a BOM, or the NUL bytes of UTF-16 and
    UTF-32); by that same rule a body that opens with ``{`` followed by a non-NUL byte is UTF-8, so it is
    decoded exactly as ``json.loads`` would decode it (``surrogatepass``) and parsed as text.  Anything
    else goes through ``json.loads`` unchanged.  Errors are the same either way.
    """
    if body[:1] == b"{" and body[1:2] != b"\x00":
        return json.loads(body.decode("utf-8", "surrogatepass"))
    return json.loads(body)


# -- errors every route may answer ------------------------------------------------------------------------


def _too_large(limit: int) -> ApiError:
    return ApiError(
        f"The request body is too large: this server accepts at most {limit} bytes.",
        status=413,
        code="payload_too_large",
    )


def method_not_allowed(method: str, path: str, allow: str) -> ApiError:
    """405 for ``method`` on ``path``, with the ``allow`` header listing what is (e.g. ``"GET, HEAD"``)."""
    return ApiError(
        f"Method {method[:20]} is not allowed on {path}; use {allow}.",
        status=405,
        code="method_not_allowed",
        headers=((b"allow", allow.encode()),),
    )


def unknown_url(method: str, path: str) -> ApiError:
    """404 for a path no route serves (OpenAI's wording and code)."""
    return ApiError(f"Invalid URL ({method} {path[:200]}).", status=404, code="unknown_url")


# -- headers every response carries ------------------------------------------------------------------------


def request_id(seed: int, seq: int) -> str:
    """The server's id for arrival ``seq``: ``req_`` and 32 hex digits, fixed by ``(seed, seq)``.

    OpenAI's ids look random; these are a hash, so the same seed and arrival order give the same ids
    (and they never draw from the request's dice, so they shift no other seeded choice).

    >>> request_id(0, 1) == request_id(0, 1) != request_id(0, 2), len(request_id(0, 1))
    (True, 36)
    """
    return "req_" + hashlib.blake2b(b"req/%d/%d" % (seed, seq), digest_size=16).hexdigest()


def random_request_id() -> str:
    """An id for a response nothing records (``/v1/models``, a 404): ``req_`` and 32 random hex digits."""
    return "req_" + secrets.token_hex(16)


def service_headers(request_id: str, processing_ms: float, organization: bytes | None = None) -> Headers:
    """The headers every response carries: id, planned time in whole ms, API version[, organization]."""
    headers = [
        (b"x-request-id", request_id.encode("latin-1")),
        (b"openai-processing-ms", b"%d" % round(processing_ms)),
        (b"openai-version", OPENAI_VERSION),
    ]
    if organization is not None:
        headers.append((b"openai-organization", organization))
    return headers


# -- sending ----------------------------------------------------------------------------------------------


async def respond(send: Send, status: int, body: bytes, headers: Headers, content_type: bytes = JSON) -> None:
    """A complete response in two messages, with its ``content-length``."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def respond_json(send: Send, data: Any) -> None:
    """200 with ``data`` encoded as compact JSON."""
    await respond(send, 200, encode_json(data).encode(), [])


async def respond_error(send: Send, err: ApiError, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """``err`` as its OpenAI-shaped JSON body, with ``headers`` and the error's own."""
    await respond(send, err.status, err.body(), [*headers, *err.headers])


async def start_stream(send: Send, headers: Headers) -> None:
    """Start a 200 server-sent-events response; the body follows in :func:`send_body` calls.

    No ``content-length`` (the length is not known yet) and ``no-cache``, as providers send it.
    """
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", SSE), (b"cache-control", b"no-cache"), *headers],
        }
    )


async def send_body(send: Send, body: bytes, *, more: bool) -> None:
    """Send a piece of the body; ``more=False`` ends the response."""
    await send({"type": "http.response.body", "body": body, "more_body": more})
