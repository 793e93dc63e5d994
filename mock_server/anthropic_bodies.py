"""The bytes of a successful Anthropic reply: a ``message`` object, or its stream of typed SSE events.

A whole reply (``stream`` off)::

    {"id": "msg_…", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
     "content": [{"type": "text", "text": "Lorem ipsum."}],
     "stop_reason": "end_turn", "stop_sequence": null,
     "usage": {"input_tokens": 12, "output_tokens": 3,
               "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}

A stream is a sequence of events, each ``event: <type>`` then ``data: <json>`` and a blank line (unlike
OpenAI's chat stream there is no ``[DONE]``: ``message_stop`` ends it)::

    message_start        the message with empty content and usage.input_tokens (output_tokens 0)
    for each content block (index 0, 1, ...):
        content_block_start   {"type": "text", "text": ""} or {"type": "tool_use", "id", "name", "input": {}}
        ping                  (once, after the first block opens, as Anthropic sends it)
        content_block_delta   {"type": "text_delta", "text": …} or {"type": "input_json_delta",
                              "partial_json": …} (pieces of the input's compact JSON)
        content_block_stop
    message_delta        {"delta": {"stop_reason", "stop_sequence"}, "usage": {"output_tokens": N}}
    message_stop

The SDK's stream helpers concatenate the deltas of each block (parsing the tool input's JSON at the end),
so ``get_final_message()`` equals the non-streamed body. The mock caches nothing, so the cache fields
of ``usage`` are always 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .tokens import compact_json

__all__ = ["Block", "event", "message_object", "usage"]


@dataclass(frozen=True, slots=True)
class Block:
    """One content block of a reply: text, or a tool call."""

    kind: Literal["text", "tool_use"]
    text: str
    """The text, or the tool input's compact JSON text (cut short when ``max_tokens`` ran out)."""
    tool_id: str | None = None
    """``toolu_…`` (tool calls only)."""
    name: str | None = None
    input: Any = None
    """The tool input as an object (``{}`` when the JSON was cut: it is not valid then)."""

    def json(self) -> dict[str, Any]:
        """The block as the ``content`` array of a finished message holds it."""
        if self.kind == "text":
            return {"type": "text", "text": self.text}
        return {"type": "tool_use", "id": self.tool_id, "name": self.name, "input": self.input}

    def opening(self) -> dict[str, Any]:
        """The block as ``content_block_start`` announces it: empty."""
        if self.kind == "text":
            return {"type": "text", "text": ""}
        return {"type": "tool_use", "id": self.tool_id, "name": self.name, "input": {}}

    def delta(self, piece: str) -> dict[str, Any]:
        """The ``delta`` of a ``content_block_delta`` carrying ``piece``."""
        if self.kind == "text":
            return {"type": "text_delta", "text": piece}
        return {"type": "input_json_delta", "partial_json": piece}


def usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    """Anthropic's ``usage`` object."""
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def message_object(
    message_id: str,
    model: str,
    blocks: tuple[Block, ...],
    stop_reason: str | None,
    stop_sequence: str | None,
    input_tokens: int,
    output_tokens: int,
) -> dict[str, Any]:
    """The ``message`` object: whole (the JSON reply), or as ``message_start`` shows it (no blocks yet)."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [block.json() for block in blocks],
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage(input_tokens, output_tokens),
    }


def event(kind: str, **fields: Any) -> bytes:
    """One SSE event: ``event: <kind>`` and ``data: {"type": <kind>, ...}``."""
    return f"event: {kind}\ndata: {compact_json({'type': kind, **fields})}\n\n".encode()
