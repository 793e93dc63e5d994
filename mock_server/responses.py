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
"""

from __future__ import annotations

import json

__all__ = ["DONE", "ChunkEncoder", "completion_body", "usage"]

DONE = b"data: [DONE]\n\n"
_FINGERPRINT = "fp_mock"


_dumps = json.JSONEncoder(separators=(",", ":")).encode  # one encoder, not one per call


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """The ``usage`` object: ``total_tokens`` is always prompt + completion."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion_body(
    completion_id: str,
    created: int,
    model: str,
    content: str,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
) -> bytes:
    """A non-streaming ``chat.completion`` response body.

    Formatted from a template rather than by encoding a dict: only the strings that may need escaping
    go through the JSON encoder, which keeps the busiest path of the server cheap.
    """
    return (
        f'{{"id":{_dumps(completion_id)},"object":"chat.completion","created":{created},'
        f'"model":{_dumps(model)},"choices":[{{"index":0,"message":{{"role":"assistant",'
        f'"content":{_dumps(content)},"refusal":null}},"logprobs":null,"finish_reason":{_dumps(finish_reason)}}}],'
        f'"usage":{{"prompt_tokens":{prompt_tokens},"completion_tokens":{completion_tokens},'
        f'"total_tokens":{prompt_tokens + completion_tokens}}},"system_fingerprint":"{_FINGERPRINT}"}}'
    ).encode()


class ChunkEncoder:
    """Encodes the SSE events of one stream; everything but the delta is formatted once, up front."""

    __slots__ = ("_head", "_tail", "_usage_head")

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        common = (
            f'{{"id":{_dumps(completion_id)},"object":"chat.completion.chunk","created":{created},'
            f'"model":{_dumps(model)},"system_fingerprint":"{_FINGERPRINT}",'
        )
        self._head = "data: " + common + '"choices":[{"index":0,"delta":'
        self._tail = (',"usage":null' if include_usage else "") + "}\n\n"
        self._usage_head = "data: " + common + '"choices":[],"usage":'

    def _choice(self, delta: str, finish_reason: str | None) -> bytes:
        reason = "null" if finish_reason is None else _dumps(finish_reason)
        return f'{self._head}{delta},"logprobs":null,"finish_reason":{reason}}}]{self._tail}'.encode()

    def role(self) -> bytes:
        """The first chunk: the assistant role and empty content."""
        return self._choice('{"role":"assistant","content":"","refusal":null}', None)

    def content(self, piece: str) -> bytes:
        """A chunk carrying one piece of content."""
        return self._choice('{"content":' + _dumps(piece) + "}", None)

    def finish(self, finish_reason: str) -> bytes:
        """The chunk with an empty delta and the finish reason."""
        return self._choice("{}", finish_reason)

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        """The final chunk (``include_usage`` only): no choices, just usage."""
        return f"{self._usage_head}{_dumps(usage(prompt_tokens, completion_tokens))}}}\n\n".encode()
