"""Token counts estimated from text, and seeded filler text for completions.

The mock server has no tokenizer (it must stay dependency-free and fast), so it uses the rule of thumb
that English averages about four characters per token, plus a small fixed cost per chat message for the
role and separators — the same shape as OpenAI's published counting recipe::

    tokens(text)    = ceil(len(text) / 4)                 (0 for "")
    prompt_tokens   = 3 + sum over messages of (4 + tokens(content) + tokens(name))

A content given as a list of parts counts each ``text`` part by the formula and every other part (an
image, audio) as a flat 85 tokens. The same formula counts the completion the server generates, so
``usage`` is always consistent with the text you receive.

Anthropic's Messages dialect counts by the same rule of thumb, over its own shapes
(:func:`messages_input_tokens`; ``throttle_lab.client.tokens`` follows the same rule, so a client's
estimate equals the server's count exactly)::

    input_tokens = 3 + system + sum over messages of (4 + content) + sum over tools of tool
    system       = tokens(s) for a string; for a list of blocks, each text block tokens(text), any other 85
    content      = tokens(s) for a string; for a list of blocks, the sum of:
                     text         tokens(text)
                     tool_use     tokens(name) + tokens(compact JSON of input)
                     tool_result  its content: a string → tokens; a list → its blocks by these rules;
                                  absent → 0
                     any other    85 (image, document, ...)
    tool         = tokens(name) + tokens(description or "") + tokens(compact JSON of input_schema)

"Compact JSON" is ``json.dumps(x, separators=(",", ":"), ensure_ascii=False)``. A reply's output tokens
are counted the same way: tokens of its text, and tokens(name) + tokens(compact JSON of input) for each
``tool_use`` block — what ``usage.output_tokens`` reports.

Completions are lorem-ipsum words cut from one long text generated once from the seed; each request picks
a seeded starting word, so the same seed and arrival order give the same replies.
"""

from __future__ import annotations

import bisect
import functools
import json
import random
from collections.abc import Mapping, Sequence
from typing import Any

from .dice import Rng

__all__ = [
    "CHARS_PER_TOKEN",
    "NON_TEXT_PART_TOKENS",
    "PER_MESSAGE_TOKENS",
    "PER_REQUEST_TOKENS",
    "TextSource",
    "compact_json",
    "estimate_tokens",
    "messages_input_tokens",
    "prompt_tokens",
    "text_source",
]

CHARS_PER_TOKEN = 4
PER_MESSAGE_TOKENS = 4
PER_REQUEST_TOKENS = 3
NON_TEXT_PART_TOKENS = 85

_LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore "
    "et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip "
    "ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse cillum fugiat nulla "
    "pariatur excepteur sint occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim "
    "id est laborum integer porta rate limit token bucket window burst quota retry backoff"
)
_WORDS = tuple(_LOREM.split())


def estimate_tokens(text: str) -> int:
    """``ceil(len(text) / 4)``: the server's whole idea of a token."""
    return -(-len(text) // CHARS_PER_TOKEN)


def prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """Estimated prompt tokens of already-validated chat messages (see the module docstring)."""
    total = PER_REQUEST_TOKENS
    for message in messages:
        total += PER_MESSAGE_TOKENS
        name = message.get("name")
        if isinstance(name, str):
            total += estimate_tokens(name)
        content = message.get("content")
        if isinstance(content, str):
            total += estimate_tokens(content)
        elif isinstance(content, list):
            for part in content:
                text = part.get("text") if part.get("type") == "text" else None
                total += estimate_tokens(text) if isinstance(text, str) else NON_TEXT_PART_TOKENS
    return total


compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
"""``json.dumps(x, separators=(",", ":"), ensure_ascii=False)``: the JSON the Anthropic rule counts."""


def _block_tokens(block: Mapping[str, Any]) -> int:
    """One content block of an Anthropic message, by the rule in the module docstring."""
    kind = block.get("type")
    if kind == "text":
        return estimate_tokens(block["text"])
    if kind == "tool_use":
        return estimate_tokens(block["name"]) + estimate_tokens(compact_json(block["input"]))
    if kind == "tool_result":
        return _content_tokens(block.get("content"))
    return NON_TEXT_PART_TOKENS


def _content_tokens(content: object) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return estimate_tokens(content)
    if isinstance(content, list):
        return sum(_block_tokens(block) for block in content)
    return 0


def messages_input_tokens(
    system: str | Sequence[Mapping[str, Any]] | None,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] = (),
) -> int:
    """Input tokens of an already-validated Anthropic Messages request (see the module docstring).

    >>> messages_input_tokens(None, [{"role": "user", "content": "Hello!"}])
    9
    """
    total = PER_REQUEST_TOKENS
    if isinstance(system, str):
        total += estimate_tokens(system)
    elif system is not None:
        total += sum(
            estimate_tokens(block["text"]) if block.get("type") == "text" else NON_TEXT_PART_TOKENS
            for block in system
        )
    for message in messages:
        total += PER_MESSAGE_TOKENS + _content_tokens(message.get("content"))
    for tool in tools:
        total += (
            estimate_tokens(tool["name"])
            + estimate_tokens(tool.get("description") or "")
            + estimate_tokens(compact_json(tool["input_schema"]))
        )
    return total


class TextSource:
    """A long seeded lorem text from which completions are cut, word-aligned.

    Cutting slices out of one precomputed string costs a binary search and a slice per request, which
    keeps the server fast even for long completions.
    """

    __slots__ = ("_ends", "_half", "_starts", "_text")

    def __init__(self, seed: int, min_chars: int) -> None:
        rng = random.Random(f"mock_server corpus {seed}")
        # Enough words that a completion starting anywhere in the first half never runs off the end.
        words: list[str] = []
        length = -1
        while length < 2 * min_chars + 64:
            chunk = rng.choices(_WORDS, k=1024)
            words.extend(chunk)
            length += sum(map(len, chunk)) + len(chunk)
        self._text = " ".join(words)
        self._starts: list[int] = []
        self._ends: list[int] = []
        pos = 0
        for word in words:
            self._starts.append(pos)
            pos += len(word)
            self._ends.append(pos)
            pos += 1
        self._half = bisect.bisect_right(self._starts, len(self._text) // 2)

    def completion(self, target_tokens: int, rng: Rng) -> str:
        """Seeded text of at most ``target_tokens`` estimated tokens, ending with a full stop."""
        max_chars = CHARS_PER_TOKEN * target_tokens - 1  # leave room for the final "."
        first = rng.randrange(self._half)
        start = self._starts[first]
        last = bisect.bisect_right(self._ends, start + max_chars) - 1
        # A first word too long for a tiny target is cut; otherwise we stop at a word boundary.
        end = self._ends[last] if last >= first else start + max_chars
        body = self._text[start:end]
        return body[:1].upper() + body[1:] + "."


@functools.lru_cache(maxsize=16)
def text_source(seed: int, min_chars: int) -> TextSource:
    """A shared :class:`TextSource` (building one takes a few milliseconds, so apps reuse them)."""
    return TextSource(seed, min_chars)
