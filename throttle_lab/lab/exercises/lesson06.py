"""Lesson 06 -- Retry-After, backoff and jitter.  Write a retry delay that breaks up a herd.

The exercise: write ``delay(attempt, hint) -> seconds``, the wait before retry number ``attempt`` (0 for
the first retry), where ``hint`` is the server's ``retry-after`` in seconds or ``None``::

    lesson06.check(delay)
    lesson06.hint()       # stuck? a hint, one level more concrete each call
    lesson06.solution()   # the reference solution, printed

It is graded twice.  First on its own, by :func:`throttle_lab.lab.grading.check_backoff` (never earlier than
the hint, grows with the attempt, capped, jittered).  Then in a herd: :data:`HERD_CLIENTS` clients hit the
mock server at the same instant, each retrying on its own with your function.  The server hands all of
them the *same* hint, so a delay that returns ``max(hint, jitter)`` sends the whole herd back at that one
instant; a good delay spreads them out and still gets everyone through.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from mock_server import ServerConfig

from ...client.backoff import Backoff
from ...client.retry import RetryPolicy
from ...core.trace import Trace
from ...core.validation import is_real
from ..experiments import ClientStack, Design, Workload, simulate
from ..grading import Guide, Report, check_backoff

__all__ = [
    "HERD_ATTEMPTS",
    "HERD_CLIENTS",
    "MAX_WAVE",
    "WAVE_SPAN",
    "FunctionBackoff",
    "check",
    "herd",
    "herd_design",
    "herd_server",
    "hint",
    "largest_wave",
    "retry_arrivals",
    "solution",
]

DelayFunction = Callable[[int, "float | None"], float]

HERD_CLIENTS = 30
"""Clients in the exercise's herd, all sending their first request at t = 0."""
HERD_ATTEMPTS = 10
"""Attempts each client may make (the first included)."""
WAVE_SPAN = 0.01
"""Seconds within which retries reaching the server together count as one wave."""
MAX_WAVE = 10
"""The largest wave of retries the herd may send (a herd in lockstep sends 25: everyone refused at once)."""

_TITLE = "lesson06.check"

_GUIDE = Guide(
    "lesson06",
    [
        "Three rules: never retry before the server's hint; without a hint, wait longer after every failed "
        "attempt, up to a cap; and add randomness, so clients that failed together come back apart.",
        "Every client in a herd gets the *same* hint, so the randomness must go on top of it: hint + jitter. "
        "max(hint, jitter) -- or the hint alone -- brings the whole herd back at the hint's instant.",
        "rng = random.Random() made once, outside the function; then return "
        "(hint or 0.0) + rng.uniform(0.0, min(30.0, 0.5 * 2**attempt)).",
    ],
    solution="throttle_lab.lab.solutions.lesson06",
)


def hint(level: int | None = None) -> None:
    """Print the next hint for the exercise (or hint number ``level``), one level more concrete each call."""
    _GUIDE.hint(level)


def solution() -> None:
    """Print the reference solution (read it, then close it and write your own)."""
    _GUIDE.solution()


def herd_server(*, count_rejected: bool = False) -> ServerConfig:
    """The herd's server: 60 requests per minute enforced over 5 s (a bucket of 5, refilling 1 per s)."""
    return ServerConfig(rpm=60, window=5.0, count_rejected=count_rejected)


class FunctionBackoff:
    """A plain ``delay(attempt, hint)`` function as a :class:`~throttle_lab.Backoff` for a RetryPolicy.

    It checks every answer: a delay that is not a finite number of seconds >= 0 is remembered in
    ``problem`` (and raises ``ValueError``), so a grader can say what went wrong.
    """

    def __init__(self, delay: DelayFunction) -> None:
        self._delay = delay
        self.problem: str | None = None

    def delay(self, attempt: int, hint: float | None = None) -> float:
        value: Any = self._delay(attempt, hint)
        ok = is_real(value)
        if not ok or value < 0:
            self.problem = f"delay({attempt}, {hint!r}) returned {value!r}"
            raise ValueError(f"{self.problem}: a delay must be a finite number of seconds >= 0")
        return float(value)

    def reset(self) -> None:
        return None


