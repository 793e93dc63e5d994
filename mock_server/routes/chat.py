"""``POST /v1/chat/completions``: a chat request answered as JSON or as an SSE stream.

The life of the request — arrival, the key, validation, admission, events — is
:class:`~mock_server.routes.limited.LimitedRoute`'s; this module says what is chat about it:

=====================  ==========================================================================
parse                  :func:`~mock_server.schema.parse_chat_request` (messages per role, ``n``, ...)
charge                 prompt tokens + ``n × max_tokens`` (``token_charge="prompt+max_tokens"``, as
                       OpenAI counts a request against TPM) or the prompt alone (``"prompt"``)
plan                   fault, then each choice's length and text, then the latency, then the id —
                       all drawn from the request's own seeded dice, in that order
serve                  JSON after the whole latency, or SSE chunks as they are "generated"; event
                       ``completed``, or ``failed`` for an injected 5xx or a cut stream
=====================  ==========================================================================

Everything about an admitted reply — whether it fails, its text, its latency — is decided in
:meth:`ChatCompletions.plan` before its first byte is sent, from dice seeded by the request's arrival
number. So the 429 decision always comes before any byte, and the same seed and arrival order give the same
run. With ``n > 1`` each choice has its own seeded text; the choices are generated side by side, so the
latency is that of the longest, and ``usage.completion_tokens`` is their sum.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from ..asgi import send_body, start_stream
from ..dice import Dice
from ..faults import Fault, draw_fault
from ..latency import Latency, plan_latency, sleep_until
from ..responses import DONE, ChunkEncoder, completion_body
from ..schema import ChatRequest, parse_chat_request
from ..state import ServerState
from ..tokens import CHARS_PER_TOKEN, estimate_tokens, text_source
from .limited import Exchange, LimitedRoute

__all__ = ["CHAT_PATH", "ChatCompletions"]

CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class Choice:
    """One generated choice: its text, its token count and why it stopped."""

    content: str
    completion_tokens: int
    finish_reason: str
    """``length`` when the text used the whole ``max_tokens``, else ``stop``."""


@dataclass(frozen=True, slots=True)
class _Reply:
    """Everything decided about an admitted request before its first byte is sent."""

    completion_id: str
    choices: tuple[Choice, ...]
    fault: Fault
    latency: Latency

    @property
    def completion_tokens(self) -> int:
        """All choices' tokens (what ``usage`` reports)."""
        choices = self.choices
        return (
            choices[0].completion_tokens if len(choices) == 1 else sum(c.completion_tokens for c in choices)
        )


class ChatCompletions(LimitedRoute[ChatRequest, _Reply]):
    """The chat-completions route of one app: an ASGI handler bound to the app's :class:`ServerState`."""

    path = CHAT_PATH

    def __init__(self, state: ServerState) -> None:
        super().__init__(state)
        self._text = text_source(state.config.seed, CHARS_PER_TOKEN * state.config.max_output_tokens)
        self._charge_output = state.config.token_charge == "prompt+max_tokens"

    def parse(self, body: bytes) -> ChatRequest:
        return parse_chat_request(body, self._config)

    def charge(self, request: ChatRequest) -> int:
        if self._charge_output:
            return request.prompt_tokens + request.n * request.max_tokens
        return request.prompt_tokens

    def describe(self, request: ChatRequest) -> dict[str, Any]:
        detail = {
            "model": request.model,
            "prompt_tokens": request.prompt_tokens,
            "max_tokens": request.max_tokens,
            "stream": request.stream,
        }
        if request.n != 1:
            detail["n"] = request.n
        return detail

    def plan(self, request: ChatRequest, seq: int, start: float) -> _Reply:
        # Every seeded choice for this request comes from its own generator, drawn in a fixed order,
        # so the same seed and the same arrival order give the same faults, text and latency.
        config = self._config
        rng = Dice(config.seed, seq)
        fault = draw_fault(config, rng, request.stream)
        lo, hi = config.completion_fraction
        budget = request.max_tokens
        choices = []
        for _ in range(request.n):
            target = min(budget, max(1, round(rng.uniform(lo, hi) * budget)))
            content = self._text.completion(target, rng)
            # "length": the model wanted to go on but hit max_tokens.
            choices.append(
                Choice(content, estimate_tokens(content), "length" if target == budget else "stop")
            )
        longest = (
            choices[0].completion_tokens if len(choices) == 1 else max(c.completion_tokens for c in choices)
        )
        latency = plan_latency(config, rng, longest, self._state.in_flight - 1)
        return _Reply(f"chatcmpl-{rng.hex(12)}", tuple(choices), fault, latency)

    async def serve(self, exchange: Exchange[ChatRequest, _Reply]) -> None:
        if await self.fail(exchange):
            return
        request, reply = exchange.request, exchange.plan
        done = {
            **exchange.detail,
            "status": 200,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": request.prompt_tokens + reply.completion_tokens,
            "finish_reason": reply.choices[0].finish_reason,
        }
        created = int(time.time())  # the one wall-clock value: a Unix timestamp by contract
        if not request.stream:
            body = completion_body(
                reply.completion_id,
                created,
                request.model,
                [(c.content, c.finish_reason) for c in reply.choices],
                request.prompt_tokens,
                reply.completion_tokens,
            )
            await self.reply_json(exchange, body, done)
            return

        loop = asyncio.get_running_loop()
        cut = await _stream(exchange, loop, created)
        self._state.by_status[200] += 1
        if cut is None:
            self._emit("completed", loop.time(), exchange.name, exchange.charge, done)
        else:
            self._emit(
                "failed",
                loop.time(),
                exchange.name,
                exchange.charge,
                {**done, "code": "stream_cut", "chunks_sent": cut},
            )


