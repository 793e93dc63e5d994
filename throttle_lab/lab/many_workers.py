"""Helpers for lesson 10, "many workers, one key": a real mock server, worker processes, one merged trace.

    with MockServer(rpm=600, window=1) as mock:
        trace = run_workers(mock, workers=4, requests=15, rpm=600, burst=3)                  # own limiters
        trace = run_workers(mock, workers=4, requests=15, rpm=600, burst=3, redis_url=url)   # one shared

:func:`run_workers` starts the workers (:mod:`throttle_lab.lab.worker`) as separate *processes*, lets
them go at the same instant, collects each one's trace, fetches what the server saw from its ``/events``
route, and merges everything into one :class:`~throttle_lab.Trace` on one clock, starting at 0.

:func:`check_split` grades the lesson's exercise on virtual time (no Redis, no network); :func:`hint` and
:func:`solution` help with it, as in the other lessons (``lesson10.hint()`` once the notebook has done
``from throttle_lab.lab import many_workers as lesson10``).
"""

from __future__ import annotations

import atexit
import math
import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from types import TracebackType

import httpx

from ..core.trace import Trace
from .grading import Guide, Report
from .worker_lab import simulate_workers

__all__ = ["MockServer", "check_split", "hint", "run_workers", "solution"]


_GUIDE = Guide(
    "lesson10",
    [
        "The server counts the key, not the worker: whatever each worker is allowed, the four of them "
        "together must stay within the server's 600 per minute -- and within its bucket of 10 at once.",
        "Two things add up across workers: the rates (4 × RPM_PER_WORKER <= 600) and the bursts "
        "(4 × BURST_PER_WORKER <= 10). A burst counts whole requests, so it is at least 1.",
        "RPM_PER_WORKER = 600 / 4 = 150 and BURST_PER_WORKER = 2 (10 / 4 = 2.5, rounded down to whole "
        "requests, so the bursts leave the bucket some room).",
    ],
    solution="throttle_lab.lab.solutions.lesson10",
)


def hint(level: int | None = None) -> None:
    """Print the next hint for the exercise (or hint number ``level``), one level more concrete each call."""
    _GUIDE.hint(level)


