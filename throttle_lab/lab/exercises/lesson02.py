"""Lesson 02 -- semaphores: concurrency is not rate.  Choose a concurrency cap for a known latency.

The exercise: a server allows :data:`LIMIT_RPM` requests per minute (enforced over :data:`WINDOW` s, so
it forgives no long burst), every request takes exactly :data:`LATENCY` seconds, and :data:`REQUESTS`
requests are waiting.  The client has only a semaphore (``simulate("semaphore", ...)``: at most
``max_concurrent`` in flight, no rate limit).  Choose ``max_concurrent`` so the run gets **no 429s** and
still uses at least :data:`MIN_UTILISATION` of the limit.

Answer with a number, or better with a function of the limit and the latency::

    lesson02.check(2)
    lesson02.check(max_concurrent_for)      # max_concurrent_for(limit_rpm, latency) -> int

A function is also tried on :data:`OTHER_SCENARIOS`.  Little's law is the tool: requests in flight =
rate x latency.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mock_server import ServerConfig

from ...core.trace import Trace
from ..experiments import Workload, simulate
from ..grading import Guide, Report, check_trace

__all__ = [
    "LATENCY",
    "LIMIT_RPM",
    "MIN_UTILISATION",
    "OTHER_SCENARIOS",
    "REQUESTS",
    "WINDOW",
    "check",
    "completed_per_minute",
    "hint",
    "littles_law_rpm",
    "run_cap",
    "server",
    "solution",
]

LIMIT_RPM = 60
"""The server's limit: requests per minute."""
WINDOW = 10.0
"""Seconds over which the server enforces it: a bucket of ``LIMIT_RPM * WINDOW / 60`` requests."""
LATENCY = 2.0
"""Seconds every request takes (no spread)."""
REQUESTS = 240
"""Requests in the workload, all waiting from the start."""
MIN_UTILISATION = 0.85
"""The share of what the limit allowed over the run that the run must use (``Trace.summary``'s
utilisation).  The limit allows a bucketful at the start on top of its rate, which a semaphore cannot
use, so the best cap reaches 88-96 % here, and one fewer in flight 48-80 %."""
OTHER_SCENARIOS: tuple[tuple[int, float], ...] = ((60, 4.0), (120, 1.0), (72, 9.0))
"""``(limit_rpm, latency)`` pairs a *function* answer is also tried on.  In the last one, rate x latency is
not a whole number (1.2 per second x 9 s = 10.8): rounding up or to the nearest sends too fast."""

_TITLE = "lesson02.check"

_GUIDE = Guide(
    "lesson02",
    [
        "A semaphore does not limit the rate, only how many are in flight; with a fixed latency, the two are "
        "tied by Little's law: in flight = rate x latency.",
        "Put the limit in requests per second first: 60 per minute is 1 per second; each request holds its "
        "place for 2 s, so 1/s x 2 s requests are in flight when the server is used exactly at its limit.",
        "max_concurrent_for(limit_rpm, latency) returns max(1, math.floor(limit_rpm / 60 * latency + 1e-9)): "
        "round *down* when rate x latency is not a whole number (10.8 -> 10): one more sends too fast.",
    ],
    solution="throttle_lab.lab.solutions.lesson02",
)


def hint(level: int | None = None) -> None:
    """Print the next hint for the exercise (or hint number ``level``), one level more concrete each call."""
    _GUIDE.hint(level)


def solution() -> None:
    """Print the reference solution (read it, then close it and write your own)."""
    _GUIDE.solution()


def server(latency: float = LATENCY, rpm: int | None = LIMIT_RPM, window: float = WINDOW) -> ServerConfig:
    """The exercise's mock server: ``rpm`` per minute over ``window`` s; every request takes ``latency`` s."""
    return ServerConfig(rpm=rpm, window=window, ttft=latency, per_token=0.0, jitter=0.0)


def run_cap(
    max_concurrent: int, latency: float = LATENCY, requests: int = REQUESTS, rpm: int | None = LIMIT_RPM
) -> Trace:
    """Send ``requests`` (all at once) through a semaphore of ``max_concurrent`` to :func:`server`."""
    return simulate(
        "semaphore", Workload(requests=requests), server(latency, rpm), max_concurrent=max_concurrent
    )


def littles_law_rpm(max_concurrent: float, latency: float) -> float:
    """Requests per minute that ``max_concurrent`` always-busy slots give at ``latency`` s per request."""
    return max_concurrent / latency * 60.0


def completed_per_minute(trace: Trace) -> float:
    """Completed requests per minute of makespan: :meth:`Trace.summary`'s achieved rate, by its name here.

    The makespan runs to the last request to finish, given up or not, so 19 completed of 120 while the
    rest fail for a minute is a low rate, not the rate of the 19 alone.
    """
    return trace.summary().achieved_per_minute


