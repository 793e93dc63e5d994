"""Estimating a request's tokens *before* sending it, the way providers charge at admission.

Providers check their token limits when a request arrives, before the model has written a word, so they
charge an estimate: the input's tokens plus the reply budget (``max_tokens``, the most the reply may use).
A client that wants to stay under the limits must make the same estimate::

    charge = input tokens + reply budget                    Tokens(input=..., output=...)
    input tokens ~ 3 + sum over messages of (4 + ceil(chars / 4))

Each dialect names its parts differently, so :func:`estimate_tokens` reads the request's path:

======================  =====================================================  ============================
path                    input                                                  output (the reply budget)
======================  =====================================================  ============================
``/chat/completions``   the messages                                           ``n`` x ``max_tokens``
``/embeddings``         every input (a string's tokens, a token array's length) 0: there is no reply
``/responses``          ``input`` items and ``instructions``                   ``max_output_tokens``
``/messages``           ``system``, the messages' blocks and the ``tools``     ``max_tokens`` (Anthropic)
======================  =====================================================  ============================

The four-characters-per-token rule is what the mock server uses too, so estimates match it exactly; against
a real provider they are close (use a real tokenizer for exact counts) -- and
:meth:`~throttle_lab.Permit.reconcile` corrects the books once ``usage`` comes back.

>>> estimate_request_tokens({"messages": [{"role": "user", "content": "Hello there!"}], "max_tokens": 50})
60
>>> estimate_tokens({"model": "claude-sonnet-4-6", "max_tokens": 50,
...                  "messages": [{"role": "user", "content": "Hello there!"}]}, path="/v1/messages")
Tokens(input=10, output=50)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.tokens import Tokens

__all__ = [
    "estimate_prompt_tokens",
    "estimate_request_tokens",
    "estimate_text_tokens",
    "estimate_tokens",
    "request_body",
]

CHARS_PER_TOKEN = 4
PER_MESSAGE = 4
PER_REQUEST = 3
NON_TEXT_PART = 85  # an image or audio part, counted flat


def estimate_text_tokens(text: str) -> int:
    """``ceil(len(text) / 4)``."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """Prompt tokens of chat ``messages``; tolerant of odd shapes (it is only an estimate)."""
    total = PER_REQUEST
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        total += PER_MESSAGE
        content = message.get("content")
        if isinstance(content, str):
            total += estimate_text_tokens(content)
        elif isinstance(content, list):
            for part in content:
                if (
                    isinstance(part, Mapping)
                    and part.get("type") == "text"
                    and isinstance(part.get("text"), str)
                ):
                    total += estimate_text_tokens(part["text"])
                else:
                    total += NON_TEXT_PART
        name = message.get("name")
        if isinstance(name, str):
            total += estimate_text_tokens(name)
    return total


def max_tokens_of(body: Mapping[str, Any], default: int) -> int:
    """The reply budget a request asks for (``max_completion_tokens`` or ``max_tokens``), else ``default``."""
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return default


def _whole(value: object, default: int, *, least: int = 0) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= least:
        return value
    return default


def _compact(value: object) -> str:
    """JSON as the mock server measures it: no spaces, key order kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _chat(body: Mapping[str, Any], default_max_tokens: int) -> Tokens:
    messages = body.get("messages")
    prompt = estimate_prompt_tokens(messages) if isinstance(messages, list) else PER_REQUEST
    # n choices may each use the whole budget, so providers reserve it n times.
    choices = _whole(body.get("n"), 1, least=1)
    return Tokens(prompt, choices * max_tokens_of(body, default_max_tokens))


def _embeddings(body: Mapping[str, Any]) -> Tokens:
    def one(item: object) -> int:
        if isinstance(item, str):
            return estimate_text_tokens(item)
        return len(item) if isinstance(item, list) else 0  # a token array counts its tokens

    value = body.get("input")
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return Tokens(len(value), 0)  # one input given as a single token array
    items = value if isinstance(value, list) else [value]
    return Tokens(sum(one(item) for item in items), 0)


