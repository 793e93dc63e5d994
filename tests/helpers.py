"""Small helpers the limiter tests share: run a schedule of requests through a limiter on virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from throttle_lab import Event, observe, record, request_scope, run


@dataclass
class Request:
    """One simulated caller: arrives at ``at``, asks for ``weight``, holds it ``hold`` seconds."""

    name: str
    at: float = 0.0
    weight: float = 1
    hold: float = 0.0
    cancel_at: float | None = None  # cancel the task at this loop time (while waiting, say)
    cancel_on_grant: bool = False  # cancel the task the instant it is granted, before it runs
    timeout: float | None = None  # give up (asyncio.timeout) this many seconds after arriving


@dataclass
class Outcome:
    granted: dict[str, float] = field(default_factory=dict)  # name -> loop time its body started
    cancelled: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    limiter: Any = None


def drive(make_limiter: Callable[[], Any], requests: Sequence[Request]) -> Outcome:
    """Run ``requests`` through a fresh limiter on a virtual loop and report who got through when."""
    outcome = Outcome()

    async def main() -> None:
        limiter = outcome.limiter = make_limiter()
        loop = asyncio.get_running_loop()
        tasks: dict[str, asyncio.Task[None]] = {}
        on_grant = {r.name for r in requests if r.cancel_on_grant}

        def watch(event: Event) -> None:
            if event.kind == "granted" and event.request in on_grant:
                tasks[str(event.request)].cancel()

        async def caller(r: Request) -> None:
            with request_scope(r.name):
                try:
                    await asyncio.sleep(r.at)
                    async with asyncio.timeout(r.timeout), limiter.slot(r.weight):
                        outcome.granted[r.name] = loop.time()
                        outcome.order.append(r.name)
                        await asyncio.sleep(r.hold)
                except (asyncio.CancelledError, TimeoutError):
                    if r.name not in outcome.granted:
                        outcome.cancelled.append(r.name)

        with observe(watch):
            for r in requests:
                tasks[r.name] = asyncio.create_task(caller(r), name=r.name)
                if r.cancel_at is not None:
                    loop.call_at(r.cancel_at, tasks[r.name].cancel)
            await asyncio.gather(*tasks.values())

    with record() as trace:
        run(main())
    outcome.events = list(trace)
    return outcome


def max_in_any_window(times: Sequence[float], window: float) -> int:
    """The most times inside any half-open span ``[t, t + window)`` (the limiters' own convention)."""
    ordered = sorted(times)
    best = first = 0
    for last, t in enumerate(ordered):
        while ordered[first] + window <= t:
            first += 1
        best = max(best, last - first + 1)
    return best
