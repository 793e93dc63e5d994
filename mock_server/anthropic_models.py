"""``GET /v1/models`` in Anthropic's shape, for a request that carries an ``anthropic-version`` header.

One path, two dialects: the OpenAI SDK sends no ``anthropic-version`` header, the Anthropic SDK always
does, so the header decides the shape. Anthropic's list is paginated by id::

    {"data": [{"type": "model", "id": "claude-sonnet-4-6", "display_name": "Claude Sonnet 4.6",
               "created_at": "2023-11-14T22:13:20Z"}, ...],
     "has_more": false, "first_id": "claude-sonnet-4-6", "last_id": "..."}

``limit`` (1–1000, default 20), ``after_id`` and ``before_id`` page through it as Anthropic's do (the SDK's
auto-pagination follows ``last_id`` while ``has_more``). The list holds every id the server serves
(``ServerConfig.models``), whatever its dialect: one account, one list. ``display_name`` is made up from
the id (the mock's own invention), ``created_at`` is one fixed time (models do not change between runs).
"""

from __future__ import annotations

import re
import time
import urllib.parse
from typing import Any

from .anthropic_errors import AnthropicError

__all__ = ["display_name", "model_list", "model_object"]

_CREATED_AT = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_700_000_000))  # as OpenAI's "created"
_DATE_SUFFIX = re.compile(r"-\d{8}$")


def display_name(model: str) -> str:
    """``claude-sonnet-4-6`` → ``Claude Sonnet 4.6`` (a dated id drops its date); other ids stay as they are.

    >>> display_name("claude-haiku-4-5-20251001"), display_name("claude-mythos-preview")
    ('Claude Haiku 4.5', 'Claude Mythos Preview')
    """
    if not model.startswith("claude-"):
        return model
    words = _DATE_SUFFIX.sub("", model).split("-")
    names = [w.capitalize() for w in words if not w.isdigit()]
    version = ".".join(w for w in words if w.isdigit())
    return " ".join(names + ([version] if version else []))


def model_object(model: str) -> dict[str, Any]:
    """One model as Anthropic describes it."""
    return {"type": "model", "id": model, "display_name": display_name(model), "created_at": _CREATED_AT}


def _limit(values: list[str]) -> int:
    text = values[-1] if values else "20"
    if not text.isdigit() or not 1 <= int(text[:5]) <= 1000:
        raise AnthropicError("limit: Input should be an integer between 1 and 1000")
    return int(text)


def model_list(models: tuple[str, ...], query_string: bytes) -> dict[str, Any]:
    """The page of ``models`` the query asks for; :class:`AnthropicError` 400 for a bad query."""
    query = urllib.parse.parse_qs(query_string.decode("latin-1"))
    limit = _limit(query.get("limit", []))
    start, end = 0, len(models)
    after, before = query.get("after_id", [None])[-1], query.get("before_id", [None])[-1]
    if after is not None:
        start = models.index(after) + 1 if after in models else len(models)
    if before is not None:
        end = models.index(before) if before in models else 0
        start = max(start, end - limit)
    page = list(models[start:end][:limit])
    has_more = start + len(page) < end if before is None else start > 0
    return {
        "data": [model_object(m) for m in page],
        "has_more": has_more,
        "first_id": page[0] if page else None,
        "last_id": page[-1] if page else None,
    }
