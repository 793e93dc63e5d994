"""Reading a batch input file: the OpenAI Batch API's JSONL, one request a line, checked line by line.

Each line of the input is one request, exactly as OpenAI's ``/v1/batches`` endpoint takes it::

    {"custom_id": "doc-1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": ..., ...}}
    {"custom_id": "doc-2", "method": "POST", "url": "/v1/messages", "body": {...}}   <- Anthropic's dialect

A bad line never stops the others: it becomes an :class:`InputProblem` naming its line number, and the
rest of the file is read on.  What counts as bad:

* not JSON, or JSON that is not an object;
* ``custom_id`` missing, not a string, or empty; ``method`` other than ``POST``; ``url`` not a path
  starting with ``/`` (``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/responses``, ``/v1/messages``);
  ``body`` not an object;
* ``"stream": true`` in the body: a batch line is answered with one JSON body (the Batch API refuses
  streaming too);
* a ``custom_id`` seen on an earlier line: the first one is kept, every later one is reported (the results
  are matched by ``custom_id``, so two requests with one id could never be told apart).

Blank lines are skipped silently (an editor's trailing newline is not a mistake).

>>> import io
>>> batch = parse_requests(io.StringIO(
...     '{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m"}}\\n'
...     'not json\\n'
...     '{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}\\n'))
>>> [r.custom_id for r in batch.requests]
['a']
>>> for problem in batch.problems:
...     print(problem)
line 2: not valid JSON (Expecting value at column 1)
line 3: custom_id 'a' already used on line 1; this line is skipped
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "BatchInput",
    "BatchRequest",
    "Dialect",
    "InputProblem",
    "dialect_of",
    "parse_requests",
    "read_requests",
]

#: Which provider's conventions a line follows: its auth headers, its token budgets, its usage fields.
Dialect = Literal["openai", "anthropic"]


def dialect_of(url: str) -> Dialect:
    """``"anthropic"`` for Anthropic's Messages routes (``/v1/messages``), ``"openai"`` for anything else.

    >>> dialect_of("/v1/messages"), dialect_of("/v1/chat/completions")
    ('anthropic', 'openai')
    """
    path = url.split("?", 1)[0].rstrip("/")
    return "anthropic" if path.endswith("/messages") or "/messages/" in path else "openai"


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One valid input line: what to send, and where it came from (``line``, counting from 1)."""

    custom_id: str
    method: str
    url: str
    body: Mapping[str, Any]
    line: int

    @property
    def dialect(self) -> Dialect:
        return dialect_of(self.url)


@dataclass(frozen=True, slots=True)
class InputProblem:
    """A line that could not be run, and why."""

    line: int
    message: str
    custom_id: str | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class BatchInput:
    """Everything read from an input file: the runnable requests (in file order) and the problems."""

    requests: tuple[BatchRequest, ...]
    problems: tuple[InputProblem, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.requests)


def _check(record: object, line: int) -> BatchRequest | str:
    """The request a parsed line describes, or what is wrong with it."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    custom_id = record.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return "custom_id must be a non-empty string" + ("" if "custom_id" in record else " (it is missing)")
    method = record.get("method", "POST")
    if not isinstance(method, str) or method.upper() != "POST":
        return f"{custom_id!r}: method must be POST, got {method!r}"
    url = record.get("url")
    if not isinstance(url, str) or not url.startswith("/"):
        return f"{custom_id!r}: url must be a path such as /v1/chat/completions, got {url!r}"
    body = record.get("body")
    if not isinstance(body, dict):
        return f"{custom_id!r}: body must be a JSON object, got {type(body).__name__}"
    if body.get("stream") is True:
        return f"{custom_id!r}: body asks for stream: true; a batch line is answered as one JSON body"
    return BatchRequest(custom_id=custom_id, method="POST", url=url, body=body, line=line)


def parse_requests(lines: Iterable[str]) -> BatchInput:
    """Check every line (see the module docstring); never raises for bad content."""
    requests: list[BatchRequest] = []
    problems: list[InputProblem] = []
    first_seen: dict[str, int] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        if any("\udc80" <= ch <= "\udcff" for ch in text):
            # read_requests decodes with surrogateescape: a stray byte is a bad line, not a crash.
            problems.append(InputProblem(number, "not valid UTF-8"))
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(InputProblem(number, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        checked = _check(record, number)
        if isinstance(checked, str):
            custom_id = record.get("custom_id") if isinstance(record, dict) else None
            problems.append(InputProblem(number, checked, custom_id if isinstance(custom_id, str) else None))
            continue
        earlier = first_seen.get(checked.custom_id)
        if earlier is not None:
            problems.append(
                InputProblem(
                    number,
                    f"custom_id {checked.custom_id!r} already used on line {earlier}; this line is skipped",
                    checked.custom_id,
                )
            )
            continue
        first_seen[checked.custom_id] = number
        requests.append(checked)
    return BatchInput(tuple(requests), tuple(problems))


def read_requests(path: str | Path) -> BatchInput:
    """Read and check a batch input file (UTF-8).  A missing or unreadable file raises ``OSError``;
    bytes that are not UTF-8 become a problem on their line, like any other bad line."""
    with Path(path).open(encoding="utf-8", errors="surrogateescape", newline="") as f:
        return parse_requests(f)