def herd_design(backoff: Callable[[], Backoff], name: str = "herd") -> Design:
    """No limiter; every client retries on its own (no shared cool-down), up to HERD_ATTEMPTS times.

    ``backoff()`` builds the strategy for one run (one instance serves every client of the run).
    """
    return Design(
        name,
        lambda: ClientStack(
            retry=RetryPolicy(
                max_attempts=HERD_ATTEMPTS, max_elapsed=3600.0, backoff=backoff(), pause_on_429=False
            )
        ),
        "no limiter; each client retries on its own",
    )


def herd(
    backoff: Callable[[], Backoff],
    clients: int = HERD_CLIENTS,
    *,
    count_rejected: bool = False,
    name: str = "herd",
) -> Trace:
    """``clients`` requests at t = 0 against :func:`herd_server`, each retrying with ``backoff()``."""
    return simulate(
        herd_design(backoff, name), Workload(requests=clients), herd_server(count_rejected=count_rejected)
    )


def retry_arrivals(trace: Trace) -> Trace:
    """The server's ``arrived`` events that are retries (not a request's first arrival)."""
    seen: set[object] = set()
    retries = []
    for event in trace.filter(kind="arrived", source="server"):
        if event.request in seen:
            retries.append(event)
        seen.add(event.request)
    return Trace(retries)


def largest_wave(trace: Trace, span: float = WAVE_SPAN) -> int:
    """The most retries that reached the server within any ``span`` seconds."""
    return int(retry_arrivals(trace).max_in_window("arrived", span))


def check(delay: DelayFunction | None) -> Report:
    """Grade ``delay(attempt, hint)``: alone (check_backoff), then as the retry rule of a herd."""
    basic = check_backoff(delay)
    if not basic.attempted or delay is None:
        return Report(_TITLE, attempted=False, note=basic.note)
    report = Report(_TITLE, list(basic.results))
    if any(r.name == "runs" for r in report.results):
        return report

    adapter = FunctionBackoff(delay)
    state = random.getstate()
    random.seed(0)  # a delay drawn from the random module gives the same herd every time
    try:
        trace = herd(lambda: adapter)
    except Exception as exc:  # the learner's code: report, don't crash the notebook
        report.add("runs in a herd", False, f"{type(exc).__name__}: {exc}", "delay must return a number")
        return report
    finally:
        random.setstate(state)
    if adapter.problem is not None:
        report.add("runs in a herd", False, adapter.problem, "return a finite number of seconds, >= 0")
        return report

    summary = trace.summary()
    report.add(
        f"a herd of {HERD_CLIENTS} gets through",
        summary.completed == HERD_CLIENTS,
        f"{summary.completed} of {HERD_CLIENTS} done within {HERD_ATTEMPTS} attempts, "
        f"{summary.rate_limited} 429s",
        "some clients ran out of attempts: let the delay grow (and keep it capped) so the server can refill",
    )
    wave = largest_wave(trace)
    report.add(
        "the herd breaks up",
        wave <= MAX_WAVE,
        f"biggest wave: {wave} retries within {WAVE_SPAN * 1000:g} ms; at most {MAX_WAVE} allowed",
        "" if wave <= MAX_WAVE else _herd_hint(delay),
    )
    return report


def _herd_hint(delay: DelayFunction) -> str:
    """Why a herd stayed together: the hint swallowed the jitter, there was none, or it was too narrow."""
    hint = 7.0
    try:
        waits = {attempt: [float(delay(attempt, hint)) - hint for _ in range(20)] for attempt in range(1, 6)}
    except Exception:  # it ran in the herd; if it fails now, the general advice will do
        waits = {}
    extra = [w for ws in waits.values() for w in ws]
    spread = max((max(ws) - min(ws) for ws in waits.values()), default=0.0)
    if extra and sum(abs(w) < 1e-9 for w in extra) >= len(extra) / 2:
        return (
            "the server gave every client the same hint, and waiting just the hint -- or "
            "max(hint, jitter) -- sends them all back at that instant: add the jitter on top of the hint "
            "instead (hint + a random share of the backoff)"
        )
    if extra and spread < 1e-9:
        return (
            "clients with the same hint and attempt all wait exactly as long, so they stay in step: add a "
            "random share of the backoff, drawn from one generator made once"
        )
    if extra and spread < 1.0:
        return (
            f"your jitter spreads the herd over {spread:.2g} s only: draw it over a range that grows with "
            "the attempt, e.g. hint + uniform(0, min(cap, base * 2**attempt))"
        )
    return (
        "retries still arrive together: add the jitter on top of the hint (hint + a random share of the "
        "backoff), over a range that grows with the attempt"
    )
