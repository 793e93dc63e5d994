"""Lesson 07 -- adaptive throttling.  Tune AIMD so a brownout costs little and the traffic keeps flowing.

The exercise: the mock server's ``"brownout"`` preset allows 120 requests per minute, drops to 30 for a
minute after 30 s, then recovers.  :data:`WORKLOAD` sends 100 requests per minute through a throttler
whose rate an :class:`~throttle_lab.AIMD` controller steers (:func:`aimd_design`).  Choose the controller's
``increase`` (requests per second added per success), ``decrease`` (the factor applied on a 429) and
``cooldown`` (seconds during which further 429s count as the same signal)::

    lesson07.check({"increase": ..., "decrease": ..., "cooldown": ...})
    lesson07.hint()       # stuck? a hint, one level more concrete each call
    lesson07.solution()   # the reference parameters and the arithmetic behind them

Pass: every request completes, at most :data:`MAX_429S` 429s, a throughput of at least
:data:`MIN_THROUGHPUT` of the rate the requests arrive at, and the rate back to 90 % of the ceiling within
:data:`MAX_RECOVERY` seconds of the limit's return.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any

from mock_server import ServerConfig

from ...client.adaptive import AIMD
from ...core.throttler import Throttler
from ...core.trace import Trace
from ...core.validation import is_real
from ..experiments import ClientStack, Design, Workload, seeded_retry, simulate
from ..grading import Guide, Report

__all__ = [
    "CEILING_RPM",
    "MAX_429S",
    "MAX_RECOVERY",
    "MIN_THROUGHPUT",
    "PARAMETERS",
    "WORKLOAD",
    "aimd_design",
    "brownout",
    "check",
    "hint",
    "recovery_time",
    "run_aimd",
    "solution",
]

CEILING_RPM = 120.0
"""The rate the controller starts at and never exceeds: the server's normal limit, per minute."""
WORKLOAD = Workload(requests=250, arrival="steady", per_minute=100, seed=3)
"""The exercise's traffic: 250 requests arriving steadily at 100 per minute (2.5 minutes of work)."""
MAX_429S = 5
"""The most 429s the brownout may cost."""
MIN_THROUGHPUT = 0.85
"""Completions per minute, as a share of the 100 per minute that arrive."""
MAX_RECOVERY = 16.0
"""Seconds after the limit returns by which the rate must be back to 90 % of the ceiling."""
PARAMETERS = ("increase", "decrease", "cooldown")
"""The keys ``check`` expects."""

_TITLE = "lesson07.check"

_GUIDE = Guide(
    "lesson07",
    [
        "Run check with the defaults (0.04, 0.5, 2.0) and read which line fails: too many 429s means "
        "the rate stays above the brownout's limit too long; a slow recovery means it climbs back too "
        "slowly once the limit returns.",
        "The brownout cuts the limit to a quarter (120 -> 30/min). decrease is the factor the rate is "
        "multiplied by, so 0.5 needs three cuts -- three 429s at least -- to get under it: cut harder, "
        "then climb faster (a larger increase) to make up for it, and keep the cool-down near one "
        "response time so one burst's 429s count once.",
        "decrease about 0.3 (one cut gets near 30/min), increase about 0.08 requests/s per success (at r "
        "requests/s that adds 8 % of the rate every second), cooldown about 1 s.",
    ],
    solution="throttle_lab.lab.solutions.lesson07",
)


def hint(level: int | None = None) -> None:
    """Print the next hint for the exercise (or hint number ``level``), one level more concrete each call."""
    _GUIDE.hint(level)


def solution() -> None:
    """Print the reference solution (read it, then close it and write your own)."""
    _GUIDE.solution()


def brownout() -> ServerConfig:
    """The server: 120/min, a quarter of that from 30 s to 90 s, then 120/min again."""
    return ServerConfig.preset("brownout")


