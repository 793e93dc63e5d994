"""Reading the input: every bad line is reported with its number and never stops the others."""

from __future__ import annotations

import io
import json
from pathlib import Path

from throttle_lab.batch import dialect_of, parse_requests, read_requests

from .helpers import chat_line, write_lines


def test_valid_lines_keep_their_order_and_line_numbers() -> None:
    batch = parse_requests(io.StringIO("".join(json.dumps(chat_line(f"id-{i}")) + "\n" for i in range(3))))
    assert [(r.custom_id, r.line) for r in batch.requests] == [("id-0", 1), ("id-1", 2), ("id-2", 3)]
    assert batch.problems == ()
    assert batch.requests[0].dialect == "openai"


def test_each_kind_of_bad_line_is_named_with_its_line_number(tmp_path: Path) -> None:
    good = chat_line("ok")
    path = write_lines(
        tmp_path / "in.jsonl",
        [
            good,
            "{not json",
            "[1, 2]",
            {**good, "custom_id": ""},
            {k: v for k, v in good.items() if k != "custom_id"},
            {**good, "custom_id": "m", "method": "GET"},
            {**good, "custom_id": "u", "url": "v1/chat/completions"},
            {**good, "custom_id": "b", "body": "hello"},
            {**good, "custom_id": "s", "body": {**good["body"], "stream": True}},
            good,  # a duplicate of line 1
            "",  # a blank line: skipped silently
            chat_line("last"),
        ],
    )
    batch = read_requests(path)
    assert [r.custom_id for r in batch.requests] == ["ok", "last"]
    messages = {p.line: p.message for p in batch.problems}
    assert sorted(messages) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert "not valid JSON" in messages[2]
    assert "expected a JSON object, got list" in messages[3]
    assert "custom_id must be a non-empty string" in messages[4]
    assert "missing" in messages[5]
    assert "method must be POST" in messages[6]
    assert "url must be a path" in messages[7]
    assert "body must be a JSON object" in messages[8]
    assert "stream: true" in messages[9]
    assert "already used on line 1" in messages[10]
    assert str(batch.problems[0]).startswith("line 2: ")


def test_bytes_that_are_not_utf8_are_one_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        json.dumps(chat_line("a")).encode() + b"\n\xff\xfe oops\n" + json.dumps(chat_line("b")).encode()
    )
    batch = read_requests(path)
    assert [r.custom_id for r in batch.requests] == ["a", "b"]  # the last line needs no newline
    assert [(p.line, p.message) for p in batch.problems] == [(2, "not valid UTF-8")]


def test_the_dialect_comes_from_the_url() -> None:
    assert dialect_of("/v1/messages") == "anthropic"
    assert dialect_of("/v1/messages/") == "anthropic"
    assert dialect_of("/v1/chat/completions") == "openai"
    assert dialect_of("/v1/embeddings") == "openai"
    assert dialect_of("/v1/responses") == "openai"
