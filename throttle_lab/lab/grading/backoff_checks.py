"""Grading a retry-delay function: never before the hint, growing, capped, and spread out (jitter)."""

from __future__ import annotations

from collections.abc import Callable

from .report import Report, not_attempted


def check_backoff(delay: Callable[[int, float | None], float] | None, *, cap: float = 60.0) -> Report:
    """Grade a retry-delay function ``delay(attempt, hint) -> seconds`` (attempt counts from 0).

    Checks: never earlier than the server's hint; grows with the attempt when there is no hint; stays
    within ``cap`` (unless the hint says more); spreads out (jitter), so a herd does not retry in step.
    """
    title = "check_backoff"
    if delay is None:
        return not_attempted(title, "your delay function")
    report = Report(title)
    try:
        delays = {(a, h): [float(delay(a, h)) for _ in range(20)] for a in range(6) for h in (None, 0.5, 7.0)}
    except NotImplementedError:
        return not_attempted(title, "your delay function")
    except Exception as exc:  # the learner's code: report, don't crash the notebook
        report.add("runs", False, f"{type(exc).__name__}: {exc}", "delay(attempt, hint) must return a number")
        return report
    early = [(a, h, d) for (a, h), ds in delays.items() if h is not None for d in ds if d < h]
    report.add(
        "never earlier than the hint",
        not early,
        f"{len(early)} delays below the hint" if early else "all at or above it",
        "return max(your delay, hint) when the server gave a hint",
    )
    means = [sum(delays[(a, None)]) / 20 for a in range(6)]
    report.add(
        "grows with the attempt",
        means[-1] > means[0] * 2,
        f"mean {means[0]:.2f} s at attempt 0, {means[-1]:.2f} s at attempt 5",
        "multiply the base delay by 2 for every attempt",
    )
    over = [d for (a, h), ds in delays.items() if h is None for d in ds if d > cap]
    report.add(
        f"capped at {cap:g} s",
        not over,
        f"max {max(max(ds) for ds in delays.values()):.2f} s",
        "take min(cap, ...) before adding the hint",
    )
    spread = len({round(d, 6) for d in delays[(3, None)]})
    report.add(
        "jittered",
        spread > 1,
        f"{spread} different delays for 20 tries of attempt 3",
        "add randomness (e.g. uniform(0, delay)) so clients that failed together retry apart",
    )
    return report
