"""Lesson 08 -- many keys, many providers.  Give every API key its own throttler, with its provider's limits.

The exercise: two mock providers (:data:`PROVIDERS`) enforce their limits *per API key*.  Requests are
labelled with a key ``"provider:key-name"`` (:data:`TRAFFIC`); write ``factory(key) -> Throttler`` for a
:class:`~throttle_lab.KeyedThrottler` so that::

    lesson08.check(factory)
    lesson08.hint()       # stuck? a hint, one level more concrete each call
    lesson08.solution()   # the reference factory, printed

finds no 429s, no key waiting for another key's traffic, and every key using its whole limit.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from mock_server import ServerConfig, create_app

from ...client.retry import RetryPolicy
from ...client.transport import ThrottledTransport
from ...core.events import record
from ...core.keyed_throttler import KeyedThrottler
from ...core.runtime import VirtualTimeDeadlock, run
from ...core.throttler import Throttler
from ...core.trace import Trace
from ..experiments import seeded_retry
from ..experiments.inprocess import InProcessTransport
from ..grading import Guide, Report

__all__ = [
    "PROVIDERS",
    "TRAFFIC",
    "Burst",
    "check",
    "hint",
    "ideal_finish",
    "provider_of",
    "run_keys",
    "solution",
]

PROVIDERS: Mapping[str, ServerConfig] = {
    "provider-a": ServerConfig(rpm=60, window=10.0, per_key=True, ttft=0.2, per_token=0.0, jitter=0.0),
    "provider-b": ServerConfig(rpm=24, window=10.0, per_key=True, ttft=0.2, per_token=0.0, jitter=0.0),
}
"""The exercise's providers.  Each allows ``rpm`` requests per minute *per API key*, enforced over
``window`` seconds (a bucket of ``rpm * window / 60`` requests per key)."""


@dataclass(frozen=True)
class Burst:
    """``requests`` requests for ``key`` (``"provider:key-name"``), all sent at time ``at``."""

    key: str
    requests: int
    at: float = 0.0


TRAFFIC: Sequence[Burst] = (
    Burst("provider-a:key-1", 40),
    Burst("provider-a:key-2", 6, at=1.0),
    Burst("provider-b:key-1", 12),
)
"""The exercise's traffic: a heavy key, a light key on the same provider a second later, another provider."""

_TITLE = "lesson08.check"

_GUIDE = Guide(
    "lesson08",
    [
        "The providers count every API key on its own, so every key needs a throttler of its own, with "
        "the limits of the provider the key belongs to.",
        "KeyedThrottler calls your factory once per key: build a *new* Throttler inside it every time (a "
        "shared one makes keys queue behind each other), and look the limits up with "
        "PROVIDERS[provider_of(key)].",
        "config = PROVIDERS[provider_of(key)]; return Throttler(rpm=config.rpm, window=config.window, "
        "name=key) -- the window too: the provider enforces its limit over 10 s, not a minute.",
    ],
    solution="throttle_lab.lab.solutions.lesson08",
)


def hint(level: int | None = None) -> None:
    """Print the next hint for the exercise (or hint number ``level``), one level more concrete each call."""
    _GUIDE.hint(level)


def solution() -> None:
    """Print the reference solution (read it, then close it and write your own)."""
    _GUIDE.solution()


_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}


def provider_of(key: str) -> str:
    """``"provider-a:key-1"`` -> ``"provider-a"``."""
    return key.split(":", 1)[0]


def run_keys(
    throttlers: KeyedThrottler | Callable[[str], Throttler],
    traffic: Sequence[Burst] = TRAFFIC,
    providers: Mapping[str, ServerConfig] = PROVIDERS,
    *,
    retry: RetryPolicy | None = None,
) -> Trace:
    """Send ``traffic`` on virtual time: one transport stack per key, each through ``throttlers[key]``.

    Every key's client sends ``Authorization: Bearer <key>`` to its provider's in-process mock server, so
    the server counts each key separately.  Request ids are ``"<key>/<n>"``.  ``retry`` defaults to
    retrying 429s with the shared cool-down.  The trace holds the clients', throttlers' and servers' events.
    """
    keyed = throttlers if isinstance(throttlers, KeyedThrottler) else KeyedThrottler(throttlers)
    unknown = sorted({provider_of(b.key) for b in traffic} - set(providers))
    if unknown:
        raise ValueError(f"no provider named {', '.join(unknown)}; the providers are {sorted(providers)}")

    async def main() -> list[dict[str, Any]]:
        apps = {name: create_app(config) for name, config in providers.items()}
        # One stack per key, and requests handed to it directly, as the experiments' drive does: an
        # httpx.AsyncClient on top would merge URLs and headers and handle cookies and redirects for every
        # request, which cost more than the rest of the exchange, and the server reads none of it.
        stacks: dict[str, ThrottledTransport] = {}
        for key in dict.fromkeys(b.key for b in traffic):
            stacks[key] = ThrottledTransport(
                InProcessTransport(apps[provider_of(key)]),
                limiter=keyed[key],
                retry=retry if retry is not None else seeded_retry(),
                name=key,
            )
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def send(burst: Burst, n: int) -> None:
            await asyncio.sleep(max(0.0, start + burst.at - loop.time()))
            url = f"http://{provider_of(burst.key)}/v1/chat/completions"
            headers = {"authorization": f"Bearer {burst.key}", "x-request-id": f"{burst.key}/{n}"}
            response = await stacks[burst.key].handle_async_request(
                httpx.Request("POST", url, json=_BODY, headers=headers)
            )
            await response.aread()
            await response.aclose()

        try:
            await asyncio.gather(*(send(b, n) for b in traffic for n in range(1, b.requests + 1)))
        finally:
            for stack in stacks.values():
                await stack.aclose()
        return [record for app in apps.values() for record in app.events]

    with record() as client_trace:
        server_records = run(main())
    trace = Trace.merge(client_trace, Trace.from_records(server_records))
    trace.meta.update(
        {
            "design": "keyed throttlers",
            "keys": [b.key for b in traffic],
            "providers": {name: {"rpm": c.rpm, "window": c.window} for name, c in providers.items()},
        }
    )
    return trace


