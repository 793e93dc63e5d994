"""Helpers for lesson 10, "many workers, one key": a real mock server, worker processes, one merged trace.

    with MockServer(rpm=600, window=1) as mock:
        trace = run_workers(mock, workers=4, requests=15, rpm=600, burst=3)                  # own limiters
        trace = run_workers(mock, workers=4, requests=15, rpm=600, burst=3, redis_url=url)   # one shared

:func:`run_workers` starts the workers (:mod:`throttle_lab.lab.worker`) as separate *processes*, lets
them go at the same instant, collects each one's trace, fetches what the server saw from its ``/events``
route, and merges everything into one :class:`~throttle_lab.Trace` on one clock, starting at 0.

:func:`check_split` grades the lesson's exercise on virtual time (no Redis, no network).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from types import TracebackType

import httpx

from ..core.limiters.gcra import GCRA
from ..core.limiters.token_bucket import TokenBucket
from ..core.runtime import run
from ..core.trace import Trace
from .grading import Report

__all__ = ["MockServer", "check_split", "run_workers"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MockServer:
    """``python -m mock_server`` on a free 127.0.0.1 port: ``rpm`` requests per minute over ``window`` s.

    Latency is small and fixed (``ttft`` seconds, no jitter) so the lesson's picture is about the limit.
    """

    def __init__(self, rpm: int = 600, window: float = 1.0, *, ttft: float = 0.05, seed: int = 0) -> None:
        self.rpm = rpm
        self.window = window
        self.ttft = ttft
        self.seed = seed
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the mock server has not been started yet")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MockServer:
        self.port = _free_port()
        argv = [
            sys.executable, "-m", "mock_server", "--host", "127.0.0.1", "--port", str(self.port),
            "--rpm", str(self.rpm), "--window", str(self.window), "--ttft", str(self.ttft),
            "--per-token", "0", "--jitter", "0", "--seed", str(self.seed), "--max-events", "100000",
        ]  # fmt: skip
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        atexit.register(self.stop)  # a notebook kernel that dies must not leave a server behind
        deadline = time.monotonic() + 20.0  # real time on purpose: waiting for another process
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                raise RuntimeError(f"the mock server exited before it was ready:\n{err}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("the mock server did not become healthy within 20 s")

    def events(self, since: int = 0) -> tuple[Trace, int]:
        """What the server saw since record ``since`` (as a trace on its own clock), and the next index."""
        response = httpx.get(f"{self.url}/events", params={"since": since}, timeout=10.0)
        response.raise_for_status()
        payload = response.json()
        return Trace.from_records(payload["events"]), int(payload["next"])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a stuck server
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def run_workers(
    mock: MockServer,
    *,
    workers: int = 4,
    requests: int = 15,
    rpm: float = 600,
    burst: float = 3,
    redis_url: str | None = None,
    key: str = "lesson-10",
    timeout: float = 60.0,
) -> Trace:
    """Run ``workers`` worker processes against ``mock`` at the same instant; return one merged trace.

    Each worker sends ``requests`` requests at once through a GCRA of ``rpm`` per minute and ``burst``: its
    own (``redis_url=None``) or one shared by all through Redis under ``key``.  Events from worker *i*
    have ``source`` ``"w<i>"`` (the client) or ``"w<i>.limiter"``; the server's have ``"server"``.  Times
    start at 0 when the workers were told to go.
    """
    _, since = mock.events()
    argv = [sys.executable, "-m", "throttle_lab.lab.worker", "--base-url", mock.url]
    argv += ["--requests", str(requests), "--rpm", str(rpm), "--burst", str(burst), "--key", key]
    if redis_url is not None:
        argv += ["--redis", redis_url]
    procs = [
        subprocess.Popen(
            [*argv, "--name", f"w{i}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(1, workers + 1)
    ]
    try:
        for proc in procs:  # wait until every worker has imported everything and is ready to go
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "ready":
                err = proc.stderr.read() if proc.stderr else ""
                raise RuntimeError(f"a worker failed to start: {line!r}\n{err}")
        # The workers' event loops read this same monotonic clock (one machine): their traces start here.
        go = time.monotonic()
        for proc in procs:  # ... and go, all at once
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=timeout) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    traces = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        if proc.returncode != 0:
            raise RuntimeError(f"a worker failed (exit {proc.returncode}):\n{err}")
        traces.append(Trace.from_json(out.strip().splitlines()[-1]))
    clients = Trace.merge(*traces)
    server, _ = mock.events(since)
    # The workers' loops and the server's read this machine's monotonic clock, like `go`: no alignment
    # needed.  Should the server's clock count from elsewhere (every arrival before its send, or seconds
    # after it), align it so that the quickest request took no time.
    sent = {e.request: e.t for e in clients.of_kind("sent")}
    lags = [e.t - sent[e.request] for e in server.of_kind("arrived") if e.request in sent]
    offset = -min(lags) if lags and not 0 <= min(lags) < 5.0 else 0.0
    merged = Trace.merge(
        (replace(e, t=e.t - go) for e in clients), (replace(e, t=e.t + offset - go) for e in server)
    )
    merged.meta.update(
        {
            "design": f"{workers} workers, "
            + ("one shared limit (Redis)" if redis_url else "a limiter each"),
            "server": {"rpm": mock.rpm, "window": mock.window},
            "workload": {"requests": workers * requests, "arrival": "burst"},
        }
    )
    return merged


def check_split(
    rpm_per_worker: float | None,
    burst_per_worker: float | None,
    *,
    workers: int = 4,
    server_rpm: float = 600,
    server_window: float = 1.0,
    requests: int = 30,
) -> Report:
    """Grade a *fixed split* of the key's limit: each worker keeps its own in-process GCRA.

    Runs on virtual time: ``workers`` workers each send ``requests`` requests as fast as their own
    ``GCRA(per_minute=rpm_per_worker, burst=burst_per_worker)`` lets them; the server is a token bucket of
    ``server_rpm`` per minute holding ``server_rpm × server_window / 60``.  Passes with no 429s and at
    least 95 % of the server's rate used while everyone is busy.
    """
    title = "check_split"
    if rpm_per_worker is None or burst_per_worker is None:
        return Report(
            title, attempted=False, note="set RPM_PER_WORKER and BURST_PER_WORKER, then run me again."
        )
    report = Report(title)
    try:
        limiters = [GCRA(per_minute=rpm_per_worker, burst=burst_per_worker) for _ in range(workers)]
    except ValueError as exc:
        report.add("a valid limiter for each worker", False, str(exc), "rates and bursts must be positive")
        return report

    async def main(busy: int) -> tuple[list[float], int]:
        server = TokenBucket(per_minute=server_rpm, capacity=server_rpm * server_window / 60.0)
        loop = asyncio.get_running_loop()
        sends: list[float] = []
        limited = 0

        async def worker(limiter: GCRA) -> None:
            nonlocal limited
            for _ in range(requests):
                await limiter.acquire()
                sends.append(loop.time())
                if not server.try_acquire():
                    limited += 1

        await asyncio.gather(*(worker(limiter) for limiter in limiters[:busy]))
        return sends, limited

    sends, limited = run(main(workers))
    report.add(
        "no 429s", limited == 0, f"{limited} of {len(sends)} refused", _split_hint(workers, server_rpm)
    )
    rate = (len(sends) - 1) / (max(sends) - min(sends)) * 60.0 if max(sends) > min(sends) else float("inf")
    report.add(
        "uses at least 95% of the key's limit while all workers are busy",
        rate >= 0.95 * server_rpm,
        f"{min(rate, 10 * server_rpm):.0f} of {server_rpm:g} per minute",
        "the workers' rates should add up to the server's limit",
    )
    alone, _ = run(main(1))
    alone_rate = (len(alone) - 1) / (max(alone) - min(alone)) * 60.0 if max(alone) > min(alone) else 0.0
    report.note = (
        f"note: with this split a worker on its own gets only {alone_rate:.0f} per minute "
        f"({alone_rate / server_rpm:.0%} of the key) -- a shared limit would give it all {server_rpm:g}."
    )
    return report


def _split_hint(workers: int, server_rpm: float) -> str:
    return (
        f"the {workers} workers' rates add up, and so do their bursts: they must stay within the server's "
        f"{server_rpm:g} per minute and its bucket"
    )
