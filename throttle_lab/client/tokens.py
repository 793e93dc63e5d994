"""Estimating a chat request's tokens *before* sending it, the way providers charge TPM at admission.

Providers check tokens-per-minute when a request arrives, before the model has written a word, so they
charge an estimate: the prompt's tokens plus ``max_tokens`` (the most the reply may use).  A client that
wants to stay under TPM must make the same estimate::

    charge = prompt tokens + max_tokens
    prompt tokens ~ 3 + sum over messages of (4 + ceil(chars / 4))

The four-characters-per-token rule is what the mock server uses too, so estimates match it exactly; against
a real provider they are close (use a real tokenizer for exact counts) -- and
:meth:`~throttle_lab.Permit.reconcile` corrects the books once ``usage`` comes back.

>>> estimate_request_tokens({"messages": [{"role": "user", "content": "Hello there!"}], "max_tokens": 50})
60
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["estimate_prompt_tokens", "estimate_request_tokens", "estimate_text_tokens", "request_body"]

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


def estimate_request_tokens(body: Mapping[str, Any], *, default_max_tokens: int = 100) -> int:
    """What a provider charges against TPM at admission: prompt tokens + the reply budget."""
    messages = body.get("messages")
    prompt = estimate_prompt_tokens(messages) if isinstance(messages, list) else PER_REQUEST
    return prompt + max_tokens_of(body, default_max_tokens)


def request_body(content: bytes) -> Mapping[str, Any] | None:
    """A request's JSON body as a mapping, or ``None`` if it is not a JSON object."""
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None
