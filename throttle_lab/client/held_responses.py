"""How a response keeps its limiter slot until its body is done -- the transport's resource handling.

An attempt's claim on the limiter (:class:`Hold`) is given back exactly once, on whichever path the request
ends::

    ordinary answer      read here in full ─────────────> released before the caller sees the response
    streamed answer      handed to the caller's stream ──> released when the body ends, breaks off, or is
                                                           closed; collected unclosed: ResourceWarning,
                                                           released on its own loop
    error or cancel      ───────────────────────────────> released on the spot

Bodies are re-wrapped as they came (still encoded), so httpx decodes them once, as usual.  See
:mod:`throttle_lab.client.transport` for the contract as the caller sees it.
"""

from __future__ import annotations

import asyncio
import contextvars
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from typing import Any, Protocol

import httpx

from ..core.events import Kind, current_request, emit, request_scope
from ..core.gate import Admission, AsyncBlock

__all__ = [
    "Hold",
    "Outcome",
    "StreamWatcher",
    "failed",
    "in_memory",
    "read_in_memory",
    "read_raw",
    "rebuild",
    "rebuild_stream",
]


async def raw_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body exactly as sent (still encoded), so the rebuilt response decodes it once, as usual.

    A response built in memory with ``content=`` (``httpx.MockTransport``) has been read already; its
    bytes are then the content itself.  A stream iterated once already (the openai SDK drains a finished
    stream a second time) has nothing more to give, as with a real connection.
    """
    if response.is_stream_consumed:
        if isinstance(response.stream, httpx.ByteStream):
            # Built in memory: httpx read (and decoded) it at once, but the stream still holds the bytes as
            # sent -- give those, or a gzip body would arrive decoded under its content-encoding header.
            async for chunk in response.stream:
                yield chunk
            return
        try:
            yield response.content
        except httpx.ResponseNotRead:
            return
        return
    async for chunk in response.aiter_raw():
        yield chunk


def in_memory(response: httpx.Response) -> bool:
    """True for a response whose body is an unread ``httpx.ByteStream`` (bytes in memory, iterable again)."""
    return (
        isinstance(response.stream, httpx.ByteStream)
        and not response.is_stream_consumed
        and not response.is_closed
    )


def read_in_memory(response: httpx.Response) -> bytes:
    """Read an :func:`in_memory` response where it is, and return its body as sent (still encoded).

    The response itself is the answer: it is read (decoded) in place rather than closed and rebuilt, and
    synchronously -- a ``ByteStream`` is iterable both ways, and httpx's synchronous read costs a fraction
    of ``aread``'s generators.  The caller's ``aread()`` then finds the content there; ``aiter_raw`` and the
    bridges still get the bytes as sent (see :func:`raw_chunks`).
    """
    stream = response.stream
    assert isinstance(stream, httpx.ByteStream)
    raw = b"".join(stream)
    response.read()
    return raw


async def read_raw(response: httpx.Response) -> bytes:
    try:
        return b"".join([chunk async for chunk in raw_chunks(response)])
    finally:
        await response.aclose()


def rebuild(response: httpx.Response, content: bytes, request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        content=content,
        request=request,
        extensions=response.extensions,
    )


Outcome = tuple[str, Mapping[str, Any] | None]
"""An event to report once capacity is given back: its kind and detail."""


def failed(exc: BaseException) -> Outcome:
    return Kind.FAILED, {"error": type(exc).__name__}


# Releases scheduled by finalisers: the loop keeps only weak references to its tasks, so without this set a
# release could be garbage-collected half done.
_SETTLING: set[asyncio.Task[None]] = set()


class Hold:
    """One attempt's claim on the limiter, given back exactly once on whichever path the request ends.

    Remembers the loop, the request id and the context of the request that took it, so the capacity can
    be returned -- and the event attributed to the right request -- even from a stream closed elsewhere or
    from a finaliser.
    """

    __slots__ = ("_context", "_loop", "_request", "_slot", "_source", "permit", "settled")

    def __init__(self, source: str) -> None:
        self._source = source
        self._loop = asyncio.get_running_loop()
        self._request: Hashable | None = current_request()
        self._context = contextvars.copy_context()
        # The gate's slot, entered by `enter`, exited once by `release`: no exit stack, since there is only
        # ever the one (an AsyncExitStack cost more per request than the limiter's own work).
        self._slot: AsyncBlock[Admission] | None = None
        self.permit: Admission | None = None
        self.settled = False

    async def enter(self, slot: AsyncBlock[Admission]) -> None:
        self.permit = await slot.__aenter__()
        self._slot = slot  # entered: from now on `release` must exit it

    async def release(self, outcome: Outcome | None = None) -> None:
        """Give the capacity back (a second call does nothing), then report ``outcome`` if given."""
        if self.settled:
            return
        self.settled = True
        with request_scope(self._request):
            try:
                slot, self._slot = self._slot, None
                if slot is not None:
                    await slot.__aexit__(None, None, None)
            finally:
                if outcome is not None:
                    emit(self._loop.time(), outcome[0], self._source, detail=outcome[1])

    def release_soon(self, outcome: Outcome, first: Callable[[], Awaitable[None]]) -> bool:
        """From a finaliser: schedule ``first()`` and then the release on the hold's loop; False if too late.

        Nothing is released here and now: a finaliser may run in another thread, or in this one in the
        middle of the limiter's own bookkeeping.  ``call_soon_threadsafe`` is safe in both (asyncio finalises
        abandoned async generators the same way).
        """
        loop = self._loop
        if self.settled or loop.is_closed():
            return False

        async def settle() -> None:
            try:
                await first()
            finally:
                await self.release(outcome)

        def start() -> None:
            task = loop.create_task(settle())
            _SETTLING.add(task)
            task.add_done_callback(_SETTLING.discard)

        try:
            loop.call_soon_threadsafe(start, context=self._context.copy())
        except RuntimeError:  # the loop closed between the check and the call
            return False
        return True

    @property
    def request(self) -> Hashable | None:
        return self._request


class StreamWatcher(Protocol):
    """Reads a streamed body as it passes (e.g. for its ``usage``) and settles the books when it ends."""

    def feed(self, chunk: bytes) -> None: ...

    def finish(self) -> None:
        """The body ended normally (not when it broke off): called just before the slot is given back."""


class _ReleasingStream(httpx.AsyncByteStream):
    """Passes a streamed body through and gives the hold back when the body ends, breaks off or is closed."""

    def __init__(
        self, inner: httpx.Response, hold: Hold, outcome: Outcome, watcher: StreamWatcher | None = None
    ) -> None:
        self._inner = inner
        self._hold = hold
        self._outcome = outcome
        self._watcher = watcher

    async def __aiter__(self) -> AsyncIterator[bytes]:
        watcher = self._watcher
        try:
            async for chunk in raw_chunks(self._inner):
                if watcher is not None:
                    watcher.feed(chunk)
                yield chunk
        except (Exception, asyncio.CancelledError) as exc:
            # The body broke off, or its reader was cancelled: the request is over now, whether or not the
            # caller closes the response later.  (GeneratorExit, a reader that merely stopped, is neither.)
            try:
                await self._inner.aclose()
            finally:
                cancelled = isinstance(exc, asyncio.CancelledError)
                await self._hold.release((Kind.CANCELLED, None) if cancelled else failed(exc))
            raise
        if watcher is not None:
            try:
                watcher.finish()
            except BaseException as exc:  # a bug in the books must not keep the slot
                await self._hold.release(failed(exc))
                raise
        await self._hold.release(self._outcome)

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            await self._hold.release(self._outcome)

    def __del__(self) -> None:
        if self._hold.settled:
            return
        # Warn first: the caller's bug is the news; the late release below only limits the damage.
        warnings.warn(
            f"ThrottledTransport: the streamed response to request {self._hold.request!r} was garbage-"
            "collected without being closed; its limiter slot is given back only now.  Use "
            "`async with client.stream(...)` or `await response.aclose()`.",
            ResourceWarning,
            source=self,  # with tracemalloc on, the warning shows where the response was made
            stacklevel=1,  # a finaliser has no caller worth pointing at
        )
        self._hold.release_soon((Kind.CANCELLED, {"reason": "not closed"}), self._inner.aclose)


def rebuild_stream(
    response: httpx.Response,
    request: httpx.Request,
    hold: Hold,
    outcome: str,
    watcher: StreamWatcher | None = None,
) -> httpx.Response:
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        stream=_ReleasingStream(response, hold, (outcome, {"status": response.status_code}), watcher),
        request=request,
        extensions=response.extensions,
    )
