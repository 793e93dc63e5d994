"""``POST /v1/responses``: OpenAI's Responses API, answered as one ``response`` object or as typed SSE events.

The life of the request — arrival, the key, validation, admission, the 429s, the headers, the events — is
:class:`~mock_server.routes.limited.LimitedRoute`'s, exactly as for chat; this module says what is
Responses about it:

=====================  ==========================================================================
parse                  :func:`~mock_server.responses_schema.parse_responses_request` (``input`` items,
                       ``instructions``, function tools, ``tool_choice``, ``text.format``, ...)
charge                 prompt tokens + ``max_output_tokens`` (``token_charge="prompt+max_tokens"``;
                       the config's ``default_max_tokens`` when the request names none, as chat), or
                       the prompt alone (``"prompt"``)
plan                   fault, then the output's length, then what the output is (a function call,
                       JSON for ``text.format``, or seeded text), then the latency, then the ids —
                       all from the request's own seeded dice, in that order
serve                  the ``response`` JSON after the whole latency, or the SSE events as the output is
                       "generated"; event ``completed``, or ``failed`` for an injected 5xx or a cut
                       stream
=====================  ==========================================================================

What the output is
------------------
By chat's rules (:mod:`mock_server.routes.chat`), from the same seeded draws:

* **Function calls** (``{"type": "function_call", "id": "fc_…", "call_id": "call_…", "name",
  "arguments"}``, arguments a compact JSON text valid against the tool's ``parameters``, from
  :func:`mock_server.structured.generate`) when ``tool_choice`` is ``required`` (a seeded pick among the
  tools; with ``parallel_tool_calls`` and several tools, a second call to another tool one time in four)
  or names a function (exactly that one); under ``auto`` (the default) with probability
  ``ServerConfig.tool_call_rate`` (1.0 by default) — except when the input ends with a
  ``function_call_output``, which the model then answers in text, so an agent loop ends.
* **JSON** for ``text.format`` ``json_schema`` (valid against the schema) or ``json_object`` (following
  the last JSON schema written in the prompt, else ``{"result": "<text>"}``).
* **Seeded lorem text** otherwise — the same text chat gives the same arrival and budget.

``usage`` counts the output by the server's rule (``ceil(chars/4)``). Text is ``completion_fraction`` of
the budget long; JSON is as long as its value needs, drawn again as compactly as the schema allows if
that is over ``max_output_tokens``, and cut there if even that does not fit. An output that used the whole
budget makes the response ``status: "incomplete"`` with ``incomplete_details: {"reason":
"max_output_tokens"}`` (its last item is ``incomplete`` too; cut JSON is then invalid, as a real model's).

The stream
----------
Typed server-sent events, ``event: <type>`` then ``data: <json>``, each with ``sequence_number`` 0, 1, ...
and no ``[DONE]`` sentinel (the Responses API ends with its terminal event)::

    response.created, response.in_progress                 (at once: the request was accepted)
    for each output item, one after the other (``output_index`` 0, 1, ...; the first after the time to
    first token):
        response.output_item.added
        message:        response.content_part.added, response.output_text.delta ...,
                        response.output_text.done, response.content_part.done
        function call:  response.function_call_arguments.delta ..., response.function_call_arguments.done
        response.output_item.done
    response.completed  |  response.incomplete             (the terminal event, with the whole response)

An injected 500/503 is an HTTP error after the time to first token, before any byte of a stream (as on
chat); a cut stream (``stream_cut``) stops after some deltas with no terminal event — the SDK's
``responses.stream(...).get_final_response()`` then raises "Didn't receive a `response.completed`
event". The mock never sends the spec's ``error`` or ``response.failed`` events: no injected fault happens
after the first byte other than the cut.

``previous_response_id`` may name a response this app made with ``store`` on (the default); its content is
not remembered (only its id), so the input should carry whatever context the reply needs.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..asgi import send_body, start_stream
from ..dice import Dice, Rng
from ..faults import Fault, draw_fault
from ..latency import Latency, plan_latency, sleep_until
from ..responses_schema import FunctionTool, ResponsesRequest, parse_responses_request
from ..state import ServerState
from ..structured import generate
from ..tokens import CHARS_PER_TOKEN, estimate_tokens, text_source
from .chat import PARALLEL_CALL_RATE
from .limited import Exchange, LimitedRoute

__all__ = ["MAX_STORED_IDS", "RESPONSES_PATH", "Responses"]

RESPONSES_PATH = "/v1/responses"

MAX_STORED_IDS = 10_000
"""How many stored response ids an app remembers for ``previous_response_id`` (the oldest go first)."""

_FRAGMENT = 8
"""Characters of JSON (arguments, structured text) per delta event (about two tokens), as on chat."""
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass(frozen=True, slots=True)
class _Item:
    """One output item: an assistant message, or a function call."""

    kind: Literal["message", "function_call"]
    item_id: str
    text: str
    """The message's text, or the call's arguments (a JSON text)."""
    name: str | None = None
    """The function called (function calls only)."""
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class _Reply:
    """Everything decided about an admitted request before its first byte is sent."""

    response_id: str
    items: tuple[_Item, ...]
    output_tokens: int
    incomplete: bool
    """The output used the whole ``max_output_tokens``."""
    fault: Fault
    latency: Latency

    @property
    def finish_reason(self) -> str:
        """Chat's word for how it ended (the events' ``finish_reason``): length, tool_calls or stop."""
        if self.incomplete:
            return "length"
        return "tool_calls" if self.items[0].kind == "function_call" else "stop"


class Responses(LimitedRoute[ResponsesRequest, _Reply]):
    """The Responses route of one app: an ASGI handler bound to the app's :class:`ServerState`."""

    path = RESPONSES_PATH

    def __init__(self, state: ServerState) -> None:
        super().__init__(state)
        self._text = text_source(state.config.seed, CHARS_PER_TOKEN * state.config.max_output_tokens)
        self._charge_output = state.config.token_charge == "prompt+max_tokens"
        # The ids of responses made with ``store`` on: all a ``previous_response_id`` may name.
        self._stored: collections.OrderedDict[str, None] = collections.OrderedDict()

    def parse(self, body: bytes) -> ResponsesRequest:
        return parse_responses_request(body, self._config, self._stored)

    def charge(self, request: ResponsesRequest) -> int:
        if self._charge_output:
            return request.prompt_tokens + request.max_output_tokens
        return request.prompt_tokens

    def describe(self, request: ResponsesRequest) -> dict[str, Any]:
        detail = {
            "model": request.model,
            "prompt_tokens": request.prompt_tokens,
            "max_tokens": request.max_output_tokens,
            "stream": request.stream,
        }
        if request.tools:
            detail["tools"] = len(request.tools)
        return detail

    def plan(self, request: ResponsesRequest, seq: int, start: float) -> _Reply:
        # The first draws are chat's (fault, length, text), so plain text is what chat would give.
        config = self._config
        rng = Dice(config.seed, seq)
        fault = draw_fault(config, rng, request.stream)
        lo, hi = config.completion_fraction
        budget = request.max_output_tokens
        target = min(budget, max(1, round(rng.uniform(lo, hi) * budget)))
        tools = self._pick_tools(request, rng)
        if tools:
            texts = [
                "{}" if tool.parameters is None else self._json(tool.parameters, tool.example, rng, budget)
                for tool in tools
            ]
        elif request.text_format.type == "text":
            texts = [self._text.completion(target, rng)]
        else:
            texts = [self._json(request.text_format.schema, request.text_format.example, rng, budget)]
        room = CHARS_PER_TOKEN * budget
        if tools or request.text_format.type != "text":
            # JSON is as long as the value needs; past the budget it is cut there, as a model's would be.
            incomplete = sum(map(len, texts)) > room
            if incomplete:
                kept = []
                for text in texts:
                    if room > 0:
                        kept.append(text[:room])
                    room -= len(text)
                texts = kept
        else:
            incomplete = target == budget  # the model wanted to go on but hit max_output_tokens
        tokens = sum(map(estimate_tokens, texts))
        latency = plan_latency(config, rng, tokens, self._state.in_flight - 1)
        response_id = f"resp_{rng.hex(24)}"
        items: tuple[_Item, ...]
        if not tools:
            items = (_Item("message", f"msg_{rng.hex(24)}", texts[0]),)
        else:
            items = tuple(
                _Item("function_call", f"fc_{rng.hex(24)}", text, tool.name, f"call_{rng.hex(12)}")
                for tool, text in zip(tools, texts, strict=False)
            )
        return _Reply(response_id, items, tokens, incomplete, fault, latency)

    def _pick_tools(self, request: ResponsesRequest, rng: Dice) -> list[FunctionTool]:
        """The functions the model calls (none: it answers in text or JSON), by chat's rules.

        ``required``: one of the tools, drawn; ``auto``: the same with probability ``tool_call_rate``,
        but never right after a ``function_call_output`` (the model answers it, so an agent loop ends);
        a named function: exactly that one. With ``parallel_tool_calls`` (the default) and several tools,
        a second call to another tool one time in four, as on chat.
        """
        tools, choice = request.tools, request.tool_choice
        if not tools or choice.mode == "none":
            return []
        if choice.mode == "function":
            return [next(tool for tool in tools if tool.name == choice.name)]
        if choice.mode == "auto" and (request.answers_tool or rng.random() >= self._config.tool_call_rate):
            return []
        first = rng.randrange(len(tools))
        picks = [tools[first]]
        if request.echo["parallel_tool_calls"] and len(tools) > 1 and rng.random() < PARALLEL_CALL_RATE:
            picks.append(tools[(first + 1 + rng.randrange(len(tools) - 1)) % len(tools)])
        return picks

    def _words(self, tokens: int, rng: Rng) -> str:
        return self._text.completion(tokens, rng)

    def _json(self, schema: Mapping[str, Any] | None, example: Any, rng: Dice, budget: int) -> str:
        """Compact JSON for a schema (None: any object, ``{"result": "<text>"}`` as chat's JSON mode).

        Longer than the budget, it is drawn again as the most compact value the schema allows. Should a
        generation fail on this request's draws where it succeeded on the parser's, the parser's example
        is used (the schema was checked before any limit was asked, so that is never a client's fault).
        """
        if schema is None:
            return _COMPACT({"result": self._text.completion(1 + rng.randrange(8), rng)})
        try:
            text = _COMPACT(generate(schema, rng, words=self._words))
            if len(text) > CHARS_PER_TOKEN * budget:
                text = _COMPACT(generate(schema, rng, words=self._words, small=True))
        except (ValueError, ArithmeticError, RecursionError):
            text = _COMPACT(example)
        return text

    async def serve(self, exchange: Exchange[ResponsesRequest, _Reply]) -> None:
        if await self.fail(exchange):
            return
        request, reply = exchange.request, exchange.plan
        if request.store:
            self._remember(reply.response_id)
        done = {
            **exchange.detail,
            "status": 200,
            "completion_tokens": reply.output_tokens,
            "total_tokens": request.prompt_tokens + reply.output_tokens,
            "finish_reason": reply.finish_reason,
        }
        created = int(time.time())  # the wall clock: a Unix timestamp by contract
        if not request.stream:
            body = _COMPACT(response_object(request, reply, created, final=True)).encode()
            await self.reply_json(exchange, body, done)
            return
        loop = asyncio.get_running_loop()
        cut = await _stream(exchange, loop, created)
        self.stream_ended(exchange, cut, done)

    def _remember(self, response_id: str) -> None:
        self._stored[response_id] = None
        if len(self._stored) > MAX_STORED_IDS:
            self._stored.popitem(last=False)


