"""ThrottledTransport: throttling, retries and recording for any httpx client -- the openai SDK included.

httpx sends every request through a *transport*.  Wrapping the real one adds behaviour without touching the
code that makes the calls::

    your code / openai SDK ──> httpx.AsyncClient ──> ThrottledTransport ──> real transport ──> server
                                                        │ 1. wait for the limiter (tokens estimated)
                                                        │ 2. send; 429/5xx? pause everyone, back off, retry
                                                        │ 3. reconcile tokens with `usage`, release the slot
                                                        └ every step is an Event

>>> import httpx
>>> from throttle_lab import Throttler, ThrottledTransport, RetryPolicy
>>> transport = ThrottledTransport(
...     httpx.AsyncHTTPTransport(),
...     limiter=Throttler(max_concurrent=8, rpm=500, tpm=200_000),
...     retry=RetryPolicy(max_attempts=4),
... )
>>> client = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")

With the official SDK: ``AsyncOpenAI(base_url=..., api_key=..., http_client=client, max_retries=0)`` --
let the transport retry (it pauses the whole throttler on a 429; the SDK's own retries would not).

A concurrency slot is held until the response body is finished, streaming included: the slot is released
when the stream closes, not when the headers arrive.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any, Literal, Protocol

import httpx

from .adaptive import AIMD, ClientSideThrottle
from .events import Kind, emit, request_scope
from .retry import RetryError, RetryPolicy
from .retry_after import parse_retry_after
from .throttler import Permit, Throttler
from .tokens import estimate_request_tokens, max_tokens_of, request_body

__all__ = ["Gate", "ThrottledTransport", "server_charge"]


class Gate(Protocol):
    """Anything with ``slot(weight)``: every throttle_lab limiter, the throttler, the naive designs."""

    def slot(self, weight: float = ..., /) -> Any: ...


def server_charge(
    body: Mapping[str, Any], response: Mapping[str, Any], default_max_tokens: int
) -> float | None:
    """What the server charged against TPM: its count of the prompt plus the reply budget.

    Providers check TPM at admission, before the reply exists, so they charge ``max_tokens`` and do not refund
    the unused part; only the prompt estimate gets corrected.
    """
    usage = response.get("usage")
    if not isinstance(usage, Mapping):
        return None
    prompt = usage.get("prompt_tokens")
    if not isinstance(prompt, int) or isinstance(prompt, bool) or prompt < 0:
        return None
    return prompt + max_tokens_of(body, default_max_tokens)


class ThrottledTransport(httpx.AsyncBaseTransport):
    """Wraps another httpx transport with a limiter, a retry policy and event recording.

    Args:
        transport: the transport that really sends (default: ``httpx.AsyncHTTPTransport()``); for the
            in-process mock server, ``httpx.ASGITransport(app=create_app(...))``.
        limiter: what each attempt waits for.  A :class:`~throttle_lab.Throttler` (or a shared one) is
            charged the estimated tokens, and a ``Throttler`` is paused on 429s; other limiters are charged
            one unit per attempt (``weight="tokens"`` charges them the tokens instead).
        retry: the retry policy (``None``: answers are returned as they come, no retries).
        aimd: an :class:`~throttle_lab.AIMD` controller told about every success and 429 (wire its
            ``on_change`` to ``throttler.set_limits`` to let it steer the rate).
        client_throttle: a :class:`~throttle_lab.ClientSideThrottle`; requests it rejects fail locally with
            a 429 that never reaches the server.
        default_max_tokens: the reply budget assumed when a request names none (match the server's).
        raise_on_give_up: when retries run out, raise :class:`~throttle_lab.RetryError` (carrying the last
            response) instead of returning the last response.
        name: the ``source`` of the events.
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        limiter: Gate | None = None,
        retry: RetryPolicy | None = None,
        aimd: AIMD | None = None,
        client_throttle: ClientSideThrottle | None = None,
        weight: Literal["requests", "tokens"] = "requests",
        default_max_tokens: int = 100,
        raise_on_give_up: bool = False,
        name: str = "client",
    ) -> None:
        if limiter is not None and not callable(getattr(limiter, "slot", None)):
            raise ValueError(f"limiter must have a slot(weight) method, got {limiter!r}")
        if weight not in ("requests", "tokens"):
            raise ValueError(f"weight must be 'requests' or 'tokens', got {weight!r}")
        self._inner = transport if transport is not None else httpx.AsyncHTTPTransport()
        self.limiter = limiter
        self.retry = retry
        self.aimd = aimd
        self.client_throttle = client_throttle
        self.weight = weight
        self.default_max_tokens = default_max_tokens
        self.raise_on_give_up = raise_on_give_up
        self.name = name
        self._ids = itertools.count(1)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request_id = request.headers.get("x-request-id") or f"{self.name}-{next(self._ids)}"
        request.headers["x-request-id"] = request_id
        with request_scope(request_id):
            try:
                return await self._handle(request)
            except asyncio.CancelledError:
                emit(asyncio.get_running_loop().time(), Kind.CANCELLED, self.name)
                raise

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        loop = asyncio.get_running_loop()
        body = request_body(request.content) if request.method == "POST" else None
        tokens = estimate_request_tokens(body, default_max_tokens=self.default_max_tokens) if body else 0
        started = loop.time()
        attempt = 0
        while True:
            attempt += 1
            if self.client_throttle is not None and self.client_throttle.should_reject():
                emit(
                    loop.time(), Kind.REJECTED, self.name, weight=tokens, detail={"reason": "client_throttle"}
                )
                return self._give_up(request, _local_rejection(request), attempt)
            gate = AsyncExitStack()
            permit = await self._enter(gate, tokens)
            emit(loop.time(), Kind.SENT, self.name, weight=tokens, detail={"attempt": attempt})
            try:
                response = await self._inner.handle_async_request(request)
            except BaseException as exc:
                await gate.aclose()
                if not isinstance(exc, asyncio.CancelledError):
                    emit(loop.time(), Kind.FAILED, self.name, detail={"error": type(exc).__name__})
                raise
            status = response.status_code
            emit(loop.time(), Kind.RESPONSE, self.name, detail={"status": status, "attempt": attempt})

            if status == 429 or (self.retry is not None and self.retry.is_retryable(status)):
                content = await _read_raw(response)
                await gate.aclose()
                hint = parse_retry_after(response.headers)
                if status == 429:
                    self._on_rate_limited(loop.time(), hint, content)
                elif self.client_throttle is not None:
                    self.client_throttle.record(True)  # the backend answered; overload is not rejection
                final = _rebuild(response, content, request)
                delay = (
                    None
                    if self.retry is None
                    else self.retry.next_delay(attempt, status, hint, loop.time() - started)
                )
                if delay is None:
                    return self._give_up(request, final, attempt)
                emit(
                    loop.time(),
                    Kind.RETRY,
                    self.name,
                    detail={"delay": delay, "attempt": attempt, "status": status},
                )
                await asyncio.sleep(delay)
                continue

            if self.client_throttle is not None:
                self.client_throttle.record(True)
            if 200 <= status < 300 and self.aimd is not None:
                self.aimd.on_success(loop.time())
            outcome = Kind.DONE if status < 400 else Kind.FAILED
            if "text/event-stream" in response.headers.get("content-type", ""):
                # Keep the slot until the stream is finished: the request is in flight until then.
                return _rebuild_stream(response, request, self._finish(gate, outcome, status))
            content = await _read_raw(response)
            if (
                body is not None
                and isinstance(permit, Permit)
                and not response.headers.get("content-encoding")
            ):
                self._reconcile(permit, body, content)
            await self._finish(gate, outcome, status)()
            return _rebuild(response, content, request)

    async def _enter(self, gate: AsyncExitStack, tokens: float) -> Any:
        if self.limiter is None:
            return None
        if getattr(self.limiter, "weighs_tokens", False):  # a throttler: its weight *is* the tokens
            return await gate.enter_async_context(self.limiter.slot(tokens))
        units = tokens if self.weight == "tokens" and tokens > 0 else 1
        return await gate.enter_async_context(self.limiter.slot(units))

    def _finish(self, gate: AsyncExitStack, outcome: str, status: int) -> Callable[[], Any]:
        async def finish() -> None:
            await gate.aclose()
            emit(asyncio.get_running_loop().time(), outcome, self.name, detail={"status": status})

        return finish

    def _on_rate_limited(self, now: float, hint: float | None, content: bytes) -> None:
        limit_type = None
        try:
            error = json.loads(content).get("error", {})
            limit_type = error.get("type") if isinstance(error, dict) else None
        except (ValueError, AttributeError):
            pass
        emit(now, Kind.RATE_LIMITED, self.name, detail={"status": 429, "hint": hint, "type": limit_type})
        if self.aimd is not None:
            self.aimd.on_rate_limited(now)
        if self.client_throttle is not None:
            self.client_throttle.record(False)
        if (
            hint is not None
            and isinstance(self.limiter, Throttler)
            and (self.retry is None or self.retry.pause_on_429)
        ):
            self.limiter.pause(hint)

    def _reconcile(self, permit: Permit, body: Mapping[str, Any], content: bytes) -> None:
        parsed = request_body(content)
        if parsed is None:
            return
        charged = server_charge(body, parsed, self.default_max_tokens)
        if charged is not None:
            permit.reconcile(charged)

    def _give_up(self, request: httpx.Request, response: httpx.Response, attempts: int) -> httpx.Response:
        emit(
            asyncio.get_running_loop().time(),
            Kind.FAILED,
            self.name,
            detail={"status": response.status_code, "attempts": attempts},
        )
        if self.raise_on_give_up:
            raise RetryError(
                f"{request.method} {request.url} gave up after {attempts} attempt(s): "
                f"HTTP {response.status_code}",
                attempts=attempts,
                last_response=response,
            )
        return response


