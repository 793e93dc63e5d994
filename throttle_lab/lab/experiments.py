"""Experiments: send a seeded workload through a client design to the mock server, get a Trace back.

Every lesson asks the same question -- *what happens if I send this traffic this way?* -- so it is one call::

    trace = simulate("throttler", Workload(requests=300), ServerConfig(rpm=60))
    print(trace.summary(limit_per_minute=60))

* :class:`Workload`: how many requests, when they arrive (all at once, steady, Poisson, in bursts), how
  big their prompts and ``max_tokens`` are -- all from a seed.
* :class:`Design`: how the client behaves -- which limiter, which retry policy, adaptive or not.  The
  built-in designs (:data:`DESIGNS`) range from "no limits at all" and the article's naive throttler to
  ours; a design can be built from any limiter.
* :func:`simulate` runs one design on **virtual time** against an in-process mock server (an ASGI app
  reached through ``httpx.ASGITransport``): hours of traffic in a fraction of a second, identical on every
  run.  The trace holds the client's events and the server's (``source == "server"``).
* :func:`compare` races several designs on the *same* traffic and tabulates the results.
* :func:`live` runs the same experiment in real time against the real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import httpx

from ..client.adaptive import AIMD, ClientSideThrottle
from ..client.backoff import FullJitter, OpenAIBackoff
from ..client.retry import RetryPolicy
from ..core.events import Event, observe, record
from ..core.limiters.concurrency import ConcurrencyLimiter
from ..core.limiters.token_bucket import TokenBucket
from ..core.runtime import run
from ..core.throttler import Throttler
from ..core.trace import Summary, Trace
from .naive import RateThenSemaphore

if TYPE_CHECKING:
    from mock_server import ServerConfig

__all__ = [
    "DESIGNS",
    "Comparison",
    "Design",
    "DesignParts",
    "WorkItem",
    "Workload",
    "compare",
    "live",
    "make_design",
    "seeded_retry",
    "simulate",
]

Arrival = Literal["burst", "steady", "poisson", "bursts"]
_FILLER = "the quick brown fox jumps over a lazy dog while rate limits tick "


# ---------------------------------------------------------------------------------------------- workload
@dataclass(frozen=True, slots=True)
class WorkItem:
    """One request of a workload."""

    request_id: str
    at: float  # seconds after the start
    prompt: str
    max_tokens: int

    def body(self, model: str = "gpt-4o-mini", stream: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": self.prompt}],
            "max_tokens": self.max_tokens,
        }
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body


@dataclass(frozen=True)
class Workload:
    """Seeded traffic.

    Args:
        requests: how many.
        arrival: ``"burst"`` (all at t=0), ``"steady"`` (evenly at ``per_minute``), ``"poisson"``
            (random gaps averaging ``per_minute``), ``"bursts"`` (groups of ``burst_size``, ``per_minute`` on
            average).
        per_minute: the arrival rate for the non-burst patterns.
        burst_size: requests per group for ``"bursts"``.
        prompt_tokens: (low, high) range of prompt sizes, in tokens (about 4 characters each).
        max_tokens: (low, high) range of ``max_tokens``.
        stream: ask for streamed responses.
        model: the model name sent.
        seed: the same seed gives the same workload.
    """

    requests: int = 200
    arrival: Arrival = "burst"
    per_minute: float = 120.0
    burst_size: int = 20
    prompt_tokens: tuple[int, int] = (20, 200)
    max_tokens: tuple[int, int] = (50, 200)
    stream: bool = False
    model: str = "gpt-4o-mini"
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.requests, bool) or not isinstance(self.requests, int) or self.requests < 1:
            raise ValueError(f"requests must be a whole number of at least 1, got {self.requests!r}")
        if self.arrival not in ("burst", "steady", "poisson", "bursts"):
            raise ValueError(f"arrival must be burst, steady, poisson or bursts, got {self.arrival!r}")
        if not (
            isinstance(self.per_minute, int | float)
            and math.isfinite(self.per_minute)
            and self.per_minute > 0
        ):
            raise ValueError(f"per_minute must be a positive number, got {self.per_minute!r}")
        if not (isinstance(self.burst_size, int) and self.burst_size >= 1):
            raise ValueError(f"burst_size must be a whole number of at least 1, got {self.burst_size!r}")
        for name in ("prompt_tokens", "max_tokens"):
            low, high = getattr(self, name)
            if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high):
                raise ValueError(f"{name} must be a (low, high) pair of whole numbers with 0 <= low <= high")

    def items(self) -> list[WorkItem]:
        """The requests, in arrival order (the same list for the same seed)."""
        rng = random.Random(self.seed)
        gap = 60.0 / self.per_minute
        items = []
        t = 0.0
        for i in range(self.requests):
            if self.arrival == "burst":
                at = 0.0
            elif self.arrival == "steady":
                at = i * gap
            elif self.arrival == "poisson":
                at = t
                t += rng.expovariate(1.0 / gap)
            else:  # bursts: a group every burst_size gaps
                at = (i // self.burst_size) * self.burst_size * gap
            prompt_tokens = rng.randint(*self.prompt_tokens)
            max_tokens = rng.randint(*self.max_tokens)
            items.append(WorkItem(f"req-{i + 1}", at, _prompt_of(prompt_tokens, i), max_tokens))
        return items


def _prompt_of(tokens: int, index: int) -> str:
    text = f"Request {index}: " + _FILLER * (tokens * 4 // len(_FILLER) + 1)
    return text[: max(1, tokens * 4)]


# ---------------------------------------------------------------------------------------------- designs
@dataclass
class DesignParts:
    """The loop-bound pieces of a design, built fresh for every run."""

    limiter: Any = None
    retry: RetryPolicy | None = None
    aimd: AIMD | None = None
    client_throttle: ClientSideThrottle | None = None


@dataclass
class Design:
    """A named way of sending requests: ``build()`` makes its pieces (inside the run's event loop)."""

    name: str
    build: Callable[[], DesignParts]
    description: str = ""

    def __repr__(self) -> str:
        return f"<Design {self.name!r}: {self.description}>"


class _HintOrFixed:
    """The article's retry wait: exactly the server's ``retry-after`` if given, else a fixed 5 s."""

    def __init__(self, default: float = 5.0) -> None:
        self.default = default

    def delay(self, attempt: int, hint: float | None = None) -> float:
        return hint if hint is not None else self.default

    def reset(self) -> None:
        return None


def seeded_retry(seed: int = 0) -> RetryPolicy:
    """``RetryPolicy()`` with its jitter pinned to ``seed``, for runs that must repeat exactly.

    ``RetryPolicy()``'s own backoff is seeded from the operating system, so that two clients never wait in
    step; an experiment, a grader or a plotted lesson must give the same trace every time instead.
    (``seed=0`` draws what the default drew before it was seeded per policy.)
    """
    return RetryPolicy(backoff=FullJitter(base=0.5, cap=30.0, seed=seed))


def _sdk_retry() -> RetryPolicy:
    # The official SDKs' defaults: 2 retries, 0.5·2^n s capped at 8 s with up to 25 % jitter.
    return RetryPolicy(max_attempts=3, backoff=OpenAIBackoff(seed=0), pause_on_429=False)


def make_design(
    name: str,
    *,
    rpm: float | None = None,
    tpm: float | None = None,
    max_concurrent: int | None = None,
    window: float = 60.0,
    retry: RetryPolicy | None = None,
) -> Design:
    """Build one of the named designs (see :data:`DESIGNS`) for the given client-side limits.

    ``rpm``/``tpm``/``max_concurrent`` are what the *client* is configured to; ``window`` the span over
    which it lets a per-minute budget burst (set it to the server's).
    """
    if name not in DESIGNS:
        raise ValueError(f"design must be one of {sorted(DESIGNS)}, got {name!r}")
    concurrency = max_concurrent if max_concurrent is not None else 10

    def policy(default: Callable[[], RetryPolicy]) -> RetryPolicy:
        return retry if retry is not None else default()

    if name == "unthrottled":
        return Design(
            name, lambda: DesignParts(retry=policy(_sdk_retry)), "no limiter; the SDK's default retries"
        )
    if name == "semaphore":
        return Design(
            name,
            lambda: DesignParts(ConcurrencyLimiter(concurrency, name="semaphore"), policy(_sdk_retry)),
            f"at most {concurrency} in flight, no rate limit; the SDK's default retries",
        )
    if name == "article":
        per_minute = int(rpm) if rpm is not None else 60
        return Design(
            name,
            lambda: DesignParts(
                RateThenSemaphore(concurrency, per_minute),
                policy(lambda: RetryPolicy(max_attempts=3, backoff=_HintOrFixed(), pause_on_429=False)),
            ),
            f"the article's rate-then-semaphore throttler ({per_minute}/min, {concurrency} at once), "
            "each task sleeping out its own retry-after",
        )
    if name == "throttler":
        return Design(
            name,
            lambda: DesignParts(Throttler(max_concurrent, rpm, tpm, window=window), policy(seeded_retry)),
            f"Throttler(max_concurrent={max_concurrent}, rpm={rpm}, tpm={tpm}, window={window:g}) "
            "with a shared cool-down and backoff",
        )
    if name == "adaptive":
        ceiling = rpm if rpm is not None else 600.0

        def build_adaptive() -> DesignParts:
            # Requests are paced smoothly (a one-second burst at most): a rate the controller lowers must
            # show up in the traffic at once, not after a minute's worth of stored-up burst has drained.
            pacing = TokenBucket(
                per_minute=ceiling, capacity=max(1.0, ceiling / 60.0), name="adaptive.requests"
            )
            throttler = Throttler(max_concurrent, None, tpm, window=window, requests=pacing, name="adaptive")
            aimd = AIMD(
                ceiling / 60.0,
                floor=ceiling / 600.0,
                ceiling=ceiling / 60.0,
                increase=ceiling / 60.0 / 50.0,
                decrease=0.5,
                cooldown=2.0,
            )
            aimd.on_change = lambda rate: throttler.set_limits(rpm=rate * 60.0)
            return DesignParts(throttler, policy(seeded_retry), aimd=aimd)

        return Design(
            name,
            build_adaptive,
            f"AIMD steering a throttler's rate below {ceiling:g}/min: halve on 429, creep up on success",
        )
    # "sre"
    return Design(
        name,
        lambda: DesignParts(
            ConcurrencyLimiter(concurrency, name="semaphore"),
            policy(_sdk_retry),
            client_throttle=ClientSideThrottle(),
        ),
        "the SRE client-side throttle: refuse locally as the server's acceptance ratio falls",
    )


#: The built-in designs, by name.
DESIGNS: Mapping[str, str] = {
    "unthrottled": "no limiter at all; retries like the official SDKs",
    "semaphore": "concurrency only (the article's first snippet)",
    "article": "the article's combined throttler: rate first, then semaphore; sleep retry-after",
    "throttler": "throttle_lab.Throttler: one reservation at send time, shared cool-down, backoff",
    "adaptive": "a Throttler whose rate AIMD learns from 429s",
    "sre": "the SRE client-side adaptive throttle",
}


def _design_of(
    design: Design | str, server: ServerConfig, limits: Mapping[str, Any]
) -> tuple[Design, dict[str, Any] | None]:
    """The design to run, and the client limits it runs with (``None`` for a ready-made Design)."""
    if isinstance(design, Design):
        return design, None
    # By default the client is configured to the server's limits -- the point of most lessons.
    kwargs: dict[str, Any] = {"rpm": server.rpm, "tpm": server.tpm, "window": server.window}
    kwargs.update({k: v for k, v in limits.items() if v is not None})
    chosen = make_design(design, **kwargs)
    max_concurrent = kwargs.get("max_concurrent")
    if max_concurrent is None and design in ("semaphore", "article", "sre"):
        max_concurrent = 10  # these designs' default concurrency
    client = {
        "rpm": kwargs["rpm"],
        "tpm": kwargs["tpm"],
        "window": kwargs["window"],
        "max_concurrent": max_concurrent,
    }
    return chosen, client


# ---------------------------------------------------------------------------------------------- running
def _server_config(server: ServerConfig | Mapping[str, Any] | None) -> ServerConfig:
    from mock_server import ServerConfig

    if server is None:
        return ServerConfig(rpm=60)
    if isinstance(server, ServerConfig):
        return server
    return ServerConfig(**dict(server))


async def _drive(
    design: Design,
    workload: Workload,
    transport: httpx.AsyncBaseTransport,
    base_url: str,
    default_max_tokens: int,
) -> None:
    """Send every work item at its arrival time through the design's transport stack."""
    from ..client.transport import ThrottledTransport

    parts = design.build()
    throttled = ThrottledTransport(
        transport,
        limiter=parts.limiter,
        retry=parts.retry,
        aimd=parts.aimd,
        client_throttle=parts.client_throttle,
        default_max_tokens=default_max_tokens,
        name="client",
    )
    loop = asyncio.get_running_loop()
    start = loop.time()
    url = httpx.URL(base_url).join("/v1/chat/completions")
    # Requests go straight to the transport stack: an httpx.AsyncClient on top would add cookie, redirect
    # and URL handling that an experiment never needs and that costs more than the rest of a request.
    async with throttled:

        async def send(item: WorkItem) -> None:
            delay = start + item.at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            headers = {"x-request-id": item.request_id, "authorization": "Bearer sk-throttle-lab"}
            request = httpx.Request(
                "POST", url, json=item.body(workload.model, workload.stream), headers=headers
            )
            try:
                response = await throttled.handle_async_request(request)
                await response.aread()
                await response.aclose()
            except ValueError:
                pass  # refused locally (e.g. larger than the whole TPM budget); recorded as "rejected"

        await asyncio.gather(*(send(item) for item in workload.items()))


def simulate(
    design: Design | str = "throttler",
    workload: Workload | None = None,
    server: ServerConfig | Mapping[str, Any] | None = None,
    *,
    rpm: float | None = None,
    tpm: float | None = None,
    max_concurrent: int | None = None,
    window: float | None = None,
    retry: RetryPolicy | None = None,
) -> Trace:
    """Run one design against the in-process mock server on virtual time; return the combined trace.

    Args:
        design: a :class:`Design` or a name from :data:`DESIGNS`.
        workload: the traffic (default: ``Workload()``: 200 requests at once).
        server: a ``mock_server.ServerConfig`` (or its fields as a dict); default 60 RPM.
        rpm, tpm, max_concurrent, window: the client's limits for a named design (default: the server's).
        retry: the retry policy for a named design (default: the design's own).

    The same arguments always give the same trace.

    >>> trace = simulate("throttler", Workload(requests=30), {"rpm": 20, "window": 6})
    >>> trace.summary().rate_limited, trace.summary().completed
    (0, 30)
    """
    workload = workload if workload is not None else Workload()
    config = _server_config(server)
    chosen, client = _design_of(
        design,
        config,
        {"rpm": rpm, "tpm": tpm, "max_concurrent": max_concurrent, "window": window, "retry": retry},
    )

    async def main() -> list[Mapping[str, Any]]:
        from mock_server import create_app

        app = create_app(config)
        transport = httpx.ASGITransport(app=app)
        await _drive(chosen, workload, transport, "http://mock-server", config.default_max_tokens)
        return list(app.events)

    with record() as client_trace:
        server_records = run(main())
    trace = Trace.merge(client_trace, Trace.from_records(server_records))
    trace.meta.update(_describe(chosen, workload, config, "virtual", client))
    return trace


def _describe(
    design: Design,
    workload: Workload,
    config: ServerConfig,
    mode: str,
    client: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a trace's ``meta`` says about the run: plots title themselves and draw limits from it."""
    meta: dict[str, Any] = {
        "design": design.name,
        "description": design.description,
        "mode": mode,
        "server": {
            "rpm": config.rpm,
            "tpm": config.tpm,
            "window": config.window,
            "max_concurrent": config.max_concurrent,
            "limit_schedule": [tuple(entry) for entry in config.limit_schedule],
        },
        "workload": {
            "requests": workload.requests,
            "arrival": workload.arrival,
            "per_minute": workload.per_minute,
            "seed": workload.seed,
        },
    }
    if client is not None:
        meta["client"] = dict(client)
    return meta


@dataclass
class Comparison:
    """Several designs on the same traffic: ``traces[name]`` and a summary table."""

    traces: dict[str, Trace]
    workload: Workload
    server: ServerConfig
    limit_per_minute: float | None = None
    summaries: dict[str, Summary] = field(init=False)

    def __post_init__(self) -> None:
        self.summaries = {name: trace.summary(self.limit_per_minute) for name, trace in self.traces.items()}

    def table(self) -> str:
        """A plain-text table, one row per design."""
        header = (
            f"{'design':<14}{'done':>6}{'failed':>8}{'429s':>7}{'retries':>9}"
            f"{'makespan s':>12}{'per min':>9}{'p50 wait':>10}"
        )
        lines = [header, "-" * len(header)]
        for name, s in self.summaries.items():
            lines.append(
                f"{name:<14}{s.completed:>6}{s.failed:>8}{s.rate_limited:>7}{s.retries:>9}"
                f"{s.makespan:>12.1f}{s.achieved_per_minute:>9.1f}{s.wait_p50:>10.2f}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return f"<Comparison of {', '.join(self.traces)}>\n{self.table()}"


def compare(
    designs: Iterable[Design | str] = ("article", "throttler"),
    workload: Workload | None = None,
    server: ServerConfig | Mapping[str, Any] | None = None,
    **limits: Any,
) -> Comparison:
    """Race several designs on the same seeded traffic against identical fresh servers."""
    workload = workload if workload is not None else Workload()
    config = _server_config(server)
    traces: dict[str, Trace] = {}
    for design in designs:
        if isinstance(design, Design):
            traces[design.name] = simulate(design, workload, config)
        else:
            traces[design] = simulate(design, workload, config, **limits)
    return Comparison(traces, workload, config, limit_per_minute=config.rpm)


# ---------------------------------------------------------------------------------------------- live mode
def _free_port() -> int:
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
    config = _server_config(server)
    chosen, client = _design_of(design, config, limits)
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
                _drive(chosen, workload, transport, base_url, config.default_max_tokens), timeout
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
    trace.meta.update(_describe(chosen, workload, config, "live", client))
    return trace


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
