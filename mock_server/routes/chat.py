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

Tools and structured outputs
----------------------------
What a choice holds follows the request's ``tools``/``tool_choice`` and ``response_format``
(:mod:`mock_server.schema` checks them, :mod:`mock_server.structured` generates the JSON):

=====================================  ===============================================================
the request                            each choice
=====================================  ===============================================================
``tool_choice`` ``"required"``,        ``tool_calls`` (``call_…`` ids, ``type: function``, the function's
a named function, or allowed tools     name, ``arguments`` = compact JSON text valid against its
in mode required                       ``parameters``), ``content: null``, finish reason ``tool_calls``.
                                       A named function: exactly one call; otherwise, when
                                       ``parallel_tool_calls`` is not false and there are several tools,
                                       a second call to another tool one time in four
``"auto"`` (the default with tools)    a tool call with probability ``ServerConfig.tool_call_rate``
                                       (default 1.0), else as without tools — except right after a tool
                                       result (the last message is ``tool``/``function``), when the reply
                                       is text, so an agent loop ends as it does with a real model
``"none"``, or no tools                as below
``response_format`` ``json_schema``    content = compact JSON valid against the schema
``json_object``                        content = a JSON object, following the schema the prompt
                                       spells out if it has one, else ``{"result": "<text>"}``
otherwise                              seeded lorem text of ``completion_fraction × max_tokens`` tokens
=====================================  ===============================================================

