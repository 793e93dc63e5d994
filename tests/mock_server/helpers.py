"""Helpers the mock server tests share.

In-process tests drive the ASGI app through ``httpx.ASGITransport`` on throttle_lab's virtual-time loop,
so "wait 20 s" costs nothing and every timestamp is exact. Real-server tests start ``python -m mock_server``
on a free loopback port and stop it afterwards.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import strategies as st

from mock_server import MockServerApp, ServerConfig, create_app
from mock_server.config import DEFAULT_MODELS
from mock_server.schema import ROLES
from throttle_lab import run

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
SPEC = Path(__file__).parent / "spec" / "openai-openapi.yaml"  # vendored, with its LICENSE next to it

# Zero latency, nothing limited: tests switch on only what they look at.
INSTANT = ServerConfig(ttft=0.0, per_token=0.0, jitter=0.0)


def vrun(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh virtual-time loop (clock starts at 0.0)."""
    return run(coro, virtual=True)


def instant(**overrides: Any) -> MockServerApp:
    """An app with no latency and the given config overrides."""
    return create_app(dataclasses.replace(INSTANT, **overrides))


def chat(
    content: str = "hi", max_tokens: int | None = 10, model: str = "gpt-4o-mini", **extra: Any
) -> dict[str, Any]:
    """A valid chat-completions body. ``"hi"`` is 3 + 4 + 1 = 8 prompt tokens."""
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    body.update(extra)
    return body


@contextlib.asynccontextmanager
async def client_for(app: MockServerApp) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client wired to ``app`` in-process."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock") as client:
        yield client


async def at(t: float) -> None:
    """Wait until loop time is exactly ``t`` (``call_at`` lands on it; ``sleep`` may be 1 ulp off)."""
    loop = asyncio.get_running_loop()
    if loop.time() >= t:
        return
    future: asyncio.Future[None] = loop.create_future()
    loop.call_at(t, future.set_result, None)
    await future


def sse_events(text: str) -> list[str]:
    """The ``data:`` payloads of an SSE body, checking the framing on the way."""
    assert text.endswith("\n\n"), "every SSE event ends with a blank line"
    payloads = []
    for block in text.split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        payloads.append(block[len("data: ") :])
    return payloads


def chunks_of(text: str) -> list[dict[str, Any]]:
    """Parsed JSON chunks of an SSE body (without the ``[DONE]`` sentinel)."""
    return [json.loads(p) for p in sse_events(text) if p != "[DONE]"]


def sdk_client(app: MockServerApp, *, key: str = "sk-test", retries: int = 0) -> Any:
    """The official ``openai.AsyncOpenAI`` wired to ``app`` in-process (skips the test without the SDK)."""
    openai = pytest.importorskip("openai")
    transport = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    return openai.AsyncOpenAI(
        base_url="http://mock/v1", api_key=key, max_retries=retries, http_client=transport
    )


@functools.cache
def _spec_components() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    if not SPEC.exists():
        pytest.skip(f"the OpenAPI spec is not at {SPEC}")
    with SPEC.open() as f:
        spec = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return {"components": _nullable_as_null(spec["components"])}


