"""The life of one rate-limited request, written once for every limited route.

Chat completions, embeddings (and the dialects to come) differ in what they read and what they write, not
in how a request lives. So the life is here, in :class:`LimitedRoute`, and a route is a subclass that fills
in five hooks:

=====================  ====================================================================================
step                   what happens (hooks in **bold**)
=====================  ====================================================================================
1. arrive              ``seq = state.arrive()``, the server's id ``req_…``
                       (:func:`~mock_server.asgi.request_id`), the rate-limit key; event ``arrived``
2. check               the API key (:mod:`mock_server.keys`, when keys are configured), the method (POST),
                       the body within the size limit, then **parse** it → the route's request object;
                       any failure is an OpenAI-shaped 4xx and event ``rejected`` (never charged)
3. admit               ``state.policy.admit(key, seq, `` **charge** ``, model, now)``; a refusal is the 429
                       with its headers and event ``limited``
4. plan                **plan**: everything about the reply (fault, content, latency) from the request's own
                       ``Dice(seed, seq)``, before its first byte; event ``accepted``
5. serve               **serve**: sleep and answer (helpers: :meth:`LimitedRoute.fail` for an injected
                       error, :meth:`LimitedRoute.reply_json` for a whole JSON reply,
                       :meth:`LimitedRoute.stream_ended` after a stream); event ``completed`` or ``failed``
=====================  ====================================================================================

**describe** gives the request's own fields for the event details (``model``, ``prompt_tokens``, ...).

Every response of a limited route carries the service headers (``x-request-id``, ``openai-processing-ms``,
``openai-version``); admitted requests and 429s also carry the ``x-ratelimit-*`` headers. The events of one
request all name it by the client's ``x-request-id`` header if it sent one (so a client can match them with
its own records), else by the server's ``req_…`` id; the server's id is also in every detail as
``request_id`` and is what the response's ``x-request-id`` header says.
"""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ..asgi import (
    ClientGone,
    Headers,
    Receive,
    Scope,
    Send,
    header_int,
    method_not_allowed,
    read_body,
    request_id,
    respond,
    respond_error,
    service_headers,
)
from ..errors import ApiError
from ..faults import Fault, fault_response
from ..keys import check_key
from ..latency import Latency, sleep_until
from ..policy import SHARED_KEY, hash_key
from ..state import ServerState

__all__ = ["Exchange", "LimitedRequest", "LimitedRoute", "Planned"]


class LimitedRequest(Protocol):
    """What the life needs of a parsed request: the model it asks for (named in 429 messages)."""

    @property
    def model(self) -> str: ...


class Planned(Protocol):
    """What the life needs of a planned reply: its latency and its fault."""

    @property
    def latency(self) -> Latency: ...

    @property
    def fault(self) -> Fault: ...


RequestT = TypeVar("RequestT", bound=LimitedRequest)
PlanT = TypeVar("PlanT", bound=Planned)


@dataclass(slots=True)
class Exchange(Generic[RequestT, PlanT]):
    """One admitted request and everything :meth:`LimitedRoute.serve` needs to answer it."""

    send: Send
    request: RequestT
    plan: PlanT
    name: str
    """What the events call the request (the client's ``x-request-id``, else the server's id)."""
    charge: int
    """Tokens charged at admission (each event's ``weight``)."""
    detail: dict[str, Any]
    """The detail every later event of this request starts from."""
    headers: Headers
    """Service and rate-limit headers for the response."""
    start: float
    """Loop time of admission: every deadline of the reply counts from here."""