def aimd_design(
    increase: float,
    decrease: float,
    cooldown: float,
    *,
    ceiling_rpm: float = CEILING_RPM,
    built: list[AIMD] | None = None,
    name: str = "aimd",
) -> Design:
    """A throttler paced at ``ceiling_rpm`` whose rate an AIMD controller steers (as ``"adaptive"`` does).

    The controller's rate is in requests per *second*: it starts at the ceiling, adds ``increase`` per
    success, multiplies by ``decrease`` on a 429 (at most once per ``cooldown`` seconds) and never falls
    below a tenth of the ceiling.  Each run builds a fresh controller; pass a list as ``built`` to get
    it back afterwards (its ``history`` is the sawtooth).
    """
    ceiling = ceiling_rpm / 60.0

    def build() -> ClientStack:
        # A one-second bucket: a rate the controller lowers shows up in the traffic at once.
        throttler = Throttler(rpm=ceiling_rpm, window=1.0, name=name)
        aimd = AIMD(
            ceiling,
            floor=ceiling / 10.0,
            ceiling=ceiling,
            increase=increase,
            decrease=decrease,
            cooldown=cooldown,
        )
        aimd.on_change = lambda rate: throttler.set_limits(rpm=rate * 60.0)
        if built is not None:
            built.append(aimd)
        return ClientStack(limiter=throttler, retry=seeded_retry(), aimd=aimd)

    return Design(
        name, build, f"AIMD: +{increase:g}/s per success, x{decrease:g} per 429, cool-down {cooldown:g} s"
    )


def run_aimd(
    increase: float,
    decrease: float,
    cooldown: float,
    *,
    workload: Workload = WORKLOAD,
    server: ServerConfig | None = None,
) -> tuple[Trace, AIMD]:
    """Run :func:`aimd_design` through the brownout; return the trace and the controller it used."""
    built: list[AIMD] = []
    design = aimd_design(increase, decrease, cooldown, built=built)
    trace = simulate(design, workload, server if server is not None else brownout())
    return trace, built[-1]


def recovery_time(aimd: AIMD, since: float, share: float = 0.9) -> float | None:
    """Seconds from ``since`` until the controller's rate was back to ``share`` of its ceiling.

    ``0.0`` if it was there already; ``None`` if it never got there.
    """
    target = share * aimd.ceiling
    history = aimd.history
    before = [rate for t, rate in history if t <= since]
    if before and before[-1] >= target:
        return 0.0
    return next((t - since for t, rate in history if t > since and rate >= target), None)


def _parameters(params: Any) -> dict[str, float]:
    """The three numbers, or ValueError saying what is wrong."""
    if not isinstance(params, Mapping):
        raise ValueError(f"expected a dict with {', '.join(PARAMETERS)}, got {type(params).__name__}")
    missing = [key for key in PARAMETERS if key not in params]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    values = {}
    for key in PARAMETERS:
        value = params[key]
        ok = is_real(value)
        if not ok:
            raise ValueError(f"{key} must be a number, got {value!r}")
        values[key] = float(value)
    # The controller validates the rest (increase > 0, 0 < decrease < 1, cooldown >= 0).
    AIMD(
        1.0,
        floor=1.0,
        ceiling=1.0,
        increase=values["increase"],
        decrease=values["decrease"],
        cooldown=values["cooldown"],
    )
    return values


