"""``POST /v1/chat/completions``: the life of one chat request, answered as JSON or as an SSE stream.

=====================  ==========================================================================
1. arrived             event ``arrived``; the arrival number ``seq`` seeds everything random below
2. read and validate   bad input: a 4xx naming ``param``, event ``rejected`` (no limit is asked)
3. ask the policy      refused: 429 with ``x-ratelimit-*`` headers (and a retry hint if waiting helps),
                       event ``limited``
4. admitted            charged, never refunded; event ``accepted`` with the planned latency
5. plan the reply      fault, text and latency, drawn from the request's own seeded dice
6. sleep and answer    JSON after the whole latency, or SSE chunks as they are "generated"; event
                       ``completed``, or ``failed`` for an injected 5xx or a cut stream
=====================  ==========================================================================

Everything about an admitted reply — whether it fails, its text, its latency — is decided in one place
(:meth:`ChatCompletions._plan`) before its first byte is sent, from dice seeded by the request's arrival
number. So the 429 decision always comes before any byte, and the same seed and arrival order give the same
run. Each step is recorded as an event (see :mod:`mock_server.events` for the kinds and their details).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from ..asgi import (
    ClientGone,
    Headers,
    Receive,
    Scope,
    Send,
    header_int,
    method_not_allowed,
    read_body,
    respond,
    respond_error,
    send_body,
    start_stream,
)
from ..dice import Dice
from ..errors import ApiError
from ..faults import Fault, draw_fault, fault_response
from ..latency import Latency, plan_latency, sleep_until
from ..policy import SHARED_KEY, hash_key
from ..responses import DONE, ChunkEncoder, completion_body
from ..schema import ChatRequest, parse_chat_request
from ..state import ServerState
from ..tokens import CHARS_PER_TOKEN, estimate_tokens, text_source

__all__ = ["CHAT_PATH", "ChatCompletions"]

CHAT_PATH = "/v1/chat/completions"


class ChatCompletions:
    """The chat-completions route of one app: an ASGI handler bound to the app's :class:`ServerState`."""

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._config = state.config
        # Bound once: the busiest path of the server should not look these up on every request.
        self._policy = state.policy
        self._emit = state.log.emit
        self._text = text_source(state.config.seed, CHARS_PER_TOKEN * state.config.max_output_tokens)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self._state
        now = state.clock()
        seq = state.arrive()
        headers: dict[bytes, bytes] = dict(scope["headers"])  # names arrive lower-cased (ASGI)
        given_id = headers.get(b"x-request-id")
        request_id = given_id.decode("latin-1")[:200] if given_id else f"srv-{seq}"
        base: dict[str, Any] = {"attempt": header_int(headers.get(b"x-stainless-retry-count"))}
        key = SHARED_KEY
        if self._config.per_key:
            authorization = headers.get(b"authorization")
            key = hash_key(authorization.decode("latin-1") if authorization else None)
            base["key"] = key
        id_header = [(b"x-request-id", request_id.encode("latin-1"))]
        self._emit("arrived", now, request_id, 0, {**base, "seq": seq})

        try:
            # A wrong method is checked here, not by the router, so that it too is an event ("rejected").
            if scope["method"] != "POST":
                raise method_not_allowed(scope["method"], CHAT_PATH, "POST")
            body = await read_body(receive, headers.get(b"content-length"), self._config.max_body_bytes)
            request = parse_chat_request(body, self._config)
        except ApiError as err:
            await respond_error(send, err, id_header)
            state.by_status[err.status] += 1
            self._emit(
                "rejected",
                state.clock(),
                request_id,
                0,
                {**base, "status": err.status, "code": err.code, "param": err.param},
            )
            return
        except ClientGone:
            self._emit(
                "failed", state.clock(), request_id, 0, {**base, "status": 499, "code": "client_disconnected"}
            )
            return

        now = state.clock()
        charge = request.prompt_tokens
        if self._config.token_charge == "prompt+max_tokens":
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
            await respond(send, decision.status, decision.body, id_header + decision.headers)
            state.by_status[decision.status] += 1
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

        state.tokens_charged += charge
        state.in_flight += 1
        try:
            reply = self._plan(request, seq, now)
            self._policy.expect_end(key, seq, now + reply.latency.total)
            self._emit("accepted", now, request_id, charge, {**detail, "latency": reply.latency.total})
            await self._serve(send, request, reply, request_id, charge, detail, id_header + decision.headers)
        finally:
            state.in_flight -= 1
            self._policy.release(key, seq)

    def _plan(self, request: ChatRequest, seq: int, start: float) -> _Reply:
        """Decide everything about an admitted request's reply before its first byte is sent."""
        # Every seeded choice for this request comes from its own generator, drawn in a fixed order,
        # so the same seed and the same arrival order give the same faults, text and latency.
        config = self._config
        rng = Dice(config.seed, seq)
        fault = draw_fault(config, rng, request.stream)
        lo, hi = config.completion_fraction
        target = min(request.max_tokens, max(1, round(rng.uniform(lo, hi) * request.max_tokens)))
        content = self._text.completion(target, rng)
        completion_tokens = estimate_tokens(content)
        latency = plan_latency(config, rng, completion_tokens, self._state.in_flight - 1)
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
        state = self._state
        loop = asyncio.get_running_loop()
        latency, start = reply.latency, reply.start
        fault = reply.fault.kind
        if fault is not None and fault != "stream_cut":
            # The server worked on it for a while, then failed: the status is known before any byte.
            await sleep_until(loop, start + latency.ttft)
            status, body = fault_response(fault)
            await respond(send, status, body, headers)
            state.by_status[status] += 1
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
            await sleep_until(loop, start + latency.total)
            body = completion_body(
                reply.completion_id,
                created,
                request.model,
                reply.content,
                reply.finish_reason,
                request.prompt_tokens,
                reply.completion_tokens,
            )
            await respond(send, 200, body, headers)
            state.by_status[200] += 1
            self._emit("completed", loop.time(), request_id, charge, done)
            return

        cut = await _stream(send, loop, request, reply, created, headers)
        state.by_status[200] += 1
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
    await start_stream(send, headers)
    first_token = reply.start + reply.latency.ttft
    generation = reply.latency.generation
    await sleep_until(loop, first_token)
    pending = [encoder.role()]
    sent = chars = 0
    for piece in pieces:
        if sent == cut_after:
            break
        if generation > 0:
            chars += len(piece)
            await sleep_until(loop, first_token + generation * chars / len(reply.content))
        pending.append(encoder.content(piece))
        sent += 1
        if generation > 0:
            await send_body(send, b"".join(pending), more=True)
            pending.clear()
    if cut_after is not None:
        # Cut: close the body without the finish chunk, usage or [DONE].
        await send_body(send, b"".join(pending), more=False)
        return sent
    pending.append(encoder.finish(reply.finish_reason))
    if request.include_usage:
        pending.append(encoder.usage(request.prompt_tokens, reply.completion_tokens))
    pending.append(DONE)
    await send_body(send, b"".join(pending), more=False)
    return None