def _schedule(reply: _Reply) -> list[tuple[float, int, str, bool]]:
    """Every content piece of every choice as ``(share of generation time, choice, piece, last)``, in order.

    A choice's pieces are words; each is due when its share of the choice's characters has been
    "generated". Shorter choices finish sooner (their generation time scales with their tokens), so with
    ``n > 1`` the pieces of the choices interleave.
    """
    longest = max(c.completion_tokens for c in reply.choices)
    due: list[tuple[float, int, str, bool]] = []
    for index, choice in enumerate(reply.choices):
        words = choice.content.split(" ")
        pieces = [words[0], *(" " + w for w in words[1:])]
        scale = choice.completion_tokens / longest
        chars = 0
        for k, piece in enumerate(pieces):
            chars += len(piece)
            due.append((scale * chars / len(choice.content), index, piece, k == len(pieces) - 1))
    due.sort(key=lambda entry: (entry[0], entry[1]))
    return due


async def _stream(
    exchange: Exchange[ChatRequest, _Reply], loop: asyncio.AbstractEventLoop, created: int
) -> int | None:
    """Send an SSE stream; return how many content chunks were sent if it was cut, else None.

    The first chunks (one role chunk per choice) go out after the time to first token; each content chunk
    is due when its share of the characters has been "generated", and a choice's finish chunk follows its
    last piece. Without per-token latency, everything goes in one write.
    """
    send, request, reply = exchange.send, exchange.request, exchange.plan
    due = _schedule(reply)
    cut_after = int(reply.fault.cut_fraction * len(due)) if reply.fault.kind == "stream_cut" else None
    encoder = ChunkEncoder(reply.completion_id, created, request.model, request.include_usage)
    # Headers go out at once (as a provider's do); the first chunk waits for the time to first token.
    await start_stream(send, exchange.headers)
    first_token = exchange.start + reply.latency.ttft
    generation = reply.latency.generation
    await sleep_until(loop, first_token)
    pending = [encoder.role(index) for index in range(len(reply.choices))]
    sent = 0
    for share, index, piece, last in due:
        if sent == cut_after:
            break
        if generation > 0:
            await sleep_until(loop, first_token + generation * share)
        pending.append(encoder.content(piece, index))
        if last:
            pending.append(encoder.finish(reply.choices[index].finish_reason, index))
        sent += 1
        if generation > 0:
            await send_body(send, b"".join(pending), more=True)
            pending.clear()
    if cut_after is not None:
        # Cut: close the body without the remaining finish chunks, usage or [DONE].
        await send_body(send, b"".join(pending), more=False)
        return sent
    if request.include_usage:
        pending.append(encoder.usage(request.prompt_tokens, reply.completion_tokens))
    pending.append(DONE)
    await send_body(send, b"".join(pending), more=False)
    return None