Structured content and arguments are as long as the value needs (not ``completion_fraction``); their
tokens are ``ceil(len(text) / 4)``, as for text. When the value needs more than ``max_tokens``, the server
draws the most compact value the schema allows (``generate(..., small=True)``: no optional properties,
minimal arrays, one-word strings); when even that does not fit, the text is cut at ``4 × max_tokens``
characters and the finish reason is ``length`` — what OpenAI does (the JSON is then invalid; the openai
SDK's ``parse`` raises ``LengthFinishReasonError``, langchain reports an invalid tool call). Streamed,
JSON content goes out as content deltas of up to 8 characters and arguments as
``tool_calls[i].function.arguments`` fragments (:mod:`mock_server.responses` shows the chunks). All of it
comes from the request's dice, after the fault and in the order of the choices.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from ..asgi import send_body, start_stream
from ..dice import Dice, Rng
from ..faults import Fault, draw_fault
from ..latency import Latency, plan_latency, sleep_until
from ..responses import DONE, ChunkEncoder, ToolCall, completion_body
from ..schema import ChatRequest, OutputFormat, ToolChoice, parse_chat_request
from ..state import ServerState
from ..structured import SchemaProblem, generate
from ..tokens import CHARS_PER_TOKEN, estimate_tokens, text_source
from .limited import Exchange, LimitedRoute

__all__ = ["CHAT_PATH", "ChatCompletions"]

CHAT_PATH = "/v1/chat/completions"


PARALLEL_CALL_RATE = 0.25
"""How often a reply that may call several tools calls a second one."""
_FRAGMENT = 8  # characters per streamed piece of JSON (content or arguments)
_ROLE_DELTA = '{"role":"assistant","content":"","refusal":null}'
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass(frozen=True, slots=True)
class Choice:
    """One generated choice: its text or its tool calls, its token count and why it stopped."""

    content: str | None
    """The text (or JSON text); ``None`` when the choice calls tools."""
    completion_tokens: int
    finish_reason: str
    """``length`` when the output used the whole ``max_tokens``; ``tool_calls``; else ``stop``."""
    tool_calls: tuple[ToolCall, ...] = ()


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
        self._tool_call_rate = state.config.tool_call_rate

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
        if request.tools.tools:
            detail["tool_choice"] = request.tools.mode
        if request.output.kind != "text":
            detail["response_format"] = request.output.kind
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
        tools, output = request.tools, request.output
        for _ in range(request.n):
            if tools.mode != "none" and (
                tools.mode == "required"
                or (not request.after_tool_result and rng.random() < self._tool_call_rate)
            ):
                choices.append(self._call_tools(tools, rng, budget))
                continue
            if output.kind != "text":
                choices.append(self._json_content(output, rng, budget))
                continue
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

    def _words(self, tokens: int, rng: Rng) -> str:
        return self._text.completion(tokens, rng)

    def _generate(self, schema: dict[str, Any], rng: Rng, *, small: bool = False) -> str:
        """A value for ``schema`` as compact JSON text.

        The schema was checked, and one value generated, at parse time; should another draw still find
        no value (a schema whose only finite branch the trial happened to take), the reply is ``{}``
        rather than a 500 after admission.
        """
        try:
            return _COMPACT(generate(schema, rng, words=self._words, small=small))
        except (SchemaProblem, RecursionError):
            return "{}"

    def _call_tools(self, tools: ToolChoice, rng: Dice, budget: int) -> Choice:
        """A choice that calls one tool (two, sometimes, when parallel calls are allowed)."""
        offered = tools.tools
        first = rng.randrange(len(offered))
        picks = [offered[first]]
        if tools.parallel and len(offered) > 1 and rng.random() < PARALLEL_CALL_RATE:
            picks.append(offered[(first + 1 + rng.randrange(len(offered) - 1)) % len(offered)])
        calls = [
            ToolCall(f"call_{rng.hex(12)}", tool.name, self._generate(tool.parameters, rng)) for tool in picks
        ]
        room = CHARS_PER_TOKEN * budget
        if sum(len(call.arguments) for call in calls) > room:
            # Too long for max_tokens: the most compact arguments the schemas allow, as a model would try.
            calls = [
                call._replace(arguments=self._generate(tool.parameters, rng, small=True))
                for call, tool in zip(calls, picks, strict=True)
            ]
        if sum(len(call.arguments) for call in calls) <= room:
            return Choice(None, sum(estimate_tokens(c.arguments) for c in calls), "tool_calls", tuple(calls))
        # Out of tokens mid-arguments: what was written so far, cut where max_tokens ran out.
        kept: list[ToolCall] = []
        for call in calls:
            if room <= 0:
                break
            kept.append(call._replace(arguments=call.arguments[:room]))
            room -= len(call.arguments)
        return Choice(None, budget, "length", tuple(kept))

    def _json_content(self, output: OutputFormat, rng: Rng, budget: int) -> Choice:
        """A choice whose content is JSON: valid against the schema, or any object in JSON mode."""
        if output.schema is None:
            text = _COMPACT({"result": self._text.completion(1 + rng.randrange(8), rng)})
        else:
            text = self._generate(output.schema, rng)
        room = CHARS_PER_TOKEN * budget
        if len(text) > room and output.schema is not None:
            # Too long for max_tokens: the most compact value the schema allows, as a model would try.
            text = self._generate(output.schema, rng, small=True)
        if len(text) > room:
            return Choice(text[:room], budget, "length")
        return Choice(text, estimate_tokens(text), "stop")

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
        calls = sum(len(c.tool_calls) for c in reply.choices)
        if calls:
            done["tool_calls"] = calls
        created = int(time.time())  # the one wall-clock value: a Unix timestamp by contract
        if not request.stream:
            body = completion_body(
                reply.completion_id,
                created,
                request.model,
                [(c.content, c.finish_reason) for c in reply.choices],
                request.prompt_tokens,
                reply.completion_tokens,
                [c.tool_calls for c in reply.choices] if calls else None,
            )
            await self.reply_json(exchange, body, done)
            return

        loop = asyncio.get_running_loop()
        cut = await _stream(exchange, loop, created)
        self.stream_ended(exchange, cut, done)


def _pieces(choice: Choice) -> tuple[str, list[tuple[int, str]]]:
    """A choice's first delta and its later deltas, each with the characters it "generates".

    Text goes out word by word; JSON content in pieces of up to 8 characters; tool calls as the first
    call's announcement (the first delta), its argument fragments, then each further call's announcement
    (no characters of its own) and fragments.
    """
    if choice.tool_calls:
        opening = ""
        pieces: list[tuple[int, str]] = []
        for position, call in enumerate(choice.tool_calls):
            start = ChunkEncoder.tool_call_start(position, call, first=position == 0)
            if position == 0:
                opening = start
            else:
                pieces.append((0, start))
            args = call.arguments
            pieces.extend(
                (
                    len(args[k : k + _FRAGMENT]),
                    ChunkEncoder.tool_call_arguments(position, args[k : k + _FRAGMENT]),
                )
                for k in range(0, len(args), _FRAGMENT)
            )
        return opening, pieces
    content = choice.content or ""
    if content.startswith(("{", "[")):  # JSON: no spaces to split at
        fragments = [content[k : k + _FRAGMENT] for k in range(0, len(content), _FRAGMENT)]
    else:
        words = content.split(" ")
        fragments = [words[0], *(" " + w for w in words[1:])]
    return _ROLE_DELTA, [(len(f), ChunkEncoder.content_delta(f)) for f in fragments]


def _schedule(reply: _Reply) -> tuple[list[str], list[tuple[float, int, str, bool]]]:
    """Each choice's first delta, and every later delta as ``(share of generation time, choice, delta,
    last)``, in order.

    A delta is due when its share of the choice's characters has been "generated". Shorter choices finish
    sooner (their generation time scales with their tokens), so with ``n > 1`` the deltas of the choices
    interleave.
    """
    longest = max(c.completion_tokens for c in reply.choices) or 1
    openings: list[str] = []
    due: list[tuple[float, int, str, bool]] = []
    for index, choice in enumerate(reply.choices):
        opening, pieces = _pieces(choice)
        openings.append(opening)
        total = sum(chars for chars, _ in pieces) or 1
        scale = choice.completion_tokens / longest
        chars = 0
        for k, (size, delta) in enumerate(pieces):
            chars += size
            due.append((scale * chars / total, index, delta, k == len(pieces) - 1))
        if not pieces:  # a call with no argument text at all: finish right away
            due.append((0.0, index, "", True))
    due.sort(key=lambda entry: (entry[0], entry[1]))
    return openings, due


async def _stream(
    exchange: Exchange[ChatRequest, _Reply], loop: asyncio.AbstractEventLoop, created: int
) -> int | None:
    """Send an SSE stream; return how many content chunks were sent if it was cut, else None.

    The first chunks (one role chunk per choice) go out after the time to first token; each content chunk
    is due when its share of the characters has been "generated", and a choice's finish chunk follows its
    last piece. Without per-token latency, everything goes in one write.
    """
    send, request, reply = exchange.send, exchange.request, exchange.plan
    openings, due = _schedule(reply)
    cut_after = int(reply.fault.cut_fraction * len(due)) if reply.fault.kind == "stream_cut" else None
    encoder = ChunkEncoder(reply.completion_id, created, request.model, request.include_usage)
    # Headers go out at once (as a provider's do); the first chunk waits for the time to first token.
    await start_stream(send, exchange.headers)
    first_token = exchange.start + reply.latency.ttft
    generation = reply.latency.generation
    await sleep_until(loop, first_token)
    pending = [encoder.delta(opening, index) for index, opening in enumerate(openings)]
    sent = 0
    for share, index, delta, last in due:
        if sent == cut_after:
            break
        if generation > 0:
            await sleep_until(loop, first_token + generation * share)
        if delta:
            pending.append(encoder.delta(delta, index))
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