# -- the bodies ------------------------------------------------------------------------------------------


def _usage(request: ResponsesRequest, reply: _Reply) -> dict[str, Any]:
    """The spec's ``ResponseUsage``: the details are zero (the mock caches and reasons about nothing)."""
    return {
        "input_tokens": request.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": reply.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": request.prompt_tokens + reply.output_tokens,
    }


def output_item(item: _Item, status: str) -> dict[str, Any]:
    """An output item as the spec's ``OutputMessage`` / ``FunctionToolCall``: ``in_progress`` and empty
    (``output_item.added``), or whole (``output_item.done`` and the response's ``output``)."""
    whole = status != "in_progress"
    if item.kind == "function_call":
        return {
            "id": item.item_id,
            "type": "function_call",
            "status": status,
            "arguments": item.text if whole else "",
            "call_id": item.call_id,
            "name": item.name,
        }
    return {
        "id": item.item_id,
        "type": "message",
        "status": status,
        "content": [_text_part(item.text)] if whole else [],
        "role": "assistant",
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _status(reply: _Reply, index: int) -> str:
    """A finished item's status: the last one is ``incomplete`` when the budget ran out."""
    return "incomplete" if reply.incomplete and index == len(reply.items) - 1 else "completed"


def response_object(request: ResponsesRequest, reply: _Reply, created: int, *, final: bool) -> dict[str, Any]:
    """The spec's ``Response``: as it ends (``final``), or as ``response.created`` shows it (in progress,
    no output, no usage — the spec's ``usage`` is an object, never null, so it is left out)."""
    if final:
        status = "incomplete" if reply.incomplete else "completed"
    else:
        status = "in_progress"
    response = {
        "id": reply.response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "completed_at": int(time.time()) if final else None,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if final and reply.incomplete else None,
        "model": request.model,
        "output": [output_item(item, _status(reply, i)) for i, item in enumerate(reply.items)]
        if final
        else [],
        **request.echo,
    }
    if final:
        response["usage"] = _usage(request, reply)
    return response


# -- the stream ------------------------------------------------------------------------------------------


class _Events:
    """Numbers and frames the SSE events of one stream: ``event: <type>`` and ``data: <json>``."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next = 0

    def frame(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, **fields, "sequence_number": self._next}
        self._next += 1
        return f"event: {kind}\ndata: {_COMPACT(data)}\n\n".encode()


def _pieces(item: _Item) -> list[str]:
    """The deltas of an item: words of a text (as chat streams them), short slices of JSON."""
    text = item.text
    if not text:
        return []
    if item.kind == "function_call" or text.startswith("{"):
        return [text[k : k + _FRAGMENT] for k in range(0, len(text), _FRAGMENT)]
    words = text.split(" ")
    return [words[0], *(" " + w for w in words[1:])]


def _opening(events: _Events, item: _Item, index: int) -> list[bytes]:
    """``output_item.added`` (and a message's ``content_part.added``): an item begins."""
    frames = [
        events.frame("response.output_item.added", output_index=index, item=output_item(item, "in_progress"))
    ]
    if item.kind == "message":
        part = _text_part("")
        frames.append(
            events.frame(
                "response.content_part.added",
                item_id=item.item_id,
                output_index=index,
                content_index=0,
                part=part,
            )
        )
    return frames


def _delta(events: _Events, item: _Item, index: int, piece: str) -> bytes:
    if item.kind == "message":
        return events.frame(
            "response.output_text.delta",
            item_id=item.item_id,
            output_index=index,
            content_index=0,
            delta=piece,
            logprobs=[],
        )
    return events.frame(
        "response.function_call_arguments.delta", item_id=item.item_id, output_index=index, delta=piece
    )


def _closing(events: _Events, item: _Item, index: int, status: str) -> list[bytes]:
    """The ``.done`` events of an item, ending with ``output_item.done``."""
    if item.kind == "message":
        where = {"item_id": item.item_id, "output_index": index, "content_index": 0}
        frames = [
            events.frame("response.output_text.done", **where, text=item.text, logprobs=[]),
            events.frame("response.content_part.done", **where, part=_text_part(item.text)),
        ]
    else:
        frames = [
            events.frame(
                "response.function_call_arguments.done",
                item_id=item.item_id,
                name=item.name,
                output_index=index,
                arguments=item.text,
            )
        ]
    frames.append(
        events.frame("response.output_item.done", output_index=index, item=output_item(item, status))
    )
    return frames


async def _stream(
    exchange: Exchange[ResponsesRequest, _Reply], loop: asyncio.AbstractEventLoop, created: int
) -> int | None:
    """Send the SSE events; return how many deltas were sent if the stream was cut, else None.

    ``response.created`` and ``response.in_progress`` go out at once; the first item opens after the time
    to first token, the items follow one another, and each delta is due when its share of all the output's
    characters has been "generated". Without per-token latency everything after the first token goes in
    one write.
    """
    send, request, reply = exchange.send, exchange.request, exchange.plan
    events = _Events()
    pieces = [_pieces(item) for item in reply.items]
    total = sum(len(item.text) for item in reply.items) or 1
    count = sum(map(len, pieces))
    cut_after = int(reply.fault.cut_fraction * count) if reply.fault.kind == "stream_cut" else None
    await start_stream(send, exchange.headers)
    snapshot = response_object(request, reply, created, final=False)
    opening = events.frame("response.created", response=snapshot)
    await send_body(send, opening + events.frame("response.in_progress", response=snapshot), more=True)
    first_token = exchange.start + reply.latency.ttft
    generation = reply.latency.generation
    await sleep_until(loop, first_token)
    pending: list[bytes] = []
    sent = chars = 0
    for index, item in enumerate(reply.items):
        pending += _opening(events, item, index)
        for piece in pieces[index]:
            if sent == cut_after:
                # Cut: close the body without the remaining deltas or the terminal event.
                await send_body(send, b"".join(pending), more=False)
                return sent
            if generation > 0:
                await send_body(
                    send, b"".join(pending), more=True
                )  # an item opens when its first delta is due
                pending.clear()
                chars += len(piece)
                await sleep_until(loop, first_token + generation * chars / total)
            pending.append(_delta(events, item, index, piece))
            sent += 1
        pending += _closing(events, item, index, _status(reply, index))
    final = response_object(request, reply, created, final=True)
    terminal = "response.incomplete" if reply.incomplete else "response.completed"
    pending.append(events.frame(terminal, response=final))
    await send_body(send, b"".join(pending), more=False)
    return None
