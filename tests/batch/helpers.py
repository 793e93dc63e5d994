"""Helpers the batch tests share: input files, output files, an in-process mock server on virtual time."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from mock_server import MockServerApp, ServerConfig, create_app
from throttle_lab import run

T = TypeVar("T")
CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
FAST = ServerConfig(ttft=0.05, per_token=0.0, jitter=0.0)


def vrun(coro: Coroutine[Any, Any, T]) -> T:
    return run(coro, virtual=True)


def chat_line(
    custom_id: str, content: str = "Summarise this.", max_tokens: int = 20, **body: Any
) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": CHAT,
        "body": {
            "model": "gpt-4o-mini",
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": content}],
            **body,
        },
    }


def write_lines(path: Path, lines: Iterable[dict[str, Any] | str]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for line in lines:
            f.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


def write_input(path: Path, n: int, prefix: str = "doc") -> Path:
    return write_lines(
        path, (chat_line(f"{prefix}-{i}", f"Summarise document number {i}.") for i in range(n))
    )


def read_output(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def ids_of(path: Path) -> Counter[str]:
    return Counter(record["custom_id"] for record in read_output(path))


def app(**overrides: Any) -> MockServerApp:
    return create_app(dataclasses.replace(FAST, **overrides))


def transport(server: MockServerApp) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=server)
