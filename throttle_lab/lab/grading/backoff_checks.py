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
    # The cap is also tried far out, where any exponential without one is past it (0.001 s * 2**30 is
    # 12 days): attempts 0-5 alone let an uncapped 0.5 * 2**attempt (16 s at most) pass for capped.
    unhinted = {a: delays[(a, None)] for a in range(6)}
    far_failure = ""
    for attempt in _FAR_ATTEMPTS:
        try:
            unhinted[attempt] = [float(delay(attempt, None)) for _ in range(5)]
        except Exception as exc:  # e.g. a table of delays that ends: the learner's code, report it
            far_failure = f"delay({attempt}, None) raised {type(exc).__name__}: {exc}"
            break
    early = [(a, h, d) for (a, h), ds in delays.items() if h is not None for d in ds if d < h]
    report.add(
        "never earlier than the hint",
        not early,
        f"{len(early)} delays below the hint" if early else "all at or above it",
        "wait the hint and then your backoff on top: hint + your delay -- not max(your delay, hint), which "
        "brings back at one instant every client the server gave the same hint",
    )
    means = [sum(delays[(a, None)]) / 20 for a in range(6)]
    report.add(
        "grows with the attempt",
        means[-1] > means[0] * 2,
        f"mean {means[0]:.2f} s at attempt 0, {means[-1]:.2f} s at attempt 5",
        "multiply the base delay by 2 for every attempt (base * 2**attempt)",
    )
    highest = max(max(ds) for ds in unhinted.values())
    first_over = next((a for a, ds in unhinted.items() if max(ds) > cap), None)
    if far_failure:
        detail, hint = (
            far_failure,
            "every attempt needs a delay, however many retries: min(cap, base * 2**attempt)",
        )
    elif first_over is not None:
        detail = f"attempt {first_over} waits up to {max(unhinted[first_over]):.4g} s"
        hint = (
            "a long outage would mean hour-long sleeps: take min(cap, base * 2**attempt) before drawing the "
            "jitter and adding the hint"
        )
    else:
        detail, hint = f"at most {highest:.2f} s, up to attempt {max(unhinted)}", ""
    report.add(f"capped at {cap:g} s", not far_failure and first_over is None, detail, hint)
    spread = len({round(d, 6) for d in delays[(3, None)]})
    report.add(
        "jittered",
        spread > 1,
        f"{spread} different delays for 20 tries of attempt 3",
        "add randomness (e.g. uniform(0, delay)) so clients that failed together retry apart; draw it "
        "from one generator made once -- one seeded afresh on every call draws the same number every time",
    )
    return report


_FAR_ATTEMPTS = (10, 20, 30)
"""Attempts the cap is also tried at (beyond the 0-5 the other checks use)."""
