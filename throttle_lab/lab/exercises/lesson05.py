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
answered.  Then it runs the same traffic once more, just after *another client on the same key* has spent
:data:`NEIGHBOUR_TOKENS` of its tokens: now the server refuses requests your throttler rightly let through,
and ``send`` must wait out each 429 -- everyone, for the server's ``retry-after`` -- and try again::

    lesson05.check(send)
    lesson05.hint()        # stuck? one hint more concrete each call
    lesson05.solution()    # the reference solution
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
from ..grading import CheckResult, Guide, Report, check_trace
from ..grading.trace_checks import TokenCharge, token_charges

__all__ = [
    "MAX_CONCURRENT",
    "NEIGHBOUR",
    "NEIGHBOUR_TOKENS",
    "SERVER",
    "WORKLOAD",
    "SendStep",
    "check",
    "hint",
    "run_send",
    "solution",
]

#: The server ``check`` sends to: 120 requests and 20,000 tokens per minute.  With prompts of 50 to
#: 1,000 tokens and ``max_tokens`` of 50 to 300, tokens bind (about 28 requests a minute fit).
SERVER = ServerConfig(rpm=120, tpm=20_000)
#: The traffic: 150 requests at once, mixed sizes, seeded.
WORKLOAD = Workload(requests=150, prompt_tokens=(50, 1000), max_tokens=(50, 300))
#: The throttler's concurrency cap.
MAX_CONCURRENT = 10
#: Tokens another client on the same key spends just before ``check``'s second run: of the 20,000 a minute,
#: 5,000 are left, and your throttler does not know -- the server will refuse some requests it let through.
NEIGHBOUR_TOKENS = 15_000
#: The request id the other client's request carries in the trace.
NEIGHBOUR = "neighbour"

SendStep = Callable[[Throttler, httpx.AsyncClient, WorkItem], Awaitable[Any]]

_TITLE = "lesson05.check"
_HORIZON = 3600.0  # virtual seconds before a run is given up (the ideal run takes about 5 minutes)
_SHARED = "with another client on the key"

_GUIDE = Guide(
    "lesson05",
    [
        "Ask the throttler before every send, for everything the server will charge: a concurrency slot, a "
        "request and the request's tokens. And when the server still says 429, the whole client must wait "
        "for its retry-after, then send the same request again.",
        "The server charges prompt + max_tokens at admission: estimate_request_tokens(item.body()) counts "
        "exactly that. Take the permit with `async with throttler.slot(tokens=estimate) as permit:` and "
        "send inside it. On a 429: throttler.pause(parse_retry_after(response.headers) or 1.0), then loop.",
        "while True: async with throttler.slot(tokens=estimate) as permit: response = await "
        "client.post(...); if response.status_code == 429: pause and `continue`; otherwise permit.reconcile("
        "answer['usage']['prompt_tokens'] + item.max_tokens) -- not total_tokens -- and return the answer.",
    ],
    solution="throttle_lab.lab.solutions.lesson05",
)


def hint(level: int | None = None) -> None:
    """Print the next hint for the exercise (or hint number ``level``), one level more concrete each call."""
    _GUIDE.hint(level)


def solution() -> None:
    """Print the reference solution (read it, then close it and write your own)."""
    _GUIDE.solution()


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
    neighbour_tokens: int = 0,
) -> Trace:
    """Send every item of ``workload`` with ``send(throttler, client, item)``; return the run's trace.

    Runs on virtual time against an in-process mock server configured by ``server``; the throttler is
    ``Throttler(max_concurrent, server.rpm, server.tpm, window=server.window)``.  Each item starts at its
    arrival time, inside ``request_scope(item.request_id)``, so the throttler's events, the client's
    (``sent``, ``response``, ``429``; recorded by a ``ThrottledTransport`` that neither limits nor retries)
    and the server's all carry the item's id.  Gives up with ``TimeoutError`` after an hour of virtual time.

    ``neighbour_tokens``: first, another client on the same key (request id :data:`NEIGHBOUR`, straight to
    the server, past your throttler) spends about that many tokens; the workload starts when it is answered.
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
        if neighbour_tokens:
            await _spend(app, neighbour_tokens)
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


async def _spend(app: Any, tokens: int) -> None:
    """Another client on the same key: one request of about ``tokens`` (a long prompt, ``max_tokens`` 1)."""
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "x" * (4 * max(tokens - 8, 1))}],
        "max_tokens": 1,
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://mock-server"
    ) as other:
        response = await other.post("/v1/chat/completions", json=body, headers={"x-request-id": NEIGHBOUR})
        response.raise_for_status()


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
    if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code == 429:
        return text, (
            "a 429 raised out of send: check response.status_code == 429 before raise_for_status(), then "
            "throttler.pause(hint) and send the same request again"
        )
    if isinstance(exc, TypeError) and "argument" in str(exc):
        return text, "the check calls send(throttler, client, item): three parameters"
    return text, "send raised an exception: try it on one item to see the traceback"


def check(send: SendStep | None) -> Report:
    """Grade your send step: ``check(send)``.

    Runs :func:`run_send` with :data:`WORKLOAD` against :data:`SERVER` and grades what the server saw
    with :func:`~throttle_lab.lab.grading.check_trace` (no 429s; at least 95 % of the binding limit in
    steady state), plus: every request answered with a 200.  A failing line's hint comes from comparing,
    request by request, the tokens your throttler booked with those the server charged.  Then the same run
    again, after another client spent :data:`NEIGHBOUR_TOKENS` of the key's tokens: every 429 must hold
    every task for its retry-after, and every request must still be answered.
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
        detail, failure_hint = _failure(exc)
        report.add("runs", False, detail, failure_hint)
        return report
    books = token_charges(trace)
    graded = check_trace(trace, rpm=SERVER.rpm, tpm=SERVER.tpm, min_utilisation=0.95)
    for result in graded.results:
        better = _books_hint(books, over=result.name.startswith("at least"))
        report.results.append(CheckResult(result.name, result.passed, result.detail, better or result.hint))
    report.add(
        "every request answered",
        _answered(trace) == WORKLOAD.requests,
        f"{_answered(trace)} of {WORKLOAD.requests} got a 200",
        "after a 429, wait (throttler.pause(hint) holds everyone) and send the same request again",
    )
    _grade_shared_key(send, report)
    if report.passed:
        summary = trace.summary()
        report.note = (
            f"All {WORKLOAD.requests} requests in {summary.makespan:.0f} virtual seconds without a single "
            "429: your client reserves at send time and charges what the server charges. With another "
            "client on the key, it waited out every 429 and still got every answer."
        )
    return report


