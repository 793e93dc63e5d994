"""The ASGI application: routes, the life of one chat request, events and stats.

A raw ASGI3 callable — no framework — because the server must stay fast enough that it is never the
bottleneck of an experiment, and because the whole request path fits on a page:

``POST /v1/chat/completions``
    arrived → read and validate the body (bad input: 4xx, event ``rejected``) → ask the policy
    (refused: 429, event ``limited``) → admitted (event ``accepted``) → roll the seeded dice for faults,
    content and latency → sleep and answer (event ``completed``, or ``failed`` for an injected fault).
``GET /v1/models``, ``GET /v1/models/{id}``, ``GET /health``, ``GET /stats``, ``GET /events?since=N``
    information; not rate limited, not recorded as events.

All time comes from the running loop (``loop.time()``), and all waiting is ``asyncio.sleep``, so the same
app runs in real time under uvicorn and in virtual time in-process (through ``httpx.ASGITransport``).
The only wall clock is the ``created`` field of response bodies, which is a Unix timestamp by contract.

Event records are plain dicts (JSON-friendly), one per step of a chat request's life::

    {"t": 12.5, "kind": "limited", "source": "server", "request": "req-7", "weight": 0,
     "detail": {"status": 429, "limit_type": "requests", "retry_after_ms": 334, ...}}

``t`` is loop time; ``request`` is the request's ``x-request-id`` header, or ``"srv-N"`` (N = arrival
number) when it has none; ``weight`` is the tokens charged (0 when nothing was charged). Kinds:

============  ===========================================================================================
``arrived``   the request's headers arrived (detail: ``seq``)
``rejected``  bad input, answered 4xx (``status``, ``code``, ``param``)
``limited``   answered 429 (``status``, ``limit_type`` = requests/tokens/concurrency/quota, ``code``,
              ``retry_after_ms`` (None when no hint), ``requested_tokens``, ``remaining_*``, ...)
``accepted``  admitted and charged (``latency`` planned, ``remaining_requests``, ``remaining_tokens``,
              ``model``, ``prompt_tokens``, ``max_tokens``, ``stream``)
``completed`` the last byte of a 200 was sent (adds ``status``, ``completion_tokens``, ``total_tokens``,
              ``finish_reason``)
``failed``    an injected 5xx (``status``, ``code``) or a cut stream (``code`` = ``stream_cut``,
              ``chunks_sent``); status 499 if the client left before sending its body
============  ===========================================================================================

Every detail has ``attempt`` (the ``x-stainless-retry-count`` header as an int, else None) and, with
``per_key``, ``key`` (a short hash of the API key, never the key). ``remaining_*`` are the header values at
admission. Only requests to the chat route are recorded.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
import urllib.parse
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from .config import ServerConfig
from .dice import Dice
from .errors import ApiError
from .faults import Fault, draw_fault, fault_response
from .latency import Latency, plan_latency
from .policy import KEEP, SHARED_KEY, Keep, Limits, ProviderPolicy, hash_key
from .responses import DONE, ChunkEncoder, completion_body
from .schema import ChatRequest, parse_chat_request
from .tokens import CHARS_PER_TOKEN, estimate_tokens, text_source

__all__ = ["CHAT_PATH", "EventRecord", "MockServerApp", "create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
EventRecord = dict[str, Any]
Headers = list[tuple[bytes, bytes]]

CHAT_PATH = "/v1/chat/completions"
_JSON = b"application/json"
_SSE = b"text/event-stream; charset=utf-8"
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"))
_MODEL_CREATED = 1_700_000_000  # a fixed "created" for model objects: they do not change between runs

log = logging.getLogger("mock_server")


class _ClientGone(Exception):
    """The client disconnected before its request body arrived."""


def create_app(config: ServerConfig | None = None) -> MockServerApp:
    """Build the mock provider for ``config`` (defaults: :class:`ServerConfig()`, nothing limited)."""
    return MockServerApp(config if config is not None else ServerConfig())


class MockServerApp:
    """An OpenAI-compatible provider as an ASGI3 application (``await app(scope, receive, send)``).

    Attributes a caller may use:

    ``events``
        Every event record so far, appended as they happen (trimmed to the newest ``max_events``).
    ``on_event``
        Optional callable given each record as it is appended (an observer, e.g. a live plot).
    ``config``
        The :class:`ServerConfig` the app was built from.

    The app's clock is the loop it runs on. When it finds itself on a *different* loop than before (a new
    ``run(...)``), that loop's clock has another origin: buckets start full again and the limit schedule
    starts over. Limits set with :meth:`set_limits`, the quota used, events and counts are kept until
    :meth:`reset`.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.events: list[EventRecord] = []
        self.on_event: Callable[[EventRecord], None] | None = None
        self._policy = ProviderPolicy(config)
        self._by_status: collections.Counter[int] = collections.Counter()
        self._by_kind: collections.Counter[str] = collections.Counter()
        self._seq = 0
        self._in_flight = 0
        self._tokens_charged = 0
        self._events_dropped = 0  # records trimmed off the front of ``events`` (see ``max_events``)
        self._epoch: float | None = None
        self._schedule_index = 0
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._now = 0.0
        self._text = text_source(config.seed, CHARS_PER_TOKEN * config.max_output_tokens)
        self._models_body = _JSON_ENCODER.encode(
            {"object": "list", "data": [self._model_object(m) for m in config.models]}
        ).encode()

    def __repr__(self) -> str:
        limits = self._policy.limits
        return (
            f"<MockServerApp rpm={limits.rpm} tpm={limits.tpm} window={self.config.window:g}s "
            f"max_concurrent={limits.max_concurrent} arrivals={self._seq} in_flight={self._in_flight} "
            f"events={len(self.events)}>"
        )

    # -- the clock ----------------------------------------------------------------------------------

    def _clock(self) -> float:
        """Loop time now; on the first call (or on a new loop) this also fixes the epoch."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._loop is None or self._loop() is not loop:
            if self._loop is not None:
                self._new_clock()
            self._loop = weakref.ref(loop)
        if self._epoch is None:
            self._epoch = now
        if self._schedule_index < len(self.config.limit_schedule):
            self._apply_schedule(self._epoch, now)
        self._now = now
        return now

    def _peek(self) -> float:
        """Loop time if we are on the app's loop, else the last time the app saw (never resets state)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._now
        if self._loop is not None and self._loop() is loop:
            return loop.time()
        return self._now

    def _new_clock(self) -> None:
        self._policy.new_clock()
        self._epoch = None
        self._in_flight = 0
        if self.config.limit_schedule:
            # The schedule counts from the epoch, so it starts over, from the configured limits.
            self._schedule_index = 0
            self._policy.set_limits(0.0, rpm=self.config.rpm, tpm=self.config.tpm)

    def _apply_schedule(self, epoch: float, now: float) -> None:
        schedule = self.config.limit_schedule
        while self._schedule_index < len(schedule):
            at, rpm, tpm = schedule[self._schedule_index]
            switch = epoch + at
            if not switch <= now:
                return
            # Applied at the instant it was due, not at ``now``, so usage refills at the old rate up to
            # the switch and at the new rate after it, exactly as if a timer had fired on time.
            self._policy.set_limits(switch, rpm=rpm, tpm=tpm)
            self._schedule_index += 1

    # -- public controls ----------------------------------------------------------------------------

    def set_limits(
        self,
        *,
        rpm: int | Keep | None = KEEP,
        tpm: int | Keep | None = KEEP,
        max_concurrent: int | Keep | None = KEEP,
    ) -> Limits:
        """Change limits now, keeping current usage; ``None`` = unlimited, omitted = unchanged.

        Raises ``ValueError`` naming the argument for an invalid value. Returns the limits in force.
        """
        return self._policy.set_limits(self._peek(), rpm=rpm, tpm=tpm, max_concurrent=max_concurrent)

    @property
    def limits(self) -> Limits:
        """The limits in force right now."""
        return self._policy.limits

    def reset(self) -> None:
        """Forget events, counts, buckets, the epoch and the arrival numbering (limits back to config)."""
        self.events.clear()
        self._by_status.clear()
        self._by_kind.clear()
        self._seq = 0
        self._tokens_charged = 0
        self._events_dropped = 0
        self._policy.reset()
        self._epoch = None
        self._schedule_index = 0

    def stats(self) -> dict[str, Any]:
        """Counts and current bucket levels, as JSON-friendly data (also served at ``GET /stats``)."""
        now = self._peek()
        return {
            "t": now,
            "epoch": self._epoch,
            "arrivals": self._seq,
            "in_flight": self._in_flight,
            "by_status": {str(status): n for status, n in sorted(self._by_status.items())},
            "by_kind": dict(sorted(self._by_kind.items())),
            "tokens_charged": self._tokens_charged,
            "events": len(self.events),
            "preset": self.config.preset_name,
            "seed": self.config.seed,
            **self._policy.snapshot(now),
        }

    # -- events -------------------------------------------------------------------------------------

    def _emit(self, kind: str, t: float, request: str, weight: int, detail: dict[str, Any]) -> None:
        record: EventRecord = {
            "t": t,
            "kind": kind,
            "source": "server",
            "request": request,
            "weight": weight,
            "detail": detail,
        }
        self._by_kind[kind] += 1
        events = self.events
        events.append(record)
        cap = self.config.max_events
        # Trim in batches (a quarter of the cap at a time) so trimming costs O(1) per event on average.
        if cap is not None and len(events) > cap + (cap >> 2):
            self._events_dropped += len(events) - cap
            del events[: len(events) - cap]
        observer = self.on_event
        if observer is not None:
            try:
                observer(record)
            except Exception:
                # An observer is someone else's code: its bug must not turn a reply into a 500.
                log.exception("mock_server on_event observer raised; event kept, observer ignored")

    def events_since(self, since: int = 0) -> dict[str, Any]:
        """Event records numbered ``since`` and later (numbering counts every record since :meth:`reset`).

        Returns ``{"events": [...], "next": N, "dropped": D}``: pass ``next`` back as ``since`` to poll for
        only new records; ``dropped`` counts records already trimmed away by ``max_events``. Served at
        ``GET /events?since=N`` so a client of the real server can overlay the server's view on its own.
        """
        first = max(0, since - self._events_dropped)
        return {
            "events": self.events[first:],
            "next": self._events_dropped + len(self.events),
            "dropped": self._events_dropped,
        }

    # -- ASGI entry point ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._clock()  # fixes the epoch: the limit schedule counts from server start
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path == CHAT_PATH:
            await self._chat(scope, receive, send)
            return
        if path in ("/health", "/stats", "/events", "/v1/models") or path.startswith("/v1/models/"):
            if method not in ("GET", "HEAD"):
                await _respond_error(send, _method_not_allowed(method, path, "GET, HEAD"), [])
            elif path == "/health":
                await _respond(send, 200, b'{"status":"ok"}', [])
            elif path == "/stats":
                await _respond(send, 200, _JSON_ENCODER.encode(self.stats()).encode(), [])
            elif path == "/events":
                await self._events_route(scope, send)
            elif path == "/v1/models":
                await _respond(send, 200, self._models_body, [])
            else:
                await self._model(path[len("/v1/models/") :], send)
            return
        await _respond_error(
            send,
            ApiError(f"Invalid URL ({method} {path[:200]}).", status=404, code="unknown_url"),
            [],
        )

    async def _events_route(self, scope: Scope, send: Send) -> None:
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        since = query.get("since", ["0"])[-1]
        if not since.isdigit() or len(since) > 18:
            error = ApiError("'since' must be a non-negative integer.", param="since", code="invalid_value")
            await _respond_error(send, error, [])
            return
        await _respond(send, 200, _JSON_ENCODER.encode(self.events_since(int(since))).encode(), [])

    @staticmethod
    def _model_object(model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": _MODEL_CREATED, "owned_by": "mock_server"}

    async def _model(self, model: str, send: Send) -> None:
        if model and (not self.config.models or model in self.config.models):
            body = _JSON_ENCODER.encode(self._model_object(model)).encode()
            await _respond(send, 200, body, [])
            return
        shown = model if len(model) <= 100 else model[:97] + "..."
        await _respond_error(
            send,
            ApiError(
                f"The model `{shown}` does not exist or you do not have access to it.",
                status=404,
                code="model_not_found",
            ),
            [],
        )

    # -- chat completions ---------------------------------------------------------------------------

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        now = self._clock()
        self._seq += 1
        seq = self._seq
        headers: dict[bytes, bytes] = dict(scope["headers"])  # names arrive lower-cased (ASGI)
        given_id = headers.get(b"x-request-id")
        request_id = given_id.decode("latin-1")[:200] if given_id else f"srv-{seq}"
        base: dict[str, Any] = {"attempt": _header_int(headers.get(b"x-stainless-retry-count"))}
        key = SHARED_KEY
        if self.config.per_key:
            authorization = headers.get(b"authorization")
            key = hash_key(authorization.decode("latin-1") if authorization else None)
            base["key"] = key
        id_header = [(b"x-request-id", request_id.encode("latin-1"))]
        self._emit("arrived", now, request_id, 0, {**base, "seq": seq})

        try:
            if scope["method"] != "POST":
                raise _method_not_allowed(scope["method"], CHAT_PATH, "POST")
            body = await self._read_body(receive, headers.get(b"content-length"))
            request = parse_chat_request(body, self.config)
        except ApiError as err:
            await _respond_error(send, err, id_header)
            self._by_status[err.status] += 1
            self._emit(
                "rejected",
                self._clock(),
                request_id,
                0,
                {**base, "status": err.status, "code": err.code, "param": err.param},
            )
            return
        except _ClientGone:
            self._emit(
                "failed", self._clock(), request_id, 0, {**base, "status": 499, "code": "client_disconnected"}
            )
            return

        now = self._clock()
        charge = request.prompt_tokens
        if self.config.token_charge == "prompt+max_tokens":
            charge += request.max_tokens
        decision = self._policy.admit(key, seq, charge, request.model, now)
        detail = {
            **base,
            "model": request.model,
            "prompt_tokens": request.prompt_tokens,
            "max_tokens": request.max_tokens,
            "stream": request.stream,
            "remaining_requests": decision.remaining_requests,
            "remaining_tokens": decision.remaining_tokens,
        }
        if not decision.admitted:
            await _respond(send, decision.status, decision.body, id_header + decision.headers)
            self._by_status[decision.status] += 1
            self._emit(
                "limited",
                now,
                request_id,
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

        self._tokens_charged += charge
        self._in_flight += 1
        try:
            reply = self._plan(request, seq, now)
            self._policy.expect_end(key, seq, now + reply.latency.total)
            self._emit("accepted", now, request_id, charge, {**detail, "latency": reply.latency.total})
            await self._serve(send, request, reply, request_id, charge, detail, id_header + decision.headers)
        finally:
            self._in_flight -= 1
            self._policy.release(key, seq)

    async def _read_body(self, receive: Receive, declared: bytes | None) -> bytes:
        limit = self.config.max_body_bytes
        declared_size = _header_int(declared)
        if declared_size is not None and declared_size > limit:
            raise _too_large(limit)  # refused before reading a byte of it
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
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

    def _plan(self, request: ChatRequest, seq: int, start: float) -> _Reply:
        """Decide everything about an admitted request's reply before its first byte is sent."""
        # Every seeded choice for this request comes from its own generator, drawn in a fixed order,
        # so the same seed and the same arrival order give the same faults, text and latency.
        rng = Dice(self.config.seed, seq)
        fault = draw_fault(self.config, rng, request.stream)
        lo, hi = self.config.completion_fraction
        target = min(request.max_tokens, max(1, round(rng.uniform(lo, hi) * request.max_tokens)))
        content = self._text.completion(target, rng)
        completion_tokens = estimate_tokens(content)
        latency = plan_latency(self.config, rng, completion_tokens, self._in_flight - 1)
        return _Reply(
            completion_id=f"chatcmpl-{rng.hex(12)}",
            content=content,
            completion_tokens=completion_tokens,
            # "length": the model wanted to go on but hit max_tokens.
            finish_reason="length" if target == request.max_tokens else "stop",
            fault=fault,
            latency=latency,
            start=start,
        )

    async def _serve(
        self,
        send: Send,
        request: ChatRequest,
        reply: _Reply,
        request_id: str,
        charge: int,
        detail: dict[str, Any],
        headers: Headers,
    ) -> None:
        loop = asyncio.get_running_loop()
        latency, start = reply.latency, reply.start
        fault = reply.fault.kind
        if fault is not None and fault != "stream_cut":
            # The server worked on it for a while, then failed: the status is known before any byte.
            await _sleep_until(loop, start + latency.ttft)
            status, body = fault_response(fault)
            await _respond(send, status, body, headers)
            self._by_status[status] += 1
            self._emit("failed", loop.time(), request_id, charge, {**detail, "status": status, "code": fault})
            return

        done = {
            **detail,
            "status": 200,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": request.prompt_tokens + reply.completion_tokens,
            "finish_reason": reply.finish_reason,
        }
        created = int(time.time())  # the one wall-clock value: a Unix timestamp by contract
        if not request.stream:
            await _sleep_until(loop, start + latency.total)
            body = completion_body(
                reply.completion_id,
                created,
                request.model,
                reply.content,
                reply.finish_reason,
                request.prompt_tokens,
                reply.completion_tokens,
            )
            await _respond(send, 200, body, headers)
            self._by_status[200] += 1
            self._emit("completed", loop.time(), request_id, charge, done)
            return

        cut = await _stream(send, loop, request, reply, created, headers)
        self._by_status[200] += 1
        if cut is None:
            self._emit("completed", loop.time(), request_id, charge, done)
        else:
            self._emit(
                "failed", loop.time(), request_id, charge, {**done, "code": "stream_cut", "chunks_sent": cut}
            )


@dataclass(frozen=True, slots=True)
class _Reply:
    """Everything decided about an admitted request before its first byte is sent."""

    completion_id: str
    content: str
    completion_tokens: int
    finish_reason: str
    fault: Fault
    latency: Latency
    start: float
    """Loop time of admission: every deadline of the reply counts from here."""


async def _stream(
    send: Send,
    loop: asyncio.AbstractEventLoop,
    request: ChatRequest,
    reply: _Reply,
    created: int,
    headers: Headers,
) -> int | None:
    """Send an SSE stream; return how many content chunks were sent if it was cut, else None.

    The first chunk goes out after the time to first token; each content chunk is due when its share
    of the characters has been "generated". Without per-token latency, everything goes in one write.
    """
    words = reply.content.split(" ")
    pieces = [words[0], *(" " + w for w in words[1:])]
    cut_after = int(reply.fault.cut_fraction * len(pieces)) if reply.fault.kind == "stream_cut" else None
    encoder = ChunkEncoder(reply.completion_id, created, request.model, request.include_usage)
    # Headers go out at once (as a provider's do); the first chunk waits for the time to first token.
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", _SSE), (b"cache-control", b"no-cache"), *headers],
        }
    )
    first_token = reply.start + reply.latency.ttft
    generation = reply.latency.generation
    await _sleep_until(loop, first_token)
    pending = [encoder.role()]
    sent = chars = 0
    for piece in pieces:
        if sent == cut_after:
            break
        if generation > 0:
            chars += len(piece)
            await _sleep_until(loop, first_token + generation * chars / len(reply.content))
        pending.append(encoder.content(piece))
        sent += 1
        if generation > 0:
            await send({"type": "http.response.body", "body": b"".join(pending), "more_body": True})
            pending.clear()
    if cut_after is not None:
        # Cut: close the body without the finish chunk, usage or [DONE].
        await send({"type": "http.response.body", "body": b"".join(pending), "more_body": False})
        return sent
    pending.append(encoder.finish(reply.finish_reason))
    if request.include_usage:
        pending.append(encoder.usage(request.prompt_tokens, reply.completion_tokens))
    pending.append(DONE)
    await send({"type": "http.response.body", "body": b"".join(pending), "more_body": False})
    return None


