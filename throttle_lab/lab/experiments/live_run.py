"""``live``: the same experiment in real time, against the real HTTP mock server on 127.0.0.1.

What virtual time cannot show -- a network, two processes, wake-ups that take time -- this does::

    this process                                               a child process
    Workload ──> Design.build() ──> ThrottledTransport ──TCP──> python -m mock_server --port N ...
                       client events ─┐                            server events (its own clock) ─┐
                                      │                            GET /events at the end <───────┘
                                      └──> Trace.merge(client, server shifted onto the client's clock)

It takes as long as the traffic does, so keep workloads small.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx

from ...core.events import Event, observe, record
from ...core.runtime import run
from ...core.trace import Trace
from ._drive import describe, drive, resolve, server_config
from .designs import Design
from .workload import Workload

if TYPE_CHECKING:
    from mock_server import ServerConfig

__all__ = ["live"]


def live(
    design: Design | str = "throttler",
    workload: Workload | None = None,
    server: ServerConfig | Mapping[str, Any] | None = None,
    *,
    progress: bool | Callable[[int, int], None] = True,
    timeout: float = 120.0,
    **limits: Any,
) -> Trace:
    """Run an experiment in **real time** against the real HTTP mock server, started for you on 127.0.0.1.

    Same arguments and same kind of trace as :func:`simulate`; the server's events are fetched from its
    ``/events`` route at the end.  ``progress=True`` prints a line as requests finish (or pass a callback
    ``f(done, total)``).  Keep workloads small: this takes as long as the traffic does.

    Over a real network the server sees requests a little later and less evenly spaced than the client
    sent them, so a client configured to *exactly* the server's limits can meet an occasional 429 here
    that virtual time never shows.  Keep some headroom (e.g. ``rpm=0.9 * server_rpm``).
    """
    workload = workload if workload is not None else Workload()
    config = server_config(server)
    chosen, client = resolve(design, config, limits)
    port = _free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        _server_argv(config, port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base_url, process)
        report = progress if callable(progress) else (_print_progress if progress else None)
        total = workload.requests
        finished = 0

        def on_event(event: Event) -> None:
            nonlocal finished
            if (
                event.kind in ("done", "failed", "rejected")
                and event.source == "client"
                and report is not None
            ):
                finished += 1
                report(finished, total)

        async def main() -> list[Mapping[str, Any]]:
            transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=1000))
            await asyncio.wait_for(
                drive(chosen, workload, transport, base_url, config.default_max_tokens), timeout
            )
            async with httpx.AsyncClient(base_url=base_url) as client:
                response = await client.get("/events")
                response.raise_for_status()
                records: list[Mapping[str, Any]] = response.json()["events"]
                return records

        with record() as client_trace, observe(on_event):
            server_records = run(main(), virtual=False)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a stuck server
            process.kill()
    # Server and client read different clocks (two processes); align the server's to the client's by the
    # first request, which both saw within a millisecond of each other.
    server_trace = Trace.from_records(server_records)
    offset = _clock_offset(client_trace, server_trace)
    shifted = Trace(replace(event, t=event.t + offset) for event in server_trace)
    trace = Trace.merge(client_trace, shifted)
    trace.meta.update(describe(chosen, workload, config, "live", client))
    return trace


def _free_port() -> int:
    # Bind port 0 and let the OS choose; closed again at once, so the server can take it (a small race
    # with other processes, fine on a test machine).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_argv(config: ServerConfig, port: int) -> list[str]:
    """The ``python -m mock_server`` command line that serves ``config`` on ``port``."""

    def limit(value: int | None) -> str:
        return "none" if value is None else str(value)

    argv = [sys.executable, "-m", "mock_server", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--rpm", limit(config.rpm), "--tpm", limit(config.tpm), "--window", repr(config.window)]
    argv += ["--max-concurrent", limit(config.max_concurrent), "--seed", str(config.seed)]
    argv += [
        "--ttft",
        repr(config.ttft),
        "--per-token",
        repr(config.per_token),
        "--jitter",
        repr(config.jitter),
    ]
    argv += ["--token-charge", config.token_charge, "--default-max-tokens", str(config.default_max_tokens)]
    argv += ["--count-rejected" if config.count_rejected else "--no-count-rejected"]
    argv += ["--per-key" if config.per_key else "--no-per-key"]
    for at, rpm, tpm in config.limit_schedule:
        argv += ["--schedule", f"{at!r}:{limit(rpm)}:{limit(tpm)}"]
    return argv


def _clock_offset(client: Trace, server: Trace) -> float:
    sent = {e.request: e.t for e in client.of_kind("sent")}
    for event in server.of_kind("arrived"):
        if event.request in sent:
            return sent[event.request] - event.t
    return 0.0


def _wait_until_healthy(base_url: str, process: subprocess.Popen[bytes], deadline: float = 20.0) -> None:
    # Real time on purpose: this waits for another process to start listening.
    give_up = time.monotonic() + deadline
    while time.monotonic() < give_up:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"the mock server exited before it was ready:\n{err}")
        try:
            if httpx.get(f"{base_url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the mock server at {base_url} did not become healthy within {deadline:g} s")


def _print_progress(done: int, total: int) -> None:
    step = max(1, total // 10)
    if done == total or done % step == 0:
        print(f"live: {done}/{total} requests finished", flush=True)
