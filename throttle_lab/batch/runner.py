"""run_batch: send a whole JSONL batch under the provider's limits, resumably, with progress.

::

    IN.jsonl ──read + check──> requests ──skip ids already in OUT──> pending
                                                                       │ one task each, FIFO through
                                                                       ▼
              first request of a dialect alone ──> its headers ──> Throttler(rpm, tpm | itpm+otpm,
                                                                  max_concurrent, burst_seconds)
                                                                       │
              ThrottledTransport: wait for the throttler · send · 429? pause everyone, back off, retry ·
              reconcile tokens with usage                              │
                                                                       ▼
              final answer ──> one line appended to OUT, flushed ──> progress snapshot every ~1 s

Stopping (``stop`` set -- the command line sets it on Ctrl-C): nothing new is admitted (requests still
waiting for the throttler and retries not yet sent are dropped, unwritten), requests in flight get
``grace`` seconds to finish and be written, the rest is cancelled.  Nothing dropped is lost: it has no
line, so the next run with the same output file sends it.  See :mod:`throttle_lab.batch.outcomes` for
which answers are written as final.

All time is the running loop's (``loop.time()``): the same runner runs against a real server in real
time and against the in-process mock server on virtual time (:func:`~throttle_lab.batch.simulate_batch`).
Only the network (httpx) and the output file are real I/O; the file is written inline (see
:mod:`throttle_lab.batch.results`).

>>> import asyncio, json, tempfile, pathlib, httpx
>>> from mock_server import ServerConfig, create_app
>>> from throttle_lab import run
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> lines = [{"custom_id": f"doc-{i}", "method": "POST", "url": "/v1/chat/completions",
...           "body": {"model": "gpt-4o-mini", "max_tokens": 20,
...                    "messages": [{"role": "user", "content": f"Summarise document {i}."}]}}
...          for i in range(30)]
>>> _ = (folder / "in.jsonl").write_text("".join(json.dumps(line) + "\\n" for line in lines))
>>> async def main():
...     app = create_app(ServerConfig(rpm=600, tpm=60_000, window=1))
...     return await run_batch(folder / "in.jsonl", folder / "out.jsonl", base_url="http://mock",
...                            transport=httpx.ASGITransport(app=app), progress=False)
>>> summary = run(main(), virtual=True)
>>> summary.line()
'batch: 30 succeeded, 0 failed of 30; 0 429s; 2.8 s'
>>> summary.limits["openai"]
BatchLimits(rpm=600.0, tpm=60000.0, max_concurrent=64, burst_seconds=1.0)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import math
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from ..client.backoff import FullJitter
from ..client.retry import RetryPolicy
from ..client.tokens import estimate_tokens
from ..client.transport import ThrottledTransport
from ..core.events import Event, Kind, observe
from ..core.throttler import Permit, Throttler
from ..core.tokens import Tokens
from .jsonl import BatchInput, BatchRequest, Dialect, read_requests
from .limits import BatchLimits, limits_from_headers
from .outcomes import Outcome, classify
from .progress import ProgressListener, ProgressSnapshot, TqdmProgress
from .results import ResultsFile, error_line, result_line
from .summary import BatchSummary

__all__ = ["ANTHROPIC_VERSION", "DEFAULT_MAX_CONCURRENT", "endpoint", "run_batch"]

ANTHROPIC_VERSION = "2023-06-01"
#: In flight at once when nobody said: the httpx pool is sized to match, so a request the throttler let
#: go never waits for a connection (a wait there would age its booked rate, the article's bug).
DEFAULT_MAX_CONCURRENT = 64
_RATE_WINDOW = 10.0  # seconds of history behind the progress rates


class _Stopped(Exception):
    """Raised at the gate once the run is stopping: this attempt is not sent."""


def endpoint(base_url: str, url: str) -> str:
    """The full URL for a batch line's ``url`` (``/v1/...``) on ``base_url``.

    OpenAI-compatible base URLs usually end in ``/v1`` (the SDKs' convention) while batch lines start
    with it; the ``/v1`` is not doubled.

    >>> endpoint("https://api.openai.com/v1", "/v1/chat/completions")
    'https://api.openai.com/v1/chat/completions'
    >>> endpoint("http://127.0.0.1:8000", "/v1/chat/completions")
    'http://127.0.0.1:8000/v1/chat/completions'
    """
    base = base_url.rstrip("/")
    if base.endswith("/v1") and (url == "/v1" or url.startswith("/v1/")):
        base = base[: -len("/v1")]
    return base + url


def _auth_headers(dialect: Dialect, key: str | None) -> dict[str, str]:
    if dialect == "anthropic":
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if key:
            headers["x-api-key"] = key
        return headers
    return {"authorization": f"Bearer {key}"} if key else {}


def _header_safe(value: str) -> bool:
    return len(value) <= 200 and value.isascii() and value.isprintable()


class _Gate:
    """The transport's gate: the dialect's throttler, plus the runner's stop switch.

    It knows which tasks are *in flight* (admitted, their attempt not finished): those are the ones a
    stopping run waits for; every other task is only waiting and can be dropped at once.
    """

    def __init__(self, throttler: Throttler) -> None:
        self.throttler = throttler
        self.stopping = False
        self.in_flight: set[asyncio.Task[Any]] = set()
        self.idle = asyncio.Event()  # set while no attempt is in flight
        self.idle.set()

    @asynccontextmanager
    async def admit(self, tokens: float = 0) -> AsyncIterator[Permit]:
        if self.stopping:
            raise _Stopped
        async with self.throttler.admit(tokens) as permit:
            if self.stopping:  # let through after the stop: do not send after all
                raise _Stopped
            task = asyncio.current_task()
            assert task is not None
            self.in_flight.add(task)
            self.idle.clear()
            try:
                yield permit
            finally:
                self.in_flight.discard(task)
                if not self.in_flight:
                    self.idle.set()

    def pause(self, seconds: float) -> None:
        self.throttler.pause(seconds)


@dataclass
class _Lane:
    """One dialect's client, gate and limits.  Its first request goes alone and teaches the limits."""

    dialect: Dialect
    client: httpx.AsyncClient
    gate: _Gate
    limits: BatchLimits
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    probe_over: asyncio.Event = field(default_factory=asyncio.Event)  # set (and replaced) per probe
    probing: bool = False
    limits_as_of: float = -math.inf  # send time of the request whose answer set the limits in force


@dataclass
class _Counters:
    succeeded: int = 0
    failed: int = 0
    retry_later: int = 0
    rate_limited: int = 0
    attempts: int = 0
    retry_later_ids: list[str] = field(default_factory=list)
    sent: collections.deque[tuple[float, float]] = field(default_factory=collections.deque)
    finished_at: collections.deque[float] = field(default_factory=collections.deque)

    def on_event(self, event: Event) -> None:
        kind = event.kind
        if kind == Kind.SENT:
            self.attempts += 1
            self.sent.append((event.t, float(event.weight)))
        elif kind == Kind.HTTP_429:
            self.rate_limited += 1

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.retry_later


class _Watch(httpx.AsyncBaseTransport):
    """Below the throttling transport: shows every attempt's answer headers to ``seen``, with the loop time
    the attempt was sent (limits change, and answers overtake each other)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, seen: Callable[[httpx.Headers, float], None]) -> None:
        self.inner = inner
        self.seen = seen

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent_at = asyncio.get_running_loop().time()
        response = await self.inner.handle_async_request(request)
        self.seen(response.headers, sent_at)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Borrowed(httpx.AsyncBaseTransport):
    """A transport the caller owns: used here, closed by them."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        return None


class _Run:
    """One run's state; :func:`run_batch` is its front door."""

    def __init__(
        self,
        batch: BatchInput,
        results: ResultsFile,
        *,
        base_url: str,
        keys: Mapping[Dialect, str | None],
        limits: BatchLimits,
        learn_limits: bool,
        retry: RetryPolicy,
        timeout: float,
        default_max_tokens: int,
        grace: float,
        stop: asyncio.Event,
        listeners: Sequence[ProgressListener],
        progress_interval: float,
        transport: httpx.AsyncBaseTransport | None,
        write_exhausted: bool,
    ) -> None:
        self.batch = batch
        self.results = results
        self.base_url = base_url
        self.keys = keys
        self.limits = limits
        self.learn_limits = learn_limits
        self.retry = retry
        self.timeout = timeout
        self.default_max_tokens = default_max_tokens
        self.grace = grace
        self.stop = stop
        self.listeners = listeners
        self.progress_interval = progress_interval
        self.transport = transport
        self.write_exhausted = write_exhausted
        self.counters = _Counters()
        self.lanes: dict[Dialect, _Lane] = {}
        self.unreachable: str | None = None
        self.fatal: str | None = None
        self.interrupted = False
        self.notes: list[str] = []
        self.loop = asyncio.get_running_loop()
        self.started = self.loop.time()
        self.ended: float | None = None
        skipped_ok = sum(1 for r in batch.requests if results.done.get(r.custom_id) is True)
        self.skipped_failed = sum(1 for r in batch.requests if results.done.get(r.custom_id) is False)
        self.skipped = skipped_ok + self.skipped_failed
        self.pending = [r for r in batch.requests if r.custom_id not in results.done]

    # ------------------------------------------------------------------ lanes
    def _lane(self, dialect: Dialect) -> _Lane:
        lane = self.lanes.get(dialect)
        if lane is None:
            limits = self.limits
            if limits.max_concurrent is None:
                limits = replace(limits, max_concurrent=DEFAULT_MAX_CONCURRENT)
            assert limits.max_concurrent is not None
            inner: httpx.AsyncBaseTransport = (
                _Borrowed(self.transport)
                if self.transport is not None
                else httpx.AsyncHTTPTransport(
                    limits=httpx.Limits(
                        max_connections=limits.max_concurrent,
                        max_keepalive_connections=limits.max_concurrent,
                    )
                )
            )
            learning = self.learn_limits
            # Until the first answer is in, one request at a time: the probe.
            throttler = (
                Throttler(max_concurrent=1, name=f"batch.{dialect}.probe")
                if learning
                else limits.throttler(dialect)
            )
            gate = _Gate(throttler)
            if learning:
                inner = _Watch(
                    inner, lambda headers, sent_at: self._limits_changed(dialect, headers, sent_at)
                )
            client = httpx.AsyncClient(
                transport=ThrottledTransport(
                    inner,
                    limiter=gate,
                    retry=self.retry,
                    default_max_tokens=self.default_max_tokens,
                    name=f"batch.{dialect}",
                ),
                headers=_auth_headers(dialect, self.keys.get(dialect)),
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
            )
            lane = _Lane(dialect, client, gate, limits)
            if not learning:
                lane.ready.set()
            self.lanes[dialect] = lane
        return lane

    def _learned(self, lane: _Lane, answer: httpx.Response | None, spent: Tokens | None) -> None:
        """The probe's answer is in: build the lane's real throttler and let the others go."""
        learned = (
            limits_from_headers(answer.headers, charged=answer.status_code < 400 or answer.status_code >= 500)
            if answer is not None
            else BatchLimits()
        )
        lane.limits = lane.limits.merged(learned)
        if not lane.limits.any_rate(lane.dialect):
            self.notes.append(
                f"{lane.dialect}: no rate limits given or announced; only max_concurrent="
                f"{lane.limits.max_concurrent} applies"
            )
        throttler = lane.limits.throttler(lane.dialect)
        if spent is not None and answer is not None and answer.status_code != 429:
            # The probe came out of the server's budget: book it in the new meters too, or the first
            # burst would be one request (and its tokens) larger than what the server has left.
            permit = throttler.try_acquire(spent)
            if permit is not None:
                permit.release()
        lane.gate.throttler = throttler
        lane.ready.set()

    def _limits_changed(self, dialect: Dialect, headers: httpx.Headers, sent_at: float) -> None:
        """Every answer restates the limits; follow a change (a brownout, a new tier) in those not given.

        Only the rates change (``Throttler.set_limits``); the burst stays what the first answer showed.  An
        answer to a request sent before the one that last changed the limits is old news: a slow 200 from
        before a brownout must not undo what the 429s of the brownout said.
        """
        lane = self.lanes.get(dialect)
        if lane is None or not lane.ready.is_set() or sent_at < lane.limits_as_of:
            return  # the probe's answer builds the throttler itself
        announced = limits_from_headers(headers)
        changes: dict[str, float] = {}
        for name in ("rpm", "tpm", "itpm", "otpm"):
            new = getattr(announced, name)
            now_in_force = getattr(lane.limits, name)
            # Given by the user: their word stands.  Not metered so far: no meter to change.
            if new is None or getattr(self.limits, name) is not None or now_in_force in (None, new):
                continue
            if name == "tpm" and dialect == "anthropic":
                continue
            changes[name] = new
        if changes:
            before = ", ".join(f"{k} {getattr(lane.limits, k):g} -> {v:g}" for k, v in changes.items())
            self.notes.append(f"{dialect}: the server changed its limits at {self._clock():.1f} s: {before}")
            lane.gate.throttler.set_limits(**changes)
            old = lane.limits
            lane.limits_as_of = sent_at
            lane.limits = BatchLimits(
                rpm=changes.get("rpm", old.rpm),
                tpm=changes.get("tpm", old.tpm),
                itpm=changes.get("itpm", old.itpm),
                otpm=changes.get("otpm", old.otpm),
                max_concurrent=old.max_concurrent,
                burst_seconds=old.burst_seconds,
            )

    def _clock(self) -> float:
        return self.loop.time() - self.started

    # ------------------------------------------------------------------ one request
    def _too_large(self, lane: _Lane, tokens: Tokens, *, probe: bool) -> str | None:
        # The probe goes before the limits are known: check it against the ones given, if any.
        throttler = lane.limits.throttler(lane.dialect) if probe else lane.gate.throttler
        for meter, amount, label in (
            (throttler.tokens, float(tokens), "tokens (input + max_tokens)"),
            (throttler.input_tokens, tokens.input, "input tokens"),
            (throttler.output_tokens, tokens.output, "output tokens (max_tokens)"),
        ):
            if meter is not None and amount > meter.max_weight:
                burst = lane.limits.burst_seconds if lane.limits.burst_seconds is not None else 60.0
                return (
                    f"estimated {amount:g} {label}, more than the whole budget of {meter.max_weight:g} "
                    f"that {meter.name} can grant at once (limit x burst_seconds / 60, burst_seconds="
                    f"{burst:g}): this request could never be sent; shorten it or lower max_tokens"
                )
        return None

    async def _post(self, lane: _Lane, request: BatchRequest, content: bytes) -> httpx.Response:
        """POST with the transport's throttling and status retries, plus retries of network errors."""
        headers = {"content-type": "application/json"}
        if _header_safe(request.custom_id):
            headers["x-request-id"] = request.custom_id  # the server's events name the line
        url = endpoint(self.base_url, request.url)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await lane.client.post(url, content=content, headers=headers)
            except httpx.TransportError:
                if attempt >= self.retry.max_attempts or lane.gate.stopping:
                    raise
                await asyncio.sleep(self.retry.backoff.delay(attempt - 1, None))

    async def _one(self, request: BatchRequest) -> None:
        lane = self._lane(request.dialect)
        probe = False
        while not lane.ready.is_set() and not probe:
            if lane.probing:
                await lane.probe_over.wait()  # then look again: the limits are known, or it is our turn
            else:
                lane.probing = probe = True
        if self.unreachable is not None or self.fatal is not None:
            return  # unfinished: the run is stopping
        answer: httpx.Response | None = None
        spent: Tokens | None = None
        try:
            tokens = estimate_tokens(
                request.body, path=request.url, default_max_tokens=self.default_max_tokens
            )
            reason = self._too_large(lane, tokens, probe=probe)
            if reason is not None:
                self._write(error_line(request.custom_id, "request_too_large", reason), Outcome.FAILED)
                return
            content = json.dumps(request.body, ensure_ascii=False, separators=(",", ":")).encode()
            spent = tokens
            try:
                response = await self._post(lane, request, content)
            except httpx.TransportError as exc:
                message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if probe or self.counters.finished == 0:
                    self.unreachable = f"{endpoint(self.base_url, request.url)}: {message}"
                    self.stop.set()
                self._retry_later(request.custom_id)
                return
            answer = response
            self._answer(request, response)
        finally:
            if probe:
                over, lane.probe_over = lane.probe_over, asyncio.Event()
                if answer is None and spent is None and not self.stop.is_set():
                    lane.probing = False  # refused here before sending (too large): the next one probes
                else:
                    self._learned(lane, answer, spent)
                over.set()

    def _answer(self, request: BatchRequest, response: httpx.Response) -> None:
        status = response.status_code
        try:
            body: object = response.json()
        except ValueError:
            body = response.text
        request_id = response.headers.get("x-request-id") or response.headers.get("request-id")
        outcome = classify(status, self.retry)
        if outcome is Outcome.FATAL:
            if self.fatal is None:
                self.fatal = f"HTTP {status} for {request.custom_id!r}: {_error_message(body)}"
                self.stop.set()
            self._retry_later(request.custom_id)
            return
        if outcome is Outcome.RETRY_LATER:
            if not self.write_exhausted:
                self._retry_later(request.custom_id)
                return
            line = result_line(request.custom_id, status, request_id, body)
            line["error"] = {
                "code": "retries_exhausted",
                "message": f"HTTP {status} after {self.retry.max_attempts} attempts: {_error_message(body)}",
            }
            self._write(line, Outcome.FAILED)
            return
        self._write(result_line(request.custom_id, status, request_id, body), outcome)

    def _write(self, line: Mapping[str, Any], outcome: Outcome) -> None:
        self.results.append(line)
        if outcome is Outcome.SUCCEEDED:
            self.counters.succeeded += 1
        else:
            self.counters.failed += 1
        self.counters.finished_at.append(self.loop.time())

    def _retry_later(self, custom_id: str) -> None:
        self.counters.retry_later += 1
        self.counters.retry_later_ids.append(custom_id)
        self.counters.finished_at.append(self.loop.time())

    # ------------------------------------------------------------------ progress
    def snapshot(self) -> ProgressSnapshot:
        now = self.loop.time()
        c = self.counters
        horizon = now - _RATE_WINDOW
        while c.sent and c.sent[0][0] < horizon:
            c.sent.popleft()
        while c.finished_at and c.finished_at[0] < horizon:
            c.finished_at.popleft()
        span = max(min(_RATE_WINDOW, now - self.started), 1.0)
        rpm = len(c.sent) * 60.0 / span
        tpm = sum(tokens for _, tokens in c.sent) * 60.0 / span
        rpm_limit = _total(lane.limits.rpm for lane in self.lanes.values())
        tpm_limit = _total(
            lane.limits.tpm if lane.dialect == "openai" else _total((lane.limits.itpm, lane.limits.otpm))
            for lane in self.lanes.values()
        )
        remaining = len(self.pending) - c.finished
        pace = len(c.finished_at) / span
        eta = remaining / pace if pace > 0 else (0.0 if remaining == 0 else None)
        return ProgressSnapshot(
            t=now - self.started,
            total=len(self.pending),
            finished=c.finished,
            succeeded=c.succeeded,
            failed=c.failed,
            retry_later=c.retry_later,
            rate_limited=c.rate_limited,
            in_flight=sum(len(lane.gate.in_flight) for lane in self.lanes.values()),
            attempts=c.attempts,
            rpm=rpm,
            tpm=tpm,
            rpm_limit=rpm_limit,
            tpm_limit=tpm_limit,
            eta=eta,
            window=span,
        )

    def _tell(self) -> None:
        snapshot = self.snapshot()
        for listener in self.listeners:
            listener(snapshot)

    async def _ticker(self) -> None:
        while True:
            self._tell()
            await asyncio.sleep(self.progress_interval)

    # ------------------------------------------------------------------ the whole run
    async def main(self) -> BatchSummary:
        tasks: set[asyncio.Task[None]] = set()
        all_done = asyncio.Event()
        feeding = True
        # A bounded number of tasks exist at once (they queue FIFO in the throttler), so a million-line
        # file does not become a million tasks.
        window = asyncio.Semaphore(4 * (self.limits.max_concurrent or DEFAULT_MAX_CONCURRENT) + 64)

        def finished(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            window.release()
            if (
                not task.cancelled()
                and task.exception() is not None
                and not isinstance(task.exception(), _Stopped)
            ):
                self.notes.append(f"internal error: {task.exception()!r}")
            if not feeding and not tasks:
                all_done.set()

        async def feed() -> None:
            nonlocal feeding
            try:
                for request in self.pending:
                    await window.acquire()
                    if self.stop.is_set():
                        window.release()
                        break
                    task = asyncio.create_task(self._one(request), name=f"batch:{request.custom_id}")
                    tasks.add(task)
                    task.add_done_callback(finished)
            finally:
                feeding = False
                if not tasks:
                    all_done.set()

        ticker = asyncio.create_task(self._ticker()) if self.listeners else None
        with observe(self.counters.on_event):
            feeder = asyncio.create_task(feed())
            stopped = asyncio.create_task(self.stop.wait())
            done_waiter = asyncio.create_task(all_done.wait())
            try:
                await asyncio.wait({stopped, done_waiter}, return_when=asyncio.FIRST_COMPLETED)
                if self.stop.is_set() and tasks:
                    await self._wind_down(feeder, tasks)
                self.ended = self.loop.time()  # the work is over; closing and the last snapshot are not
            except asyncio.CancelledError:
                await self._wind_down(feeder, tasks)  # the caller gave up on us: still write what we can
                raise
            finally:
                feeder.cancel()
                stopped.cancel()
                done_waiter.cancel()
                if ticker is not None:
                    ticker.cancel()
                for lane in self.lanes.values():
                    await lane.client.aclose()
                if self.listeners:
                    self._tell()
        self.interrupted = self.stop.is_set() and self.unreachable is None and self.fatal is None
        return self._summary()

    async def _wind_down(self, feeder: asyncio.Task[None], tasks: set[asyncio.Task[None]]) -> None:
        """Stop admitting; give the attempts in flight ``grace`` seconds; cancel what is left."""
        feeder.cancel()
        in_flight: set[asyncio.Task[Any]] = set()
        for lane in self.lanes.values():
            lane.gate.stopping = True
            in_flight |= lane.gate.in_flight
        for task in list(tasks):
            if task not in in_flight:
                task.cancel()  # only waiting (for the throttler, a retry, the probe): drop it, unwritten
        # Wait for the *attempts* to end, not the tasks: one answered 429 or 503 would go on to sleep for
        # its retry, and that retry will not be sent anyway.
        deadline = self.loop.time() + self.grace
        for lane in self.lanes.values():
            left_to_wait = deadline - self.loop.time()
            if left_to_wait > 0 and not lane.gate.idle.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lane.gate.idle.wait(), left_to_wait)
        for _ in range(5):
            # An attempt that just ended is handed back up through httpx to _one, which writes its line:
            # a few turns of the loop, no waiting on anything.
            await asyncio.sleep(0)
        left = list(tasks)
        for task in left:
            task.cancel()
        if left:
            await asyncio.gather(*left, return_exceptions=True)

    def _summary(self) -> BatchSummary:
        c = self.counters
        notes = list(self.notes)
        if self.results.repair:
            notes.append(f"{self.results.path}: {self.results.repair}")
        notes.extend(str(problem) for problem in self.results.problems)
        if self.fatal is not None:
            notes.append(f"stopped: the server refused the credentials ({self.fatal})")
        return BatchSummary(
            total=len(self.batch.requests),
            succeeded=c.succeeded,
            failed=c.failed,
            retry_later=c.retry_later,
            unfinished=len(self.pending) - c.finished,
            skipped=self.skipped,
            skipped_failed=self.skipped_failed,
            invalid=len(self.batch.problems),
            rate_limited=c.rate_limited,
            attempts=c.attempts,
            elapsed=(self.ended if self.ended is not None else self.loop.time()) - self.started,
            interrupted=self.interrupted,
            unreachable=self.unreachable,
            fatal=self.fatal,
            limits={dialect: lane.limits for dialect, lane in self.lanes.items()},
            problems=self.batch.problems,
            retry_later_ids=tuple(c.retry_later_ids),
            notes=tuple(notes),
        )


def _total(values: Iterable[float | None]) -> float | None:
    given = [v for v in values if v is not None]
    return sum(given) if given else None


def _error_message(body: object) -> str:
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
    text = body if isinstance(body, str) else json.dumps(body)
    return text[:200]


def _listeners(progress: bool | ProgressListener | Sequence[ProgressListener]) -> list[ProgressListener]:
    if progress is True:
        return [TqdmProgress()]
    if progress is False:
        return []
    if callable(progress):
        return [progress]
    return list(progress)


async def run_batch(
    input: str | Path | BatchInput,
    output: str | Path,
    *,
    base_url: str,
    api_key: str | None = None,
    anthropic_api_key: str | None = None,
    rpm: float | None = None,
    tpm: float | None = None,
    itpm: float | None = None,
    otpm: float | None = None,
    max_concurrent: int | None = None,
    burst_seconds: float | None = None,
    learn_limits: bool = True,
    max_attempts: int = 5,
    retry: RetryPolicy | None = None,
    timeout: float = 300.0,
    default_max_tokens: int = 100,
    grace: float = 10.0,
    stop: asyncio.Event | None = None,
    progress: bool | ProgressListener | Sequence[ProgressListener] = True,
    progress_interval: float = 1.0,
    transport: httpx.AsyncBaseTransport | None = None,
    write_exhausted: bool = False,
    durable: bool = False,
    seed: int | None = None,
) -> BatchSummary:
    """Run every request of ``input`` not yet in ``output`` and append its result there.

    Args:
        input: a batch input file (OpenAI Batch API JSONL) or an already read :class:`BatchInput`.
        output: the results file (OpenAI Batch API output JSONL); created if missing, resumed if not.
        base_url: where to send (``http://127.0.0.1:8000``, ``https://api.openai.com/v1``, ...).
        api_key: the key (default: ``$OPENAI_API_KEY``); ``anthropic_api_key`` for ``/v1/messages``
            lines (default: ``api_key``, then ``$ANTHROPIC_API_KEY``).
        rpm, tpm, itpm, otpm, max_concurrent, burst_seconds: client-side limits (see
            :class:`BatchLimits`); any left out are learned from the first answer's headers
            (``learn_limits``), and ``max_concurrent`` defaults to :data:`DEFAULT_MAX_CONCURRENT`.
        max_attempts: attempts per request, the first included (a :class:`~throttle_lab.RetryPolicy`
            with full jitter; ``retry=`` to give your own).
        timeout: seconds for one HTTP attempt.
        default_max_tokens: the reply budget assumed for a body without ``max_tokens`` (the server's).
        grace: seconds a stopping run waits for requests in flight.
        stop: set it to stop the run (the command line sets it on SIGINT); cancelling the call stops
            it the same way before the cancel goes on.
        progress: ``True`` for a :mod:`tqdm.auto` bar, ``False`` for none, or listeners called with a
            :class:`ProgressSnapshot` every ``progress_interval`` seconds (the notebook dashboard is one).
        transport: an httpx transport to send through (e.g. ``httpx.ASGITransport(app=...)`` for the
            in-process mock server); the caller closes it.
        write_exhausted: write requests whose every attempt failed (429/5xx/network) as final error lines
            instead of leaving them for the next run.
        durable: ``fsync`` every line (survives a power cut, not just a crash).
        seed: seed the retry jitter (repeatable runs on virtual time).

    Returns a :class:`BatchSummary`.  Raises ``ValueError`` for invalid options, ``OSError`` if a file
    cannot be read or written, ``RuntimeError`` if another run is writing ``output``.
    """
    limits = BatchLimits(
        rpm=rpm, tpm=tpm, itpm=itpm, otpm=otpm, max_concurrent=max_concurrent, burst_seconds=burst_seconds
    )
    for name, value in (("timeout", timeout), ("grace", grace), ("progress_interval", progress_interval)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
    if retry is None:
        retry = RetryPolicy(max_attempts=max_attempts, backoff=FullJitter(base=0.5, cap=30.0, seed=seed))
    batch = input if isinstance(input, BatchInput) else read_requests(input)
    openai_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
    anthropic_key = (
        anthropic_api_key
        if anthropic_api_key is not None
        else api_key
        if api_key is not None
        else os.environ.get("ANTHROPIC_API_KEY")
    )
    listeners = _listeners(progress)
    with ResultsFile.open(output, durable=durable) as results:
        run = _Run(
            batch,
            results,
            base_url=base_url,
            keys={"openai": openai_key, "anthropic": anthropic_key},
            limits=limits,
            learn_limits=learn_limits,
            retry=retry,
            timeout=timeout,
            default_max_tokens=default_max_tokens,
            grace=grace,
            stop=stop if stop is not None else asyncio.Event(),
            listeners=listeners,
            progress_interval=progress_interval,
            transport=transport,
            write_exhausted=write_exhausted,
        )
        try:
            return await run.main()
        finally:
            for listener in listeners:
                close: Callable[[], None] | None = getattr(listener, "close", None)
                if close is not None:
                    close()
