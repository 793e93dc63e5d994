"""Grading a limiter by behaviour: the limit in every window, FIFO, no polling, fail fast, cancellation."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

from ...core.runtime import VirtualTimeDeadlock, VirtualTimeError, VirtualTimeLivelock
from .report import Report, not_attempted
from .sandbox import (
    acquire_once,
    bucket_excess,
    drive,
    inverted_pairs,
    max_in_window,
    run_counting,
)


# ------------------------------------------------------------------------------------------------ checks
def check_limiter(
    make: Callable[[], Any] | None,
    *,
    rate: float | None = None,
    capacity: float | None = None,
    max_requests: float | None = None,
    window_seconds: float | None = None,
) -> Report:
    """Grade a rate limiter (your class) by behaviour.  ``make()`` must build a fresh one.

    State its promise one of two ways:

    * a bucket -- ``rate`` per second with bursts of ``capacity``: over any span T at most
      ``capacity + rate x T`` units;
    * a window -- at most ``max_requests`` in any ``window_seconds``.

    Checks: everyone gets through in about the ideal time; the promise holds; first come, first served;
    a request heavier than the limit fails fast with ``ValueError``; no polling (timers per grant); a
    cancelled waiter takes nothing from the others.
    """
    title = "check_limiter"
    bucket = rate is not None and capacity is not None
    window = max_requests is not None and window_seconds is not None
    if bucket == window:
        raise ValueError(
            "state the promise as rate= and capacity= (a bucket) or max_requests= and window_seconds="
        )
    if make is None:
        return not_attempted(title, "your limiter")
    limit = float(capacity if bucket else max_requests)  # type: ignore[arg-type]
    per_second = float(rate) if bucket else float(max_requests) / float(window_seconds)  # type: ignore[arg-type]
    span = (limit / per_second) if bucket else float(window_seconds)  # type: ignore[arg-type]
    report = Report(title)
    n = int(3 * limit + 5)
    ideal = (n - limit) / per_second if bucket else math.ceil(n / limit - 1) * span
    horizon = 20 * ideal + 100 * span

    try:
        burst = drive(make, [(0.0, 1.0)] * n, horizon)
    except NotImplementedError:
        return not_attempted(title, "your limiter")
    except (TimeoutError, VirtualTimeError) as exc:
        report.add("everyone gets through", False, type(exc).__name__, _stuck_hint(exc))
        return report
    makespan = max(t for t, _, _ in burst.grants)
    report.add(
        "everyone gets through in about the ideal time",
        len(burst.grants) == n and makespan <= ideal * 1.02 + 1e-6,
        f"{n} requests at once: last granted at {makespan:.3f} s, ideal {ideal:.3f} s",
        "too slow: wake up exactly when capacity is back, not a fixed interval later",
    )
    # The promise is checked on the burst at t=0 and on a burst arriving just before the end of the first
    # window: a clock-aligned fixed window passes the first and lets twice the limit through the second.
    runs = [burst]
    try:
        runs.append(drive(make, [(0.9 * span, 1.0)] * n, horizon))
    except (TimeoutError, VirtualTimeError) as exc:
        report.add(
            "everyone gets through a burst just before a window ends",
            False,
            type(exc).__name__,
            _stuck_hint(exc),
        )
    if bucket:
        excess = max(bucket_excess(run.grants, limit, per_second) for run in runs)
        report.add(
            "never more than capacity + rate x T",
            excess <= 1e-6,
            f"worst excess {max(excess, 0):.3g}",
            "you grant faster than the bucket refills",
        )
    else:
        most = max(max_in_window(run.grants, span) for run in runs)
        report.add(
            f"never more than {limit:g} in any {span:g} s window",
            most <= limit,
            f"busiest window held {most:g}",
            "count every grant still inside the window, boundaries included (a window that resets on the "
            "clock lets a burst through on each side of the reset)",
        )

    arrivals = [(round(i * span / (7 * limit), 9), 1.0) for i in range(n)]
    try:
        staggered = drive(make, arrivals, horizon)
        inversions = inverted_pairs(staggered.order, list(range(n)))
        report.add(
            "first come, first served",
            inversions == 0,
            f"{inversions} pairs served out of order",
            "keep waiters in a queue and always serve its head",
        )
    except (TimeoutError, VirtualTimeError) as exc:
        report.add("first come, first served", False, type(exc).__name__, _stuck_hint(exc))

    report.add(*_oversize(make, limit, horizon))

    timers_per_grant = burst.timers / n
    report.add(
        "no polling",
        timers_per_grant <= 3.0,
        f"{timers_per_grant:.1f} timers per grant",
        "don't sleep-and-retry in a loop: compute when the head can go and sleep exactly until then",
    )

    report.add(*_cancellation(make, limit, span, horizon))
    return report


def check_at_two_settings(
    title: str,
    grade: Callable[[tuple[float, float]], Report],
    first: tuple[float, float],
    second: tuple[float, float],
    second_name: str,
    *,
    crash_hint: Callable[[BaseException], str],
    not_attempted: Callable[[], Report],
    second_hint: str | None = None,
) -> Report:
    """Grade a learner's class at one setting and, if everything passes, once more at another.

    The second run catches numbers typed into the class instead of read from its arguments.  ``grade``
    builds and grades the class for a setting; a stub (``NotImplementedError``) is "not attempted", and
    any other exception from the learner's code becomes a failed line with ``crash_hint(exc)``.  A failure
    at the second setting is hinted with ``second_hint``, or with the first failing check's own hint.
    """
    report = Report(title)
    try:
        main = grade(first)
    except NotImplementedError:
        return not_attempted()
    except Exception as exc:  # the learner's code: report it, never crash the notebook
        report.add("runs", False, f"{type(exc).__name__}: {exc}".splitlines()[0], crash_hint(exc))
        return report
    if not main.attempted:
        return not_attempted()
    report.results.extend(main.results)
    if not main.passed:
        return report  # fix these first; the second setting would only repeat them
    try:
        other = grade(second)
    except Exception as exc:
        report.add(second_name, False, f"{type(exc).__name__}: {exc}".splitlines()[0], crash_hint(exc))
        return report
    failed = [r for r in other.results if not r.passed]
    report.add(
        second_name,
        not failed,
        "all checks passed" if not failed else "failed: " + "; ".join(r.name for r in failed),
        second_hint if second_hint is not None else (failed[0].hint if failed else ""),
    )
    return report


def _stuck_hint(exc: BaseException) -> str:
    if isinstance(exc, VirtualTimeLivelock):
        return (
            "it spun without letting time pass: a wait computed as 0 (or a hair below) while the condition "
            "still fails. Test expiry as `t0 + window <= now` -- the very moment you sleep until -- not "
            "`t0 <= now - window`, which rounds differently"
        )
    if isinstance(exc, VirtualTimeDeadlock):
        return "everyone is waiting and nothing will wake them: who wakes the next waiter after a grant?"
    return "not everyone got through within a long virtual time: does every waiter get woken up?"


def _oversize(make: Callable[[], Any], limit: float, horizon: float) -> tuple[str, bool, str, str]:
    name = "a request that can never fit fails fast"

    async def main() -> str:
        limiter = make()
        try:
            await asyncio.wait_for(acquire_once(limiter, limit + 1), timeout=3600)
        except ValueError:
            return "raised ValueError"
        except TimeoutError:
            return "hung"
        except TypeError:
            return "no weight"
        return "granted"

    outcome, _ = run_counting(main, horizon + 3600)
    hints = {
        "hung": "it waited a whole virtual hour: compare the weight with the limit first; raise ValueError",
        "granted": "it was granted, which breaks the limit: raise ValueError instead",
        "no weight": "give acquire a weight parameter (acquire(self, weight=1))",
    }
    return name, outcome == "raised ValueError", f"weight {limit + 1:g}: {outcome}", hints.get(outcome, "")


def _cancellation(
    make: Callable[[], Any], limit: float, span: float, horizon: float
) -> tuple[str, bool, str, str]:
    name = "a cancelled waiter takes nothing from the others"
    n = int(2 * limit + 3)

    async def scenario(with_quitter: bool) -> list[float]:
        limiter = make()
        loop = asyncio.get_running_loop()
        times: dict[int, float] = {}

        async def caller(i: int) -> None:
            await acquire_once(limiter, 1)
            times[i] = loop.time()

        tasks = [asyncio.create_task(caller(i)) for i in range(n)]
        if with_quitter:
            quitter = asyncio.create_task(acquire_once(limiter, 1))
            tasks.append(quitter)
            await asyncio.sleep(span / 10)
            quitter.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return [times[i] for i in range(n)]

    try:
        reference, _ = run_counting(lambda: scenario(False), horizon)
        with_quitter, _ = run_counting(lambda: scenario(True), horizon)
    except (TimeoutError, VirtualTimeError) as exc:
        return name, False, type(exc).__name__, _stuck_hint(exc)
    same = all(abs(a - b) < 1e-6 for a, b in zip(reference, with_quitter, strict=True))
    return (
        name,
        same,
        "same grant times as without the quitter" if same else "grant times changed",
        ("a cancelled waiter must leave the queue (and give back anything it was granted)"),
    )