async def _raw_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body exactly as sent (still encoded), so the rebuilt response decodes it once, as usual.

    A response built in memory with ``content=`` (``httpx.MockTransport``) has been read already; its
    bytes are then the content itself.  A stream iterated once already (the openai SDK drains a finished
    stream a second time) has nothing more to give, as with a real connection.
    """
    if response.is_stream_consumed:
        try:
            yield response.content
        except httpx.ResponseNotRead:
            return
        return
    async for chunk in response.aiter_raw():
        yield chunk


async def _read_raw(response: httpx.Response) -> bytes:
    try:
        return b"".join([chunk async for chunk in _raw_chunks(response)])
    finally:
        await response.aclose()


def _rebuild(response: httpx.Response, content: bytes, request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        content=content,
        request=request,
        extensions=response.extensions,
    )


class _ReleasingStream(httpx.AsyncByteStream):
    """Passes a streamed body through and runs ``on_close`` once, when the consumer closes it."""

    def __init__(self, inner: httpx.Response, on_close: Callable[[], Any]) -> None:
        self._inner = inner
        self._on_close = on_close
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in _raw_chunks(self._inner):
            yield chunk

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                await self._inner.aclose()
            finally:
                await self._on_close()


def _rebuild_stream(
    response: httpx.Response, request: httpx.Request, on_close: Callable[[], Any]
) -> httpx.Response:
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        stream=_ReleasingStream(response, on_close),
        request=request,
        extensions=response.extensions,
    )


def _local_rejection(request: httpx.Request) -> httpx.Response:
    body = {
        "error": {
            "message": "Rejected locally by the client-side throttle: the server has been refusing most "
            "requests, so this one was not sent.",
            "type": "client_throttle",
            "param": None,
            "code": "rejected_locally",
        }
    }
    return httpx.Response(429, json=body, headers={"x-throttle-lab-rejected": "client"}, request=request)
