"""The bytes of a successful reply: a ``chat.completion`` object, or a stream of SSE chunks.

A stream is a sequence of server-sent events, each ``data: <json>`` followed by a blank line::

    data: {"id": "chatcmpl-1", "object": "chat.completion.chunk", ..., "choices": [{"delta": {"role": ...}}]}
    data: {... "choices": [{"delta": {"content": "Lorem"}, ...}]}
    data: {... "choices": [{"delta": {"content": " ipsum."}, ...}]}
    data: {... "choices": [{"delta": {}, "finish_reason": "stop"}]}
    data: {... "choices": [], "usage": {"prompt_tokens": 12, ...}}     (only with include_usage)
    data: [DONE]

Every chunk carries the same ``id``. The usage chunk comes last and has no choices; with
``include_usage`` every earlier chunk says ``"usage": null``, as OpenAI's do.

A reply that calls tools has ``content: null`` and ``tool_calls`` instead; streamed, its first chunk
announces the first call (and the role), later chunks carry fragments of the arguments' JSON text, each
further call is announced by a chunk of its own, and the finish chunk says ``tool_calls``::

    data: {... "delta": {"role": "assistant", "content": null, "tool_calls": [{"index": 0,
           "id": "call_…", "type": "function", "function": {"name": "get_weather", "arguments": ""}}],
           "refusal": null}, "finish_reason": null}
    data: {... "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}, ...}
    data: {... "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}, ...}
    data: {... "delta": {}, "finish_reason": "tool_calls"}

(the SDK's stream helpers and langchain accumulate exactly these by ``index``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

__all__ = ["DONE", "ChunkEncoder", "ToolCall", "completion_body", "usage"]

DONE = b"data: [DONE]\n\n"
_FINGERPRINT = "fp_mock"


_dumps = json.JSONEncoder(separators=(",", ":")).encode  # one encoder, not one per call


_USAGE_DETAILS = (
    '"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},'
    '"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
    '"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}'
)


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The ``usage`` object (the spec's ``CompletionUsage``): ``total_tokens`` is always prompt + completion.

    The details are all zero: the mock caches nothing, reasons about nothing and hears no audio.
    """
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class ToolCall(NamedTuple):
    """One function call of a reply (the spec's ``ChatCompletionMessageToolCall``)."""

    id: str
    """``call_…``"""
    name: str
    arguments: str
    """The arguments as JSON text (what the model "wrote"; cut short when the reply hit ``max_tokens``)."""

    def json(self) -> str:
        """The call as the JSON object a ``message.tool_calls`` array holds."""
        return (
            f'{{"id":{_dumps(self.id)},"type":"function","function":{{"name":{_dumps(self.name)},'
            f'"arguments":{_dumps(self.arguments)}}}}}'
        )


def completion_body(
    completion_id: str,
    created: int,
    model: str,
    choices: Sequence[tuple[str | None, str]],
    prompt_tokens: int,
    completion_tokens: int,
    tool_calls: Sequence[Sequence[ToolCall]] | None = None,
) -> bytes:
    """A non-streaming ``chat.completion`` body; ``choices`` are ``(content, finish_reason)`` in order.

    ``tool_calls`` (one sequence per choice, when given) adds a ``tool_calls`` array to each choice that
    has calls; such a choice's content is ``None`` (``"content": null``).

    Formatted from a template rather than by encoding a dict: only the strings that may need escaping
    go through the JSON encoder, which keeps the busiest path of the server cheap.
    """

    def calls(index: int) -> str:
        if not tool_calls or not tool_calls[index]:
            return ""
        return ',"tool_calls":[' + ",".join(call.json() for call in tool_calls[index]) + "]"

    parts = ",".join(
        f'{{"index":{index},"message":{{"role":"assistant","content":{_dumps(content)}{calls(index)},'
        f'"refusal":null,"annotations":[]}},"logprobs":null,"finish_reason":{_dumps(finish_reason)}}}'
        for index, (content, finish_reason) in enumerate(choices)
    )
    return (
        f'{{"id":{_dumps(completion_id)},"object":"chat.completion","created":{created},'
        f'"model":{_dumps(model)},"choices":[{parts}],'
        f'"usage":{{"prompt_tokens":{prompt_tokens},"completion_tokens":{completion_tokens},'
        f'"total_tokens":{prompt_tokens + completion_tokens},{_USAGE_DETAILS}}},'
        f'"service_tier":"default","system_fingerprint":"{_FINGERPRINT}"}}'
    ).encode()


class ChunkEncoder:
    """Encodes the SSE events of one stream; everything but the delta is formatted once, up front.

    With ``n > 1`` every chunk carries one choice, named by its ``index`` (as OpenAI streams them).
    """

    __slots__ = ("_head", "_tail", "_usage_head")

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        common = (
            f'{{"id":{_dumps(completion_id)},"object":"chat.completion.chunk","created":{created},'
            f'"model":{_dumps(model)},"service_tier":"default","system_fingerprint":"{_FINGERPRINT}",'
        )
        self._head = "data: " + common + '"choices":[{"index":'
        self._tail = (',"usage":null' if include_usage else "") + "}\n\n"
        self._usage_head = "data: " + common + '"choices":[],"usage":'

    def _choice(self, index: int, delta: str, finish_reason: str | None) -> bytes:
        reason = "null" if finish_reason is None else _dumps(finish_reason)
        tail = f'"logprobs":null,"finish_reason":{reason}}}]{self._tail}'
        return f'{self._head}{index},"delta":{delta},{tail}'.encode()

    def role(self, index: int = 0) -> bytes:
        """The first chunk of a choice: the assistant role and empty content."""
        return self._choice(index, '{"role":"assistant","content":"","refusal":null}', None)

    def content(self, piece: str, index: int = 0) -> bytes:
        """A chunk carrying one piece of a choice's content."""
        return self._choice(index, '{"content":' + _dumps(piece) + "}", None)

    def delta(self, delta: str, index: int = 0) -> bytes:
        """A chunk carrying ``delta``, a JSON object text (see :meth:`tool_call_start` and friends)."""
        return self._choice(index, delta, None)

    @staticmethod
    def content_delta(piece: str) -> str:
        """The delta of a content piece (what :meth:`content` sends)."""
        return '{"content":' + _dumps(piece) + "}"

    @staticmethod
    def tool_call_start(position: int, call: ToolCall, *, first: bool) -> str:
        """The delta announcing call number ``position`` of a choice: its id, type, name and ``""`` arguments.

        The first call's delta is also the choice's first chunk, so it carries the role (and
        ``content: null``), as OpenAI's does.
        """
        head = (
            f'{{"index":{position},"id":{_dumps(call.id)},"type":"function","function":'
            f'{{"name":{_dumps(call.name)},"arguments":""}}}}'
        )
        if first:
            return f'{{"role":"assistant","content":null,"tool_calls":[{head}],"refusal":null}}'
        return f'{{"tool_calls":[{head}]}}'

    @staticmethod
    def tool_call_arguments(position: int, fragment: str) -> str:
        """The delta carrying the next ``fragment`` of call ``position``'s arguments."""
        return f'{{"tool_calls":[{{"index":{position},"function":{{"arguments":{_dumps(fragment)}}}}}]}}'

    def finish(self, finish_reason: str, index: int = 0) -> bytes:
        """The chunk with an empty delta and the choice's finish reason."""
        return self._choice(index, "{}", finish_reason)

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        """The final chunk (``include_usage`` only): no choices, just usage."""
        return f"{self._usage_head}{_dumps(usage(prompt_tokens, completion_tokens))}}}\n\n".encode()