def _response_content(content: object) -> int:
    if isinstance(content, str):
        return estimate_text_tokens(content)
    total = 0
    for part in content if isinstance(content, list) else ():
        text = part.get("text", part.get("refusal")) if isinstance(part, Mapping) else None
        total += estimate_text_tokens(text) if isinstance(text, str) else NON_TEXT_PART
    return total


def _responses(body: Mapping[str, Any], default_max_tokens: int) -> Tokens:
    total = PER_REQUEST
    value = body.get("input")
    if isinstance(value, str):
        total += PER_MESSAGE + estimate_text_tokens(value)
    for item in value if isinstance(value, list) else ():
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type", "message")
        if kind == "reasoning":
            continue  # an earlier turn's reasoning is context, not counted
        total += PER_MESSAGE
        if kind == "function_call":
            for key in ("name", "arguments"):
                text = item.get(key)
                total += estimate_text_tokens(text) if isinstance(text, str) else 0
        elif kind == "function_call_output":
            total += _response_content(item.get("output"))
        else:
            total += _response_content(item.get("content"))
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        total += PER_MESSAGE + estimate_text_tokens(instructions)
    return Tokens(total, _whole(body.get("max_output_tokens"), default_max_tokens))


def _block(block: object) -> int:
    """One Anthropic content block (the mock server's rule: text by length, anything else flat)."""
    if not isinstance(block, Mapping):
        return NON_TEXT_PART
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        return estimate_text_tokens(text) if isinstance(text, str) else 0
    if kind == "tool_use":
        name = block.get("name")
        named = estimate_text_tokens(name) if isinstance(name, str) else 0
        return named + estimate_text_tokens(_compact(block.get("input", {})))
    if kind == "tool_result":
        return _blocks(block.get("content"))
    return NON_TEXT_PART  # an image, a document...


def _blocks(content: object) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return estimate_text_tokens(content)
    return sum(_block(block) for block in content) if isinstance(content, list) else 0


def _messages(body: Mapping[str, Any], default_max_tokens: int) -> Tokens:
    total = PER_REQUEST + _blocks(body.get("system"))
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        if isinstance(message, Mapping):
            total += PER_MESSAGE + _blocks(message.get("content"))
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        if isinstance(tool, Mapping):
            for key in ("name", "description"):
                text = tool.get(key)
                total += estimate_text_tokens(text) if isinstance(text, str) else 0
            total += estimate_text_tokens(_compact(tool.get("input_schema", {})))
    return Tokens(total, _whole(body.get("max_tokens"), default_max_tokens))


def estimate_tokens(
    body: Mapping[str, Any], *, path: str | None = None, default_max_tokens: int = 100
) -> Tokens:
    """What a provider charges at admission, as :class:`~throttle_lab.Tokens` (input, reply budget).

    ``path`` (the request URL's path) names the dialect -- see the table above; ``None`` or any other path
    is read as chat completions.  ``default_max_tokens`` is the reply budget when the body names none (set
    it to the server's).  Anthropic's token counting endpoint (``/messages/count_tokens``) is free of
    token charges.
    """
    where = (path or "").rstrip("/")
    if where.endswith("/messages/count_tokens"):
        return Tokens(0, 0)
    if where.endswith("/messages"):
        return _messages(body, default_max_tokens)
    if where.endswith("/responses"):
        return _responses(body, default_max_tokens)
    if where.endswith("/embeddings"):
        return _embeddings(body)
    return _chat(body, default_max_tokens)


def estimate_request_tokens(
    body: Mapping[str, Any], *, path: str | None = None, default_max_tokens: int = 100
) -> int:
    """What a provider charges against one token budget (TPM) at admission: input + reply budget."""
    return int(estimate_tokens(body, path=path, default_max_tokens=default_max_tokens))


def request_body(content: bytes) -> Mapping[str, Any] | None:
    """A request's JSON body as a mapping, or ``None`` if it is not a JSON object."""
    try:
        # json.loads of bytes first guesses their encoding in Python (a BOM, the NUL bytes of UTF-16/32);
        # by that same rule "{" and then a non-NUL byte is UTF-8, decoded here as json.loads would.  The
        # transport parses every request and every reply, so the guess was a visible share of its work.
        if content[:1] == b"{" and content[1:2] != b"\x00":
            body = json.loads(content.decode("utf-8", "surrogatepass"))
        else:
            body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None