# -- helpers ------------------------------------------------------------------------------------------


async def _sleep_until(loop: asyncio.AbstractEventLoop, deadline: float) -> None:
    # One sleep per deadline: we never loop on "is it time yet?", so float rounding cannot make us spin.
    delay = deadline - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


def _header_int(value: bytes | None) -> int | None:
    """A header's non-negative integer value, or None if it is not one.

    Absurdly long numbers are capped rather than parsed: ``int()`` refuses strings past 4300 digits.
    """
    if value is None or not value.isdigit():
        return None
    return int(value) if len(value) <= 18 else 10**18


def _too_large(limit: int) -> ApiError:
    return ApiError(
        f"The request body is too large: this server accepts at most {limit} bytes.",
        status=413,
        code="payload_too_large",
    )


def _method_not_allowed(method: str, path: str, allow: str) -> ApiError:
    return ApiError(
        f"Method {method[:20]} is not allowed on {path}; use {allow}.",
        status=405,
        code="method_not_allowed",
        headers=((b"allow", allow.encode()),),
    )


async def _respond(
    send: Send, status: int, body: bytes, headers: Headers, content_type: bytes = _JSON
) -> None:
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


async def _respond_error(send: Send, err: ApiError, headers: Headers) -> None:
    await _respond(send, err.status, err.body(), [*headers, *err.headers])