def _valid(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _rate_limited(trace: Trace) -> int:
    return trace.filter(kind="limited", source="server").count()


def _law(cap: int, rpm: int, latency: float) -> str:
    return (
        f"{cap} in flight x (60 s / {latency:g} s per request) = {littles_law_rpm(cap, latency):g} "
        f"requests/min against a limit of {rpm}"
    )


def _answer(
    choice: int | Callable[[int, float], Any], rpm: int, latency: float, report: Report, label: str
) -> int | None:
    """The cap ``choice`` gives for this scenario, or None after adding a failing line to ``report``."""
    cap: Any = choice(rpm, latency) if callable(choice) else choice
    if _valid(cap):
        return int(cap)
    report.add(
        label,
        False,
        f"max_concurrent {cap!r}",
        "a cap counts requests: return a whole number of at least 1 (int(...) rounds toward zero)",
    )
    return None


def _grade_main(cap: int, report: Report) -> None:
    """The exercise's own scenario, line by line."""
    trace = run_cap(cap)
    law = _law(cap, LIMIT_RPM, LATENCY)
    no_429s, *steady = check_trace(
        trace, rpm=LIMIT_RPM, max_429s=0, min_utilisation=MIN_UTILISATION, window=WINDOW
    ).results
    report.add(
        f"no 429s at {LIMIT_RPM} rpm, {LATENCY:g} s per request",
        no_429s.passed,
        f"max_concurrent {cap}: {no_429s.detail}",
        f"{law}: fewer in flight (Little's law: in flight = rate x latency)",
    )
    summary = trace.summary(LIMIT_RPM)
    report.add(
        "every request completed",
        summary.failed == 0,
        f"{summary.completed} of {summary.requests}",
        f"{summary.failed} gave up after the client's retries (3 tries each, the SDK's default) were all "
        "refused: a client that keeps sending too fast keeps being refused",
    )
    if no_429s.passed:  # the share of the limit only means something when nothing was refused
        for result in steady:
            report.add(result.name, result.passed, result.detail, f"{law}: more in flight would use more")


def _grade_other(cap: int, rpm: int, latency: float, report: Report, label: str) -> None:
    """Another scenario, in one line."""
    trace = run_cap(cap, latency=latency, rpm=rpm)
    graded = check_trace(trace, rpm=rpm, max_429s=0, min_utilisation=MIN_UTILISATION, window=WINDOW)
    limited = _rate_limited(trace)
    share = graded.results[-1].detail
    exact = rpm / 60.0 * latency
    if limited:
        hint = f"{_law(cap, rpm, latency)}: too many in flight"
        if cap - 1 < exact < cap - 1e-9:  # one more than rate x latency allows: rounded up
            hint = (
                f"rate x latency = {rpm / 60.0:g}/s x {latency:g} s = {exact:g} here, and you rounded up to "
                f"{cap}: {_law(cap, rpm, latency)}. Round down (math.floor): one more sends too fast"
            )
        detail = f"max_concurrent {cap}: {limited} 429s"
    else:
        hint = f"{_law(cap, rpm, latency)}: more in flight would use more"
        detail = f"max_concurrent {cap}: no 429s, {share}"
    report.add(label, graded.passed, detail, hint)


def check(max_concurrent: int | Callable[[int, float], int] | None) -> Report:
    """Grade a concurrency cap: a number, or a function ``max_concurrent_for(limit_rpm, latency)``.

    The exercise's workload runs on virtual time against :func:`server`; the server's view is graded with
    :func:`throttle_lab.lab.grading.check_trace`.  A function is also tried on :data:`OTHER_SCENARIOS`.
    """
    if max_concurrent is None:
        return Report(_TITLE, attempted=False, note="give me your answer, then run me again.")
    report = Report(_TITLE)
    try:
        cap = _answer(max_concurrent, LIMIT_RPM, LATENCY, report, "a whole number of requests in flight")
        if cap is None:
            return report
        _grade_main(cap, report)
        if callable(max_concurrent):
            for rpm, latency in OTHER_SCENARIOS:
                label = f"also right for {rpm} rpm at {latency:g} s per request"
                other = _answer(max_concurrent, rpm, latency, report, label)
                if other is not None:
                    _grade_other(other, rpm, latency, report, label)
    except NotImplementedError:
        return Report(
            _TITLE,
            attempted=False,
            note="your function still raises NotImplementedError; fill it in and run me again.",
        )
    except Exception as exc:  # the learner's function: report it, never crash the notebook
        report.add(
            "your function runs",
            False,
            f"{type(exc).__name__}: {exc}".splitlines()[0],
            "call it yourself, e.g. max_concurrent_for(60, 2.0), to see the traceback",
        )
        return report
    if report.passed:
        report.note = _latency_note(cap)
    return report


def _latency_note(cap: int) -> str:
    """What the same cap does when the latency changes: the point of the lesson."""
    faster = run_cap(cap, latency=LATENCY / 2)
    slower = run_cap(cap, latency=LATENCY * 2)
    return (
        f"Right for {LATENCY:g} s requests. Keep max_concurrent {cap}, and if the server answered in "
        f"{LATENCY / 2:g} s: {_rate_limited(faster)} 429s and {faster.summary().failed} requests lost; in "
        f"{LATENCY * 2:g} s: {completed_per_minute(slower):.0f} requests/min, "
        f"{1 - completed_per_minute(slower) / LIMIT_RPM:.0%} of the limit unused. "
        "A semaphore sets how many at once, not how fast."
    )