def _answered(trace: Trace) -> int:
    return len({e.request for e in trace.filter(kind="done", source="client")})


def _grade_shared_key(send: SendStep, report: Report) -> None:
    """The second run: another client has spent most of the key's tokens, so correct requests get 429s."""
    try:
        trace = run_send(send, neighbour_tokens=NEIGHBOUR_TOKENS)
    except Exception as exc:  # the learner's code: report it, never crash the notebook
        detail, failure_hint = _failure(exc)
        report.add(f"runs {_SHARED}", False, detail, failure_hint)
        return
    limited = [e for e in trace.filter(kind="limited", source="server") if e.request != NEIGHBOUR]
    arrivals = [e.t for e in trace.filter(kind="arrived", source="server") if e.request != NEIGHBOUR]
    early = 0
    for refusal in limited:
        wait = (refusal.detail.get("retry_after_ms") or 0) / 1000
        early += sum(1 for t in arrivals if refusal.t + 1e-9 < t < refusal.t + wait - 1e-6)
    report.add(
        "every 429 held everyone for its retry-after",
        early == 0,
        f"{len(limited)} 429{'' if len(limited) == 1 else 's'}, "
        + ("each waited out" if early == 0 else f"{early} requests sent while a retry-after was running"),
        "a 429 speaks for the whole key: throttler.pause(hint) holds every task (a sleep in the refused "
        "task alone lets the others walk into the same 429)",
    )
    answered = _answered(trace)
    report.add(
        f"every request answered {_SHARED}",
        answered == WORKLOAD.requests,
        f"{answered} of {WORKLOAD.requests} got a 200; the other client had spent {NEIGHBOUR_TOKENS:,} of "
        f"the {SERVER.tpm:,} tokens",
        "a 429 can come even when your books are right -- someone else spent the key's budget: on a 429, "
        "throttler.pause(hint) and send the same request again (a loop around the `async with`)",
    )


def _books_hint(books: list[TokenCharge], *, over: bool) -> str | None:
    """What the tokens booked, set against those the server charged, say about the mistake (None: nothing).

    ``over`` asks about over-charging (capacity left unused); otherwise about under-charging (429s).
    """
    if not books:
        return None
    charged = sum(c.charged for c in books)
    reserved = sum(c.reserved for c in books)
    booked = sum(c.booked for c in books)
    if over:
        if booked > 1.1 * charged:
            return (
                "you are leaving capacity unused: your permits hold "
                f"{booked / charged:.1f}x the tokens the server charged "
                f"({booked / len(books):.0f} a request against {charged / len(books):.0f}): the server "
                "charges prompt + max_tokens -- estimate_request_tokens(item.body()) -- and not more"
            )
        return None
    if reserved <= 0.05 * charged:
        return (
            "reserve capacity before sending: your permits reserved no tokens (the server charged "
            f"{charged / len(books):.0f} a request), so the throttler let out more than the token budget. "
            "Ask for them: throttler.slot(tokens=estimate_request_tokens(item.body()))"
        )
    if reserved < 0.97 * charged:
        short = charged - reserved
        max_tokens = sum(c.max_tokens for c in books)
        prompts = sum(c.prompt_tokens for c in books)
        if abs(short - max_tokens) <= 0.25 * max_tokens:
            what = "it leaves out max_tokens: the server charges prompt + max_tokens at admission"
        elif abs(short - prompts) <= 0.25 * prompts:
            what = "it leaves out the prompt: the server charges prompt + max_tokens at admission"
        else:
            what = "the server charges prompt + max_tokens at admission"
        return (
            f"your estimate is short of what the server charged ({reserved / len(books):.0f} tokens a "
            f"request against {charged / len(books):.0f}): {what}; estimate_request_tokens(item.body()) "
            "counts both"
        )
    if booked < 0.99 * charged:
        if (
            sum(1 for c in books if c.total_tokens is not None and abs(c.booked - c.total_tokens) < 1)
            > len(books) / 2
        ):
            what = (
                "you reconcile with usage.total_tokens, but the server keeps the whole max_tokens it charged "
                "(no refund for a shorter answer): reconcile with usage.prompt_tokens + item.max_tokens"
            )
        else:
            what = "reconcile with what the server charged: usage.prompt_tokens + item.max_tokens"
        return (
            f"your books end lower than the server's ({booked / len(books):.0f} tokens a request against "
            f"{charged / len(books):.0f}): {what}"
        )
    return None
