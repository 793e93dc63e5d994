"""Httpx2Transport: any httpx transport -- a ThrottledTransport above all -- for clients built on ``httpx2``.

The official ``anthropic`` SDK (2.x) and newer ``openai`` releases are built on ``httpx2``, httpx's
successor, and the anthropic SDK refuses ``httpx`` objects outright ("this SDK uses `httpx2`").  The two
libraries share their design but not their classes, so a transport written for one cannot be handed to
the other.  This bridge speaks ``httpx2`` to the client and ``httpx`` to the transport it wraps::

    anthropic SDK ──> httpx2.AsyncClient ──> Httpx2Transport ──> ThrottledTransport ──> real transport
                     (httpx2 requests)        converts both ways   (httpx requests)       ──> server

>>> import httpx, httpx2
>>> from throttle_lab import Throttler, ThrottledTransport
>>> from throttle_lab.client.httpx2_bridge import Httpx2Transport
>>> limits = Throttler(rpm=50, itpm=30_000, otpm=8_000)
>>> throttled = ThrottledTransport(httpx.AsyncHTTPTransport(), limiter=limits)
>>> http_client = httpx2.AsyncClient(transport=Httpx2Transport(throttled))
>>> # anthropic.AsyncAnthropic(http_client=http_client, max_retries=0)

What crosses the bridge unchanged: method, URL, headers and body of the request; status, headers and the
*raw* body of the response (still encoded: ``httpx2`` decodes it once, as usual), streamed chunk by chunk,
so a streamed answer keeps its limiter slot until the client has read or closed it.  An ``httpx`` error
from the wrapped transport is raised as the ``httpx2`` error of the same name (a ``ConnectError`` stays a
``ConnectError``), so the SDK recognises connection failures and timeouts as its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import httpx2

from .held_responses import raw_chunks

__all__ = ["Httpx2Transport"]


def _as_httpx2_error(exc: httpx.HTTPError, request: httpx2.Request) -> Exception:
    """The ``httpx2`` exception of the same name (both libraries keep httpx's hierarchy)."""
    kind = getattr(httpx2, type(exc).__name__, None)
    if isinstance(kind, type) and issubclass(kind, httpx2.RequestError):
        return kind(str(exc), request=request)
    return httpx2.TransportError(str(exc), request=request)


class _BridgedStream(httpx2.AsyncByteStream):
    """The wrapped response's raw body, passed on chunk by chunk; closing it closes the wrapped response."""

    def __init__(self, response: httpx.Response, request: httpx2.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            # raw_chunks: a body read already (an ordinary answer the transport has read in full) is given
            # again from memory, and a stream iterated once has nothing more, as on a real connection.
            async for chunk in raw_chunks(self._response):
                yield chunk
        except httpx.HTTPError as exc:
            raise _as_httpx2_error(exc, self._request) from exc

    async def aclose(self) -> None:
        await self._response.aclose()


class Httpx2Transport(httpx2.AsyncBaseTransport):
    """An ``httpx2`` transport that sends through ``transport``, an ``httpx.AsyncBaseTransport``."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        if not isinstance(transport, httpx.AsyncBaseTransport):
            raise ValueError(f"transport must be an httpx.AsyncBaseTransport, got {transport!r}")
        self.transport = transport

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        content = await request.aread()
        inner = httpx.Request(
            request.method,
            str(request.url),
            headers=list(request.headers.raw),
            content=content,
            extensions=dict(request.extensions),
        )
        try:
            response = await self.transport.handle_async_request(inner)
        except httpx.HTTPError as exc:
            raise _as_httpx2_error(exc, request) from exc
        return httpx2.Response(
            response.status_code,
            headers=list(response.headers.raw),
            stream=_BridgedStream(response, request),
            request=request,
            extensions=dict(response.extensions),
        )

    async def aclose(self) -> None:
        await self.transport.aclose()

    def __repr__(self) -> str:
        return f"<Httpx2Transport over {self.transport!r}>"