def solution() -> None:
    """Print the reference solution (read it, then close it and write your own)."""
    _GUIDE.solution()


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
    ``server_rpm`` per minute holding ``server_rpm × server_window / 60``.  Passes with no 429s and a
    combined *sustained* rate (the first instant's burst left out) from 95 % to 100 % of the server's: a
    split above the key's limit fails even when a run this short hides it in the server's bucket.
    """
    title = "check_split"
    if rpm_per_worker is None or burst_per_worker is None:
        return Report(
            title, attempted=False, note="set RPM_PER_WORKER and BURST_PER_WORKER, then run me again."
        )
    report = Report(title)
    bucket = server_rpm * server_window / 60.0
    split = {
        "requests": requests,
        "rpm": rpm_per_worker,
        "burst": burst_per_worker,
        "server_rpm": server_rpm,
        "server_window": server_window,
    }
    try:  # the slider lab's model: each worker its own GCRA, the key a token bucket
        everyone = simulate_workers(workers=workers, **split)
    except (TypeError, ValueError) as exc:
        report.add("a valid limiter for each worker", False, str(exc), _invalid_hint(burst_per_worker))
        return report
    sends, limited = everyone.sends, everyone.limited
    total_rpm = workers * rpm_per_worker
    report.add(
        "no 429s",
        limited == 0,
        f"{limited} of {sum(map(len, sends))} refused",
        _refused_hint(rpm_per_worker, burst_per_worker, workers, server_rpm, bucket),
    )
    rate = _sustained_rate(sends)
    in_range = 0.95 * server_rpm <= rate <= server_rpm * (1 + 1e-9)
    if math.isinf(rate):
        detail, hint = "every request went in the first burst", "a burst that big is no limit at all"
    else:
        detail = f"{rate:.0f} of {server_rpm:g} per minute ({rate / server_rpm:.0%})"
        hint = _usage_hint(rpm_per_worker, workers, server_rpm, total_rpm)
    if in_range and limited:  # never a ✓ beside a 429: the key's limit counts what the server accepted
        detail += f", but {limited} refused"
        hint = "the rates add up right, but what the server refuses is not use: fix the 429s above"
    report.add(
        "uses 95-100% of the key's limit while all workers are busy, never more",
        in_range and limited == 0,
        detail,
        hint,
    )
    if not report.passed:
        return report
    alone_rate = _sustained_rate(simulate_workers(workers=1, **split).sends)
    report.note = (
        f"note: with this split a worker on its own gets only {alone_rate:.0f} per minute "
        f"({alone_rate / server_rpm:.0%} of the key) -- a shared limit would give it all {server_rpm:g}."
    )
    return report


def _sustained_rate(sends: list[list[float]]) -> float:
    """Requests per minute the workers keep up once their bursts are spent, added up.

    Each worker's last gap is its steady spacing (its GCRA's interval): the burst at the start -- whole or
    fractional -- is a head start, not a rate, and must not make a split look faster than it is.
    """
    total = 0.0
    for mine in sends:
        if len(mine) < 2:
            continue
        gap = mine[-1] - mine[-2]
        if gap <= 1e-4:  # the last two went (all but) together: the whole run fit in the burst
            return float("inf")
        total += 60.0 / gap
    return total


def _invalid_hint(burst: object) -> str:
    if isinstance(burst, int | float) and not isinstance(burst, bool) and 0 < burst < 1:
        return (
            "a burst is counted in whole requests: below 1 a worker can never send one (dividing the "
            "server's bucket gives 10 / 4 = 2.5, so 2 is the most each may have)"
        )
    return "give each worker a positive number of requests per minute and a burst of at least 1"


def _refused_hint(rpm: float, burst: float, workers: int, server_rpm: float, bucket: float) -> str:
    share = server_rpm / workers
    if rpm >= server_rpm:
        return (
            f"each worker was given the key's whole limit, so {workers} of them send {workers} × {rpm:g} = "
            f"{workers * rpm:g} per minute: the key's limit must be split, {server_rpm:g} / {workers} = "
            f"{share:g} each -- and the burst too"
        )
    parts = []
    if workers * rpm > server_rpm:
        parts.append(
            f"the rates add up to {workers} × {rpm:g} = {workers * rpm:g} per minute, more than the key's "
            f"{server_rpm:g}: at most {server_rpm:g} / {workers} = {share:g} each"
        )
    if workers * burst > bucket:
        parts.append(
            f"bursts add up too: {workers} × {burst:g} = {workers * burst:g} requests at once, but the "
            f"server holds {bucket:g}: at most {int(bucket // workers)} each"
        )
    if not parts:
        parts.append(
            f"the bursts fill the server's bucket exactly ({workers} × {burst:g} = {bucket:g}) while the "
            "rates use all of its refill: nothing is left for timing, and one request comes out a hair "
            f"early -- keep the bursts below it (a whole number: {int(bucket // workers)} each)"
            if workers * burst >= bucket
            else "the rates add up to the key's limit exactly and the bursts almost fill its bucket: "
            "leave a little room"
        )
    return "; ".join(parts)


def _usage_hint(rpm: float, workers: int, server_rpm: float, total_rpm: float) -> str:
    share = server_rpm / workers
    if total_rpm > server_rpm:
        return (
            f"together the workers keep up {workers} × {rpm:g} = {total_rpm:g} per minute, above the key's "
            f"{server_rpm:g}: a short run hides the excess in the server's bucket, a longer one gets 429s "
            f"-- at most {server_rpm:g} / {workers} = {share:g} each"
        )
    if abs(total_rpm * 60.0 - server_rpm) < 1e-6 * server_rpm:
        return (
            f"RPM_PER_WORKER is per *minute*; {rpm:g} looks like a per-second rate: the key allows "
            f"{server_rpm:g} per minute, {share:g} per minute for each of {workers} workers"
        )
    return (
        f"the shares add up to {workers} × {rpm:g} = {total_rpm:g} of {server_rpm:g} per minute, leaving "
        f"{server_rpm - total_rpm:g} unused: split all of it, {server_rpm:g} / {workers} = {share:g} each"
    )