def check(params: Mapping[str, float] | Callable[[], Mapping[str, float]] | None) -> Report:
    """Run the brownout with your AIMD parameters (a dict, or a function returning one) and grade it."""
    if params is None:
        return Report(_TITLE, attempted=False, note="give your parameters as a dict, then run me again.")
    if callable(params):
        try:
            params = params()
        except NotImplementedError:
            return Report(
                _TITLE,
                attempted=False,
                note="your function still raises NotImplementedError; fill it in and run me again.",
            )
        except Exception as exc:  # the learner's code: report, don't crash the notebook
            report = Report(_TITLE)
            report.add(
                "your function runs", False, f"{type(exc).__name__}: {exc}", "return a dict of numbers"
            )
            return report
    report = Report(_TITLE)
    try:
        values = _parameters(params)
    except ValueError as exc:
        report.add(
            "valid parameters",
            False,
            str(exc),
            "increase > 0 (requests/s per success), 0 < decrease < 1, cooldown >= 0 seconds",
        )
        return report
    trace, aimd = run_aimd(values["increase"], values["decrease"], values["cooldown"])
    summary = trace.summary()
    why = _why_429s(aimd, values["decrease"], brownout())
    report.add(
        "every request completes",
        summary.completed == WORKLOAD.requests,
        f"{summary.completed} of {WORKLOAD.requests}",
        f"requests gave up after too many 429s: {why}",
    )
    report.add(
        f"at most {MAX_429S} 429s",
        summary.rate_limited <= MAX_429S,
        f"{summary.rate_limited} 429s",
        f"each 429 means the rate was still too high: {why}",
    )
    throughput = summary.achieved_per_minute / WORKLOAD.per_minute
    report.add(
        f"throughput at least {MIN_THROUGHPUT:.0%} of the arrival rate",
        throughput >= MIN_THROUGHPUT,
        f"{summary.achieved_per_minute:.1f} per minute = {throughput:.1%} of {WORKLOAD.per_minute:g}",
        "the rate climbs back too slowly after the brownout: a larger increase",
    )
    back = _limit_returns(brownout())
    if back is not None:
        recovered = recovery_time(aimd, back)
        report.add(
            f"back to 90 % of {CEILING_RPM:g}/min within {MAX_RECOVERY:g} s of the limit's return",
            recovered is not None and recovered <= MAX_RECOVERY,
            "never" if recovered is None else f"{recovered:.1f} s",
            "the rate climbs back too slowly after the brownout: a larger increase",
        )
        if recovered is None:
            report.note = (
                f"After the limit came back at {back:g} s, your rate never got back to 90 % of 120/min."
            )
        elif recovered == 0:
            report.note = f"Your rate was at 90 % of 120/min or more when the limit came back at {back:g} s."
        else:
            report.note = (
                f"After the limit came back at {back:g} s, your rate took {recovered:.1f} s "
                "to get back to 90 % of 120/min."
            )
    return report


def _why_429s(aimd: AIMD, decrease: float, server: ServerConfig) -> str:
    """Which of the three settings let the rate stay above the brownout's limit, read from the sawtooth."""
    stats = aimd.statistics()
    reasons = []
    long_cooldown = stats.ignored > stats.cuts
    if long_cooldown:
        reasons.append(
            f"{stats.ignored} of your {stats.rate_limited} 429s fell inside the cool-down and were ignored, "
            "so the rate stayed too high: a shorter cooldown (about one response time, ~1 s)"
        )
    schedule = server.limit_schedule
    if not schedule or schedule[0][1] is None:
        return "; ".join(reasons) or "cut harder (smaller decrease) and keep the cool-down short"
    start, low = schedule[0][0], schedule[0][1] / 60.0
    end = schedule[-1][0] if len(schedule) > 1 else math.inf
    history = aimd.history
    under = next((t for t, rate in history if start <= t < end and rate <= low * (1 + 1e-9)), None)
    cuts = [(t, before) for (_, before), (t, rate) in itertools.pairwise(history) if rate < before]
    before_under = sum(1 for t, _ in cuts if under is None or t <= under)
    after_under = sum(1 for t, _ in cuts if under is not None and under < t < end)
    # Climbing back into the brownout: after the first cut, the rate got back to where it was before it.
    climbed_back = bool(cuts) and any(
        cuts[0][0] < t < end and rate >= cuts[0][1] * (1 - 1e-9) for t, rate in history
    )
    if decrease > 0.5 or (not long_cooldown and not climbed_back and before_under > after_under):
        got_under = (
            f"it took {before_under} cuts to get under the brownout's {low * 60:g}/min"
            if under is not None
            else f"the rate never got under the brownout's {low * 60:g}/min"
        )
        reasons.append(
            f"{got_under}: cut harder (a smaller decrease -- it is the factor the rate is multiplied by, so "
            "0.7 keeps 70 %)"
        )
    if not long_cooldown and (climbed_back or after_under > before_under):
        reasons.append(
            "between cuts your rate climbed back over the brownout's limit: a smaller increase (it is "
            "requests/s added per success, so at r requests/s the rate grows by increase x r every second)"
        )
    return "; and ".join(reasons) or "cut harder (smaller decrease) and keep the cool-down short"


def _limit_returns(server: ServerConfig) -> float | None:
    """When the schedule's last change (the return to normal) happens, in seconds."""
    return server.limit_schedule[-1][0] if server.limit_schedule else None
