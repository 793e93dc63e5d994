"""``InProcessTransport``: the simulations' way into the in-process mock server, with less on the way.

It does what ``httpx.ASGITransport`` does for a request -- the same ASGI scope, the body handed to the app,
the reply collected into an ``httpx.Response`` -- and nothing an experiment never uses: no trio detection
and no new event per request, the body in one ``http.request`` message instead of two, and a reply whose
body is already in memory.  A slider lab's run is a few hundred exchanges, and each paid for those layers.

It is still a real ``httpx.AsyncBaseTransport``, so the designs' client code runs unchanged on top of it,
and no await in it suspends the task (as none in ``ASGITransport`` does for an in-memory body): the event
loop runs the same steps in the same order, so a run gives the same virtual timestamps, event for event,
as through ``ASGITransport`` (``tests/lab/test_experiments.py`` compares the two).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx

__all__ = ["InProcessTransport"]

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

_CLIENT = ("127.0.0.1", 123)  # what ASGITransport reports as the peer, so the server sees the same scope


class InProcessTransport(httpx.AsyncBaseTransport):
    """Send each request straight to an ASGI ``app`` in this process (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            body = request.content  # in memory already for the designs (ThrottledTransport reads it)
        except httpx.RequestNotRead:
            body = await request.aread()
        url = request.url
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for (k, v) in request.headers.raw],
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "server": (url.host, url.port),
            "client": _CLIENT,
            "root_path": "",
        }
        status: int | None = None
        headers: list[tuple[bytes, bytes]] = []
        parts: list[bytes] = []
        sent_body = False
        finished: asyncio.Event | None = None  # made only if the app listens past the body (a stream)
        complete = False

        async def receive() -> Message:
            nonlocal sent_body, finished
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            # After the body the only news is the client leaving, which is when the reply is complete.
            if not complete:
                finished = finished or asyncio.Event()
                await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status, headers, complete
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", [])
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                if chunk and request.method != "HEAD":
                    parts.append(chunk)
                if not message.get("more_body", False):
                    complete = True
                    if finished is not None:
                        finished.set()

        await self.app(scope, receive, send)
        if status is None or not complete:
            raise RuntimeError("the ASGI app returned without sending a complete response")
        response = httpx.Response(status, headers=headers, stream=httpx.ByteStream(b"".join(parts)))
        if all(name.isascii() and value.isascii() for name, value in headers):
            # What httpx would work out on the first look-up by name (ASCII when every header decodes as
            # ASCII), told up front: its own test decodes each header in turn.
            response.headers.encoding = "ascii"
        return response