class LimitedRoute(abc.ABC, Generic[RequestT, PlanT]):
    """A rate-limited POST route of one app: the request's life, with the route's hooks (module docs)."""

    path: str = ""
    """The path served (for the 405 message)."""

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._config = state.config
        # Bound once: the busiest path of the server should not look these up on every request.
        self._policy = state.policy
        self._emit = state.log.emit
        self._keys = frozenset(state.config.api_keys)
        organization = state.config.organization
        self._organization = organization.encode() if organization is not None else None

    # -- hooks --------------------------------------------------------------------------------------

    @abc.abstractmethod
    def parse(self, body: bytes) -> RequestT:
        """Validate ``body``; raise :class:`ApiError` (4xx) for anything wrong."""

    @abc.abstractmethod
    def charge(self, request: RequestT) -> int:
        """Tokens taken from the TPM bucket (and the quota) at admission."""

    @abc.abstractmethod
    def describe(self, request: RequestT) -> dict[str, Any]:
        """The request's fields for event details (``model``, ``prompt_tokens``, ...)."""

    @abc.abstractmethod
    def plan(self, request: RequestT, seq: int, start: float) -> PlanT:
        """Decide everything about an admitted request's reply before its first byte is sent."""

    @abc.abstractmethod
    async def serve(self, exchange: Exchange[RequestT, PlanT]) -> None:
        """Answer an admitted request (sleeping as planned) and emit ``completed`` or ``failed``."""

    # -- the life -----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self._state
        now = state.clock()
        seq = state.arrive()
        headers: dict[bytes, bytes] = dict(scope["headers"])  # names arrive lower-cased (ASGI)
        server_id = request_id(self._config.seed, seq)
        given_id = headers.get(b"x-request-id")
        name = given_id.decode("latin-1")[:200] if given_id else server_id
        base: dict[str, Any] = {
            "attempt": header_int(headers.get(b"x-stainless-retry-count")),
            "request_id": server_id,
        }
        authorization = headers.get(b"authorization")
        key = SHARED_KEY
        if self._config.per_key:
            key = hash_key(authorization.decode("latin-1") if authorization else None)
            base["key"] = key
        self._emit("arrived", now, name, 0, {**base, "seq": seq})

        try:
            # The key, then the method, then the body: the first failure decides, and every one of them
            # is an event ("rejected"), which is why the router leaves the method check to us.
            if self._keys:
                check_key(authorization, self._keys)
            if scope["method"] != "POST":
                raise method_not_allowed(scope["method"], self.path, "POST")
            body = await read_body(receive, headers.get(b"content-length"), self._config.max_body_bytes)
            request = self.parse(body)
        except ApiError as err:
            await respond_error(send, err, service_headers(server_id, 0, self._organization))
            state.by_status[err.status] += 1
            self._emit(
                "rejected",
                state.clock(),
                name,
                0,
                {**base, "status": err.status, "code": err.code, "param": err.param},
            )
            return
        except ClientGone:
            self._emit(
                "failed", state.clock(), name, 0, {**base, "status": 499, "code": "client_disconnected"}
            )
            return

        now = state.clock()
        charge = self.charge(request)
        decision = self._policy.admit(key, seq, charge, request.model, now)
        detail = {
            **base,
            **self.describe(request),
            "remaining_requests": decision.remaining_requests,
            "remaining_tokens": decision.remaining_tokens,
        }
        if not decision.admitted:
            out = service_headers(server_id, 0, self._organization) + decision.headers
            await respond(send, decision.status, decision.body, out)
            state.by_status[decision.status] += 1
            self._emit(
                "limited",
                now,
                name,
                0,
                {
                    **detail,
                    "status": decision.status,
                    "limit_type": decision.limit_type,
                    "code": decision.code,
                    "requested_tokens": charge,
                    "retry_after_ms": decision.retry_after_ms,
                },
            )
            return

        state.tokens_charged += charge
        state.in_flight += 1
        try:
            plan = self.plan(request, seq, now)
            latency = plan.latency
            total = latency.total
            self._policy.expect_end(key, seq, now + total)
            self._emit("accepted", now, name, charge, {**detail, "latency": total})
            # The planned time until the answer is complete: an injected error is sent after the time to
            # first token, a reply after its whole latency.
            planned = latency.ttft if _is_error(plan.fault) else total
            out = service_headers(server_id, 1000 * planned, self._organization) + decision.headers
            await self.serve(Exchange(send, request, plan, name, charge, detail, out, now))
        finally:
            state.in_flight -= 1
            self._policy.release(key, seq)

    # -- helpers for serve --------------------------------------------------------------------------

    async def fail(self, exchange: Exchange[RequestT, PlanT]) -> bool:
        """Answer an injected 5xx after the time to first token and emit ``failed``; False if none is due.

        A ``stream_cut`` is not an error response (it is a 200 that stops early): the route handles it.
        """
        fault = exchange.plan.fault.kind
        if fault is None or fault == "stream_cut":
            return False
        loop = asyncio.get_running_loop()
        # The server worked on it for a while, then failed: the status is known before any byte.
        await sleep_until(loop, exchange.start + exchange.plan.latency.ttft)
        status, body = fault_response(fault)
        await respond(exchange.send, status, body, exchange.headers)
        self._state.by_status[status] += 1
        self._emit(
            "failed",
            loop.time(),
            exchange.name,
            exchange.charge,
            {**exchange.detail, "status": status, "code": fault},
        )
        return True

    async def reply_json(
        self, exchange: Exchange[RequestT, PlanT], body: bytes, done: dict[str, Any]
    ) -> None:
        """Send ``body`` (200) when the whole latency has passed, then emit ``completed`` with ``done``."""
        loop = asyncio.get_running_loop()
        await sleep_until(loop, exchange.start + exchange.plan.latency.total)
        await respond(exchange.send, 200, body, exchange.headers)
        self._state.by_status[200] += 1
        self._emit("completed", loop.time(), exchange.name, exchange.charge, done)

    def stream_ended(
        self, exchange: Exchange[RequestT, PlanT], cut: int | None, done: dict[str, Any]
    ) -> None:
        """Record a streamed 200 that has ended: ``completed`` with ``done``, or -- when the fault cut it
        after ``cut`` chunks -- ``failed`` with code ``stream_cut``."""
        now = asyncio.get_running_loop().time()
        self._state.by_status[200] += 1
        if cut is None:
            self._emit("completed", now, exchange.name, exchange.charge, done)
        else:
            detail = {**done, "code": "stream_cut", "chunks_sent": cut}
            self._emit("failed", now, exchange.name, exchange.charge, detail)


def _is_error(fault: Fault) -> bool:
    return fault.kind is not None and fault.kind != "stream_cut"
