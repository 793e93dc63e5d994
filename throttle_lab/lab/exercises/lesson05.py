"""Lesson 05 -- the combined throttler: write the *send step* of a client, graded against the mock server.

The exercise: a coroutine ``send(throttler, client, item)`` that sends one chat request through a
:class:`~throttle_lab.Throttler` the right way::

    async def send(throttler, client, item):
        ...  # estimate the tokens, take a permit, POST item.body(), handle a 429, reconcile

* ``throttler`` is a :class:`~throttle_lab.Throttler` already configured to the server's limits
  (concurrency, requests and tokens per minute);
* ``client`` is an ``httpx.AsyncClient`` whose base URL is an in-process mock server:
  ``await client.post("/v1/chat/completions", json=item.body())``;
* ``item`` is a :class:`~throttle_lab.lab.experiments.WorkItem` (``prompt``, ``max_tokens``, ``body()``).

:func:`check` plugs your ``send`` into a simulation on virtual time (:func:`run_send`: the same seeded
traffic every time, requests and tokens limited) and grades what the *server* saw with
:func:`throttle_lab.lab.grading.check_trace`: zero 429s, at least 95 % of the binding limit, every request
answered::

    lesson05.check(send)
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from mock_server import ServerConfig, create_app

from ...client.transport import ThrottledTransport
from ...core.events import current_request, record, request_scope
from ...core.runtime import VirtualTimeDeadlock, VirtualTimeError, VirtualTimeLivelock, run
from ...core.throttler import Throttler
from ...core.trace import Trace
from ..experiments import WorkItem, Workload
from ..grading import Report, check_trace

__all__ = ["MAX_CONCURRENT", "SERVER", "WORKLOAD", "SendStep", "check", "run_send"]

#: The server ``check`` sends to: 120 requests and 20,000 tokens per minute.  With prompts of 50 to
#: 1,000 tokens and ``max_tokens`` of 50 to 300, tokens bind (about 28 requests a minute fit).
SERVER = ServerConfig(rpm=120, tpm=20_000)
#: The traffic: 150 requests at once, mixed sizes, seeded.
WORKLOAD = Workload(requests=150, prompt_tokens=(50, 1000), max_tokens=(50, 300))
#: The throttler's concurrency cap.
MAX_CONCURRENT = 10

SendStep = Callable[[Throttler, httpx.AsyncClient, WorkItem], Awaitable[Any]]

_TITLE = "lesson05.check"
_HORIZON = 3600.0  # virtual seconds before a run is given up (the ideal run takes about 5 minutes)


class _NotACoroutine(TypeError):
    pass


class _Stuck(TimeoutError):
    """The run did not finish within the horizon; says what the throttler looked like then."""

    def __init__(self, message: str, slots_held: bool) -> None:
        super().__init__(message)
        self.slots_held = slots_held


def run_send(
    send: SendStep,
    workload: Workload = WORKLOAD,
    server: ServerConfig = SERVER,
    *,
    max_concurrent: int | None = MAX_CONCURRENT,
) -> Trace:
    """Send every item of ``workload`` with ``send(throttler, client, item)``; return the run's trace.

    Runs on virtual time against an in-process mock server configured by ``server``; the throttler is
    ``Throttler(max_concurrent, server.rpm, server.tpm, window=server.window)``.  Each item starts at its
    arrival time, inside ``request_scope(item.request_id)``, so the throttler's events, the client's
    (``sent``, ``response``, ``429``; recorded by a ``ThrottledTransport`` that neither limits nor retries)
    and the server's all carry the item's id.  Gives up with ``TimeoutError`` after an hour of virtual time.
    """

    async def tag(request: httpx.Request) -> None:
        # Every attempt of one item carries the item's id, so the server's events line up with ours.
        request_id = current_request()
        if request_id is not None and "x-request-id" not in request.headers:
            request.headers["x-request-id"] = str(request_id)

    async def main() -> list[Any]:
        app = create_app(server)
        transport = ThrottledTransport(
            httpx.ASGITransport(app=app), default_max_tokens=server.default_max_tokens, name="client"
        )
        throttler = Throttler(max_concurrent, server.rpm, server.tpm, window=server.window)
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://mock-server",
            timeout=None,
            event_hooks={"request": [tag]},
        ) as client:

            async def one(item: WorkItem) -> None:
                delay = start + item.at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                with request_scope(item.request_id):
                    pending = send(throttler, client, item)
                    if not inspect.isawaitable(pending):
                        raise _NotACoroutine(
                            f"send returned a {type(pending).__name__}, not a coroutine to await"
                        )
                    await pending

            try:
                async with asyncio.timeout(_HORIZON):
                    await asyncio.gather(*(one(item) for item in workload.items()))
            except TimeoutError:
                held = throttler.in_flight
                raise _Stuck(
                    f"not finished after {_HORIZON:g} virtual seconds, with {held:g} permits still held",
                    slots_held=max_concurrent is not None and held >= max_concurrent,
                ) from None
        return list(app.events)

    with record() as client_trace:
        server_records = run(main())
    trace = Trace.merge(client_trace, Trace.from_records(server_records))
    trace.meta.update(
        {
            "design": "your send",
            "server": {"rpm": server.rpm, "tpm": server.tpm, "window": server.window},
            "client": {"max_concurrent": max_concurrent, "rpm": server.rpm, "tpm": server.tpm},
            "workload": {
                "requests": workload.requests,
                "arrival": workload.arrival,
                "per_minute": workload.per_minute,
                "seed": workload.seed,
            },
        }
    )
    return trace


def _failure(exc: BaseException) -> tuple[str, str]:
    """A short description of what went wrong, and a hint."""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    if isinstance(exc, _NotACoroutine):
        return str(exc), "define it with `async def send(throttler, client, item):`"
    if isinstance(exc, VirtualTimeDeadlock):
        return "VirtualTimeDeadlock: everyone waits, nothing will wake them", (
            "a permit that is never released keeps its concurrency slot forever: use "
            "`async with throttler.slot(tokens=...) as permit:` (or call permit.release())"
        )
    if isinstance(exc, _Stuck) and exc.slots_held:
        return str(exc), (
            "every concurrency slot is taken and nobody gives one back: release each permit when its "
            "response is in -- `async with throttler.slot(tokens=...) as permit:` does it for you"
        )
    if isinstance(exc, _Stuck):
        return str(exc), "does every call of send return in the end?"
    if isinstance(exc, VirtualTimeLivelock):
        return "VirtualTimeLivelock", "something spins without letting time pass: await a sleep, don't loop"
    if isinstance(exc, TimeoutError | VirtualTimeError):
        return "not finished after an hour of virtual time", "does every call of send return in the end?"
    if isinstance(exc, TypeError) and "argument" in str(exc):
        return text, "the check calls send(throttler, client, item): three parameters"
    return text, "send raised an exception: try it on one item to see the traceback"


def check(send: SendStep | None) -> Report:
    """Grade your send step: ``check(send)``.

    Runs :func:`run_send` with :data:`WORKLOAD` against :data:`SERVER` and grades what the server saw
    with :func:`~throttle_lab.lab.grading.check_trace` (no 429s; at least 95 % of the binding limit in
    steady state), plus: every request answered with a 200.
    """
    if send is None:
        return Report(_TITLE, attempted=False, note="define send, then run me again.")
    report = Report(_TITLE)
    try:
        trace = run_send(send)
    except NotImplementedError:
        return Report(
            _TITLE,
            attempted=False,
            note="send still raises NotImplementedError; fill it in and run me again.",
        )
    except Exception as exc:  # the learner's code: report it, never crash the notebook
        detail, hint = _failure(exc)
        report.add("runs", False, detail, hint)
        return report
    graded = check_trace(trace, rpm=SERVER.rpm, tpm=SERVER.tpm, min_utilisation=0.95)
    report.results.extend(graded.results)
    answered = {e.request for e in trace.filter(kind="done", source="client")}
    report.add(
        "every request answered",
        len(answered) == WORKLOAD.requests,
        f"{len(answered)} of {WORKLOAD.requests} got a 200",
        "after a 429, wait (throttler.pause(hint) holds everyone) and send the same request again",
    )
    if report.passed:
        summary = trace.summary()
        report.note = (
            f"All {WORKLOAD.requests} requests in {summary.makespan:.0f} virtual seconds without a single "
            "429: your client reserves at send time and charges what the server charges."
        )
    return report