def _nullable_as_null(node: Any) -> Any:
    """The spec still says ``nullable: true`` (OpenAPI 3.0) in places: in JSON Schema, ``null`` allowed.

    A validator ignores the unknown keyword, so ``"usage": null`` in a stream chunk would fail a schema
    the spec means to allow. Rewritten here, explicitly, rather than by turning any check off.
    """
    if isinstance(node, list):
        return [_nullable_as_null(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _nullable_as_null(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def _validator(schema_name: str) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    return jsonschema.Draft202012Validator(
        {**_spec_components(), "$ref": f"#/components/schemas/{schema_name}"}
    )


def assert_matches_spec(schema_name: str, instance: Any) -> None:
    """Check ``instance`` against ``components.schemas.<schema_name>`` of OpenAI's OpenAPI spec.

    The spec is OpenAPI 3.1, whose schemas are JSON Schema 2020-12; ``$ref``s resolve inside it.
    """
    errors = sorted(_validator(schema_name).iter_errors(instance), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors[:5])


# -- generated malformed requests ------------------------------------------------------------------

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def malformed_bodies() -> st.SearchStrategy[bytes]:
    """Request bodies that are certainly invalid, built so by construction (not by filtering a parser).

    Random bytes and non-object JSON; objects missing a required field; and a valid request with exactly
    one field replaced by a value no provider would accept.
    """
    bad = {
        "model": json_values.filter(lambda v: not isinstance(v, str))
        | st.text(max_size=30).filter(lambda m: m not in DEFAULT_MODELS),
        "messages": st.one_of(
            json_values.filter(lambda v: not isinstance(v, list)),
            st.just([]),
            st.lists(json_values.filter(lambda v: not isinstance(v, dict)), min_size=1, max_size=3),
            st.lists(
                st.fixed_dictionaries(
                    {
                        "role": json_values.filter(lambda r: not (isinstance(r, str) and r in ROLES)),
                        "content": json_values,
                    }
                ),
                min_size=1,
                max_size=3,
            ),
            st.lists(
                st.fixed_dictionaries(
                    {
                        "role": st.sampled_from(["user", "system"]),
                        "content": json_values.filter(
                            lambda c: c is not None and not isinstance(c, str | list)
                        ),
                    }
                ),
                min_size=1,
                max_size=3,
            ),
        ),
        "max_tokens": st.integers(max_value=0)
        | st.integers(min_value=16_385)
        | json_values.filter(lambda v: v is not None and not _is_int(v)),
        "stream": json_values.filter(lambda v: v is not None and not isinstance(v, bool)),
    }
    valid = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    one_field_wrong = st.sampled_from(sorted(bad)).flatmap(
        lambda key: bad[key].map(lambda value: json.dumps({**valid, key: value}).encode())
    )
    return st.one_of(
        st.binary(max_size=200).filter(lambda b: not b.strip().lstrip(b"\xef\xbb\xbf").startswith(b"{")),
        json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode()),
        st.dictionaries(st.text(max_size=8), json_values, max_size=5)
        .filter(lambda d: "model" not in d or "messages" not in d)
        .map(lambda d: json.dumps(d).encode()),
        one_field_wrong,
    )


# -- real server ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def real_server(*args: str, timeout: float = 15.0) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start ``python -m mock_server ARGS`` on a free loopback port; yield (base_url, process); stop it.

    The server's output goes to a temporary file, not a pipe: a pipe nobody reads fills up and blocks
    the server mid-test.
    """
    port = free_port()
    cmd = [sys.executable, "-m", "mock_server", "--host", "127.0.0.1", "--port", str(port), *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"

        def output() -> str:
            log.seek(0)
            return log.read().decode(errors="replace")

        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"mock_server exited with {proc.returncode}:\n{output()}")
                try:
                    if httpx.get(base + "/health", timeout=1.0).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mock_server did not become healthy in time:\n{output()}")
                time.sleep(0.05)
            yield base, proc
            assert proc.poll() is None, f"mock_server died during the test:\n{output()}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def http_request(host: str, port: int, path: str, body: dict[str, Any]) -> bytes:
    """The bytes of one keep-alive HTTP/1.1 POST with a JSON body."""
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def raw_load(
    host: str, port: int, request: bytes, connections: int, total: int
) -> collections.Counter[int]:
    """Send ``request`` ``total`` times over ``connections`` keep-alive connections; count the statuses.

    A bare asyncio client, a few microseconds per request: httpx's pool is too slow with hundreds of
    connections to load a server (the client, not the server, would be measured).
    """
    statuses: collections.Counter[int] = collections.Counter()

    async def worker(n: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for _ in range(n):
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                start = head.lower().index(b"content-length:") + len(b"content-length:")
                await reader.readexactly(int(head[start : head.index(b"\r\n", start)]))
                statuses[status] += 1
        finally:
            writer.close()

    per_worker, extra = divmod(total, connections)
    await asyncio.gather(*(worker(per_worker + (i < extra)) for i in range(connections)))
    return statuses


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found")
