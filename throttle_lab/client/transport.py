"""ThrottledTransport: throttling, retries and recording for any httpx client -- the openai SDK included.

httpx sends every request through a *transport*.  Wrapping the real one adds behaviour without touching the
code that makes the calls::

    your code / openai SDK ──> httpx.AsyncClient ──> ThrottledTransport ──> real transport ──> server
                                                        │ 1. wait for the limiter (tokens estimated)
                                                        │ 2. send; 429/5xx? pause everyone, back off, retry
                                                        │ 3. reconcile tokens with `usage` (a stream's too,
                                                        │    read from its events), release the slot
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

**Who closes what.**  httpx's transport contract: ``handle_async_request`` returns a response whose body the
*caller* reads or closes.  ``client.get``/``client.post`` do it for you; ``async with client.stream(...)``
does it when the block ends; ``client.send(request, stream=True)`` leaves it to you (``await
response.aclose()``).  A concurrency slot is held while the request is in flight, body included::

    ordinary answer            slot ──[ send ... read the whole body ]── released   (before you see it)
    text/event-stream answer   slot ──[ send ... you read the stream  ]── released when its body ends,
                                                                           breaks off, or you close it
    any error or cancel        released on the spot: read errors, timeouts, a failed reconcile, retries

A streamed response dropped without being closed keeps its slot until Python collects it.  Then a
``ResourceWarning`` names the request (as asyncio warns of an unclosed transport) and the slot is given back
on the response's event loop -- scheduled with ``loop.call_soon_threadsafe``, never released inside the
finaliser itself, because a finaliser can run in any thread and in the middle of the limiter's own code.
If that loop is closed already, nothing is left to give back (the limiter belonged to it).  Collection may
come late or, in a reference cycle, much later: close your streams rather than rely on it.

The request body is read into memory before the first attempt (``await request.aread()``, as httpx's own
transports do for a body they may have to send again), so multipart uploads and generator bodies can be
resent on a retry.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal, cast

import httpx

from ..core.events import Kind, emit, request_scope
from ..core.gate import UNMETERED, Admission, ChargeTokens, CoolsDown, RequestGate, Slotted
from ..core.limiters._base import Limiter
from ..core.tokens import Tokens
from .adaptive import AIMD, ClientSideThrottle
from .held_responses import (
    Hold,
    failed,
    in_memory,
    read_in_memory,
    read_raw,
    rebuild,
    rebuild_stream,
)
from .retry import IDEMPOTENT_METHODS, RetryError, RetryPolicy
from .retry_after import parse_retry_after
from .stream_usage import StreamUsage
from .tokens import estimate_tokens, request_body

__all__ = ["ThrottledTransport", "server_charge"]


#: The 0.1 name of the ``slot(weight)`` contract; :class:`~throttle_lab.core.gate.RequestGate` is today's.
Gate = Slotted


class _SlotGate:
    """The 0.1 contract, still accepted: anything with ``slot(weight)`` gates one unit per request."""

    def __init__(self, limiter: Slotted) -> None:
        self.limiter = limiter

    @asynccontextmanager
    async def admit(self, tokens: float = 0) -> AsyncIterator[Admission]:
        async with self.limiter.slot(1):
            yield UNMETERED


def _as_gate(limiter: object, weight: str) -> RequestGate | None:
    """The gate a transport waits on: the limiter itself, or an adapter saying what one request costs."""
    if limiter is None:
        return None
    if weight == "tokens" and isinstance(limiter, Limiter):
        return ChargeTokens(limiter)  # a plain limiter used as a token meter
    if isinstance(limiter, RequestGate):
        return limiter
    if callable(getattr(limiter, "slot", None)):
        slotted = cast(Slotted, limiter)
        return ChargeTokens(slotted) if weight == "tokens" else _SlotGate(slotted)
    raise ValueError(f"limiter must have admit(tokens) or slot(weight), got {limiter!r}")


def _count(usage: Mapping[str, Any], key: str) -> int | None:
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def server_charge(
    body: Mapping[str, Any],
    response: Mapping[str, Any],
    default_max_tokens: int,
    *,
    path: str | None = None,
    estimate: Tokens | None = None,
) -> Tokens | None:
    """What the server charged, as :class:`~throttle_lab.Tokens`: its count of the input, and the reply
    budget as the dialect books it (``path`` names the dialect, as in :func:`estimate_tokens`).

    OpenAI checks TPM at admission, before the reply exists, so it charges ``max_tokens`` (``n`` times) and
    does not refund the unused part: only the input estimate gets corrected.  Anthropic charges
    ``max_tokens`` against OTPM at admission too, but corrects it to the output really produced when the
    request ends -- so there the output is reconciled as well (cache reads do not count against ITPM).
    ``estimate`` is the request's own :func:`estimate_tokens`, if the caller has it already.
    """
    usage = response.get("usage")
    if not isinstance(usage, Mapping):
        return None
    where = (path or "").rstrip("/")
    if where.endswith("/messages"):
        read, written = _count(usage, "input_tokens"), _count(usage, "output_tokens")
        if read is None or written is None:
            return None
        return Tokens(read + (_count(usage, "cache_creation_input_tokens") or 0), written)
    counted = _count(usage, "input_tokens" if where.endswith("/responses") else "prompt_tokens")
    if counted is None:
        return None
    if estimate is None:
        estimate = estimate_tokens(body, path=path, default_max_tokens=default_max_tokens)
    return Tokens(counted, estimate.output)


class ThrottledTransport(httpx.AsyncBaseTransport):
    """Wraps another httpx transport with a limiter, a retry policy and event recording.

    Args:
        transport: the transport that really sends (default: ``httpx.AsyncHTTPTransport()``); for the
            in-process mock server, ``httpx.ASGITransport(app=create_app(...))``.
        limiter: what each attempt waits for: any :class:`~throttle_lab.core.gate.RequestGate` (every
            throttle_lab limiter).  A :class:`~throttle_lab.Throttler` (or a shared one) is charged the
            estimated tokens and, being able to cool down (:class:`~throttle_lab.core.gate.CoolsDown`), is
            paused on 429s; other limiters are charged one unit per attempt (``weight="tokens"`` charges a
            plain limiter the tokens instead).  An object with only ``slot(weight)`` (the 0.1 contract) is
            charged one unit per attempt.
        retry: the retry policy (``None``: answers are returned as they come, no retries).  Its
            ``retry_non_idempotent`` and ``idempotency_key`` decide which requests are resent on a 5xx and
            whether they carry an ``Idempotency-Key``.  A response carrying ``x-should-retry: false`` is
            final, as in the official SDKs (a server's way of saying that waiting will not help).
            Exceptions -- connection errors, timeouts -- are raised, not retried (the openai SDK retries
            them; give it ``max_retries`` for that).
        aimd: an :class:`~throttle_lab.AIMD` controller told about every success and 429 (wire its
            ``on_change`` to ``throttler.set_limits`` to let it steer the rate).
        client_throttle: a :class:`~throttle_lab.ClientSideThrottle`; requests it rejects fail locally with
            a 429 that never reaches the server.
        default_max_tokens: the reply budget assumed when a request names none (match the server's).
        raise_on_give_up: when retries run out, raise :class:`~throttle_lab.RetryError` (carrying the last
            response) instead of returning the last response.
        name: the ``source`` of the events.

    Resources, as in httpx's transport contract: the caller closes what it is handed.  An ordinary
    answer is read here and its slot is back before the caller sees it; a ``text/event-stream`` answer
    keeps its slot until its body ends, breaks off, or the caller closes it.  Errors and cancels
    (``asyncio.timeout`` included) release on the spot and are reported as ``failed`` (with the error's
    name) or ``cancelled``.  A stream garbage-collected unclosed raises a ``ResourceWarning`` and returns
    its slot late, on its loop (see the module docstring).  ``aclose()`` closes the wrapped transport.
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        limiter: RequestGate | Slotted | None = None,
        retry: RetryPolicy | None = None,
        aimd: AIMD | None = None,
        client_throttle: ClientSideThrottle | None = None,
        weight: Literal["requests", "tokens"] = "requests",
        default_max_tokens: int = 100,
        raise_on_give_up: bool = False,
        name: str = "client",
    ) -> None:
        if weight not in ("requests", "tokens"):
            raise ValueError(f"weight must be 'requests' or 'tokens', got {weight!r}")
        self._inner = transport if transport is not None else httpx.AsyncHTTPTransport()
        self.limiter = limiter
        self.gate = _as_gate(limiter, weight)  # what each attempt waits on (see _as_gate)
        # Asked once: isinstance against a runtime-checkable Protocol walks its members on every call.
        self._cool_down = self.gate if isinstance(self.gate, CoolsDown) else None
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
        # A streamed request body (a multipart upload, a generator) can be iterated once only; in memory it
        # can be estimated and sent again on a retry.
        await request.aread()
        self._add_idempotency_key(request)
        body = request_body(request.content) if request.method == "POST" else None
        path = request.url.path
        tokens: float = (
            estimate_tokens(body, path=path, default_max_tokens=self.default_max_tokens) if body else 0
        )
        started = loop.time()
        attempt = 0
        while True:
            attempt += 1
            if self.client_throttle is not None and self.client_throttle.should_reject():
                emit(
                    loop.time(), Kind.REJECTED, self.name, weight=tokens, detail={"reason": "client_throttle"}
                )
                return self._give_up(request, _local_rejection(request), attempt)
            hold = Hold(self.name)
            if self.gate is not None:
                await hold.enter(self.gate.admit(tokens))
            emit(loop.time(), Kind.SENT, self.name, weight=tokens, detail={"attempt": attempt})
            # From here until the hold is released or handed to a streamed body, every way out -- an error
            # from the server's transport, a body that breaks off, a cancel, a bug in reconcile -- gives
            # the slot back before it leaves.
            try:
                response = await self._inner.handle_async_request(request)
                status = response.status_code
                emit(loop.time(), Kind.RESPONSE, self.name, detail={"status": status, "attempt": attempt})
                if status != 429 and not (
                    self.retry is not None and self.retry.is_retryable(status, request.method)
                ):
                    return await self._deliver(request, response, hold, body, path)
                content = await read_raw(response)
                hint = parse_retry_after(response.headers)
                if status == 429:
                    # Pause (and drain) *before* giving the slot back: released first, the slot would go
                    # to the next waiter at once, and it would be sent into the wall the 429 just found.
                    self._on_rate_limited(loop.time(), hint, content, response.headers)
                elif self.client_throttle is not None:
                    self.client_throttle.record(True)  # the backend answered; overload is not rejection
                await hold.release()
            except BaseException as exc:
                # A cancel is reported by handle_async_request (it may come while waiting, too).
                await hold.release(None if isinstance(exc, asyncio.CancelledError) else failed(exc))
                raise

            final = rebuild(response, content, request)
            # `x-should-retry: false`: the server says waiting will not help (a request larger than the whole
            # budget, say).  The official SDKs obey it; so do we.
            delay = (
                None
                if self.retry is None or response.headers.get("x-should-retry", "").lower() == "false"
                else self.retry.next_delay(
                    attempt, status, hint, loop.time() - started, method=request.method
                )
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

    def _add_idempotency_key(self, request: httpx.Request) -> None:
        """One key per request, set before the first attempt, so every retry resends the same one."""
        header = self.retry.idempotency_header if self.retry is not None else None
        if header is None or request.method.upper() in IDEMPOTENT_METHODS or header in request.headers:
            return  # no key wanted, a method safe to repeat anyway, or the caller's own key (keep it)
        request.headers[header] = str(uuid.uuid4())

    async def _deliver(
        self,
        request: httpx.Request,
        response: httpx.Response,
        hold: Hold,
        body: Mapping[str, Any] | None,
        path: str,
    ) -> httpx.Response:
        """The final answer: read it (or hand the hold to its stream) and settle the books.

        ``path`` is the request's ``url.path`` (decoded once per request, in ``_handle``).
        """
        status = response.status_code
        if self.client_throttle is not None:
            self.client_throttle.record(True)
        if 200 <= status < 300 and self.aimd is not None:
            self.aimd.on_success(asyncio.get_running_loop().time())
        outcome = Kind.DONE if status < 400 else Kind.FAILED
        admission = hold.permit
        books = (
            body is not None
            and admission is not None
            and admission is not UNMETERED  # nothing to correct: skip reading the body
            and not response.headers.get("content-encoding")
        )
        if "text/event-stream" in response.headers.get("content-type", ""):
            # Keep the slot until the stream is finished: the request is in flight until then.  Its usage
            # comes in its events; the watcher reconciles when the body ends.
            watcher = None
            if books and body is not None and admission is not None and status < 400:
                default = self.default_max_tokens
                watcher = StreamUsage(
                    admission, lambda answer: server_charge(body, answer, default, path=path)
                )
            return rebuild_stream(response, request, hold, outcome, watcher)
        if in_memory(response):
            # A reply already in memory (an in-process server's): read where it is and handed on as it
            # is -- not read, closed and rebuilt.
            final = response
            final.request = request
            content = read_in_memory(final)
        else:
            content = await read_raw(response)
            final = rebuild(response, content, request)
        if books and body is not None and admission is not None:
            self._reconcile(admission, body, content, path)
        await hold.release((outcome, {"status": status}))
        return final

    def _on_rate_limited(
        self, now: float, hint: float | None, content: bytes, headers: httpx.Headers
    ) -> None:
        limit_type = _limit_type(content, headers)
        emit(now, Kind.HTTP_429, self.name, detail={"status": 429, "hint": hint, "type": limit_type})
        if self.aimd is not None:
            self.aimd.on_rate_limited(now)
        if self.client_throttle is not None:
            self.client_throttle.record(False)
        if (
            hint is not None
            and self._cool_down is not None
            and (self.retry is None or self.retry.pause_on_429)
        ):
            self._cool_down.pause(hint)

    def _reconcile(self, permit: Admission, body: Mapping[str, Any], content: bytes, path: str) -> None:
        parsed = request_body(content)
        if parsed is None:
            return
        # The permit's charge is this request's estimate (a Throttler's is; other gates' may not be).
        booked = getattr(permit, "tokens", None)
        estimate = booked if isinstance(booked, Tokens) else None
        charged = server_charge(body, parsed, self.default_max_tokens, path=path, estimate=estimate)
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


_ANTHROPIC_BUDGETS = ("requests", "input-tokens", "output-tokens", "tokens")


def _header_number(headers: httpx.Headers, name: str) -> float | None:
    try:
        value = float(headers.get(name, ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def _limit_type(content: bytes, headers: httpx.Headers) -> str | None:
    """Which limit a 429 names: OpenAI's ``error.type`` ("requests", "tokens"); for Anthropic, whose error
    type is always ``rate_limit_error``, the budget its headers show the most spent ("output_tokens", ...:
    the smallest share of its limit remaining -- a request is refused when *it* does not fit, so the budget
    that refused it may still hold a little)."""
    try:
        error = json.loads(content).get("error", {})
        named = error.get("type") if isinstance(error, dict) else None
    except (ValueError, AttributeError):
        return None
    limit_type = named if isinstance(named, str) else None
    if limit_type != "rate_limit_error":
        return limit_type
    spent: tuple[float, str] | None = None
    for budget in _ANTHROPIC_BUDGETS:
        limit = _header_number(headers, f"anthropic-ratelimit-{budget}-limit")
        remaining = _header_number(headers, f"anthropic-ratelimit-{budget}-remaining")
        if limit and remaining is not None and (spent is None or remaining / limit < spent[0]):
            spent = (remaining / limit, budget.replace("-", "_"))
    return spent[1] if spent is not None else limit_type


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