def ideal_finish(burst: Burst, config: ServerConfig) -> float:
    """When the burst's last request can be sent at the earliest: a full bucket, then one per refill."""
    assert config.rpm is not None
    bucket = math.floor(config.rpm * config.window / 60.0 + 1e-9)
    rate = config.rpm / 60.0
    return burst.at + max(0.0, (burst.requests - bucket) / rate)


def _sent(trace: Trace, key: str) -> list[tuple[float, float]]:
    """(arrival, first send) per request of ``key``."""
    first: dict[object, float] = {}
    sent: dict[object, float] = {}
    for event in trace:
        if not isinstance(event.request, str) or not event.request.startswith(key + "/"):
            continue
        first.setdefault(event.request, event.t)
        if event.kind == "sent" and event.source != "server":
            sent.setdefault(event.request, event.t)
    return [(first[r], sent[r]) for r in sent]


def check(factory: Callable[[str], Throttler] | None) -> Report:
    """Run :data:`TRAFFIC` through ``KeyedThrottler(factory)`` against :data:`PROVIDERS` and grade it."""
    if factory is None:
        return Report(_TITLE, attempted=False, note="write your factory, then run me again.")
    report = Report(_TITLE)
    keys = list(dict.fromkeys(b.key for b in TRAFFIC))
    keyed = KeyedThrottler(factory)
    try:
        throttlers = [keyed[key] for key in keys]
    except NotImplementedError:
        return Report(
            _TITLE,
            attempted=False,
            note="your factory still raises NotImplementedError; fill it in and run me again.",
        )
    except Exception as exc:  # the learner's code: report, don't crash the notebook
        hint = "return Throttler(rpm=..., window=..., name=key) with the limits of the key's provider"
        if isinstance(exc, KeyError):
            hint = (
                f"keys look like {keys[0]!r}, and PROVIDERS is keyed by provider: "
                "PROVIDERS[provider_of(key)] gives the key's provider's limits"
            )
        elif isinstance(exc, ValueError) and "requests budget" in str(exc):
            # The throttler refuses a bucket smaller than one request: almost always a unit mix-up.
            hint = (
                "its bucket holds rpm x window / 60 requests, less than one here: rpm is per minute "
                "and window in seconds"
            )
        report.add("the factory makes a Throttler for a key", False, f"{type(exc).__name__}: {exc}", hint)
        return report
    distinct = len({id(t) for t in throttlers})
    report.add(
        "one throttler per key",
        distinct == len(keys),
        f"{distinct} throttlers for {len(keys)} keys",
        "build a new Throttler inside the factory for every key; one shared throttler makes keys queue "
        "behind each other",
    )
    try:
        trace = run_keys(keyed)
    except VirtualTimeDeadlock as exc:
        first_line = str(exc).splitlines()[0]
        report.add(
            "the traffic runs",
            False,
            f"{type(exc).__name__}: {first_line}",
            "a throttler never let a request go: its bucket holds rpm x window / 60 requests, and below one "
            "nothing ever fits -- rpm is per minute and window in seconds, as in PROVIDERS",
        )
        return report
    except Exception as exc:
        report.add("the traffic runs", False, f"{type(exc).__name__}: {exc}", "see the error above")
        return report

    limited = trace.filter(kind="limited", source="server").count()
    report.add(
        "no 429s",
        limited == 0,
        f"{limited} 429s",
        "give each key the limits of *its* provider (PROVIDERS[provider_of(key)]): its rpm, and its window "
        "so a burst never exceeds the server's bucket",
    )
    by_key = {b.key: b for b in TRAFFIC}
    light = min(TRAFFIC, key=lambda b: b.requests)
    sends = _sent(trace, light.key)
    last = max((s for _, s in sends), default=math.inf)
    alone_trace = run_keys(KeyedThrottler(factory), [light])
    alone = max((s for _, s in _sent(alone_trace, light.key)), default=math.inf)
    report.add(
        "keys never wait for each other",
        len(sends) == light.requests and last <= alone + 1e-6,
        f"{light.key}'s last request: sent at {last:.2f} s with the others, at {alone:.2f} s on its own",
        "a key's requests must wait only for that key's own limit: one throttler per key",
    )
    slow = []
    for key in keys:
        burst = by_key[key]
        finished = max((s for _, s in _sent(trace, key)), default=math.inf)
        ideal = ideal_finish(burst, PROVIDERS[provider_of(key)])
        if finished > ideal * 1.05 + 0.5:
            slow.append(f"{key} finished sending at {finished:.1f} s, ideal {ideal:.1f} s")
    report.add(
        "every key uses its whole limit",
        not slow,
        "; ".join(slow) if slow else "every key finished sending within 5 % of its ideal time",
        "a key's throttler is set below its provider's limit: use the provider's rpm and window",
    )
    return report
