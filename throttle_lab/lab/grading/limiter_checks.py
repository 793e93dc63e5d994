"""Grading a limiter by behaviour: the limit in every window, FIFO, no polling, fail fast, cancellation."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from ...core.runtime import VirtualTimeDeadlock, VirtualTimeError, VirtualTimeLivelock
from .report import CheckResult, Report, describe_crash, not_attempted
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
    a request heavier than the limit fails fast with ``ValueError``; no polling (wake-ups per grant, with
    many waiters queued); a cancelled waiter -- in the middle of the queue, with others behind it -- takes
    nothing from the others (their grant times are those of a run without it).
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
            "you grant faster than the bucket refills: add rate x (now - last update) to the level, never "
            "let it go above capacity, and grant only the tokens that are there",
        )
    else:
        most = max(max_in_window(run.grants, span) for run in runs)
        report.add(
            f"never more than {limit:g} in any {span:g} s window",
            most <= limit,
            f"busiest window held {most:g}",
            _window_hint(most, limit),
        )

    arrivals = [(round(i * span / (7 * limit), 9), 1.0) for i in range(n)]
    try:
        staggered = drive(make, arrivals, horizon)
        inversions = inverted_pairs(staggered.order, list(range(n)))
        report.add(
            "first come, first served",
            inversions == 0,
            f"{inversions} pairs served out of order",
            _order_hint(burst.order, list(range(n))),
        )
    except (TimeoutError, VirtualTimeError) as exc:
        report.add("first come, first served", False, type(exc).__name__, _stuck_hint(exc))

    report.add(*_oversize(make, limit, horizon))

    report.add(*_polling(make, n, limit, horizon))

    what = "its tokens" if bucket else "its place in the window"
    report.add(*_cancellation(make, limit, min(span / 10, 0.5 / per_second), horizon, what))
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
    second_hint: str | Callable[[Sequence[CheckResult]], str] | None = None,
) -> Report:
    """Grade a learner's class at one setting and, if everything passes, once more at another.

    The second run catches numbers typed into the class instead of read from its arguments.  ``grade``
    builds and grades the class for a setting; a stub (``NotImplementedError``) is "not attempted", and
    any other exception from the learner's code becomes a failed line with ``crash_hint(exc)``.  A failure
    at the second setting is hinted with ``second_hint`` (a string, or a function of the failed lines), or
    with the first failing check's own hint.
    """
    report = Report(title)
    try:
        main = grade(first)
    except NotImplementedError:
        return not_attempted()
    except Exception as exc:  # the learner's code: report it, never crash the notebook
        report.add("runs", False, describe_crash(exc), crash_hint(exc))
        return report
    if not main.attempted:
        return not_attempted()
    report.results.extend(main.results)
    if not main.passed:
        return report  # fix these first; the second setting would only repeat them
    try:
        other = grade(second)
    except Exception as exc:
        report.add(second_name, False, describe_crash(exc), crash_hint(exc))
        return report
    failed = [r for r in other.results if not r.passed]
    if callable(second_hint):
        hint = second_hint(failed) if failed else ""
    else:
        hint = second_hint if second_hint is not None else (failed[0].hint if failed else "")
    report.add(
        second_name,
        not failed,
        "all checks passed" if not failed else "failed: " + "; ".join(r.name for r in failed),
        hint,
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


def _order_hint(burst_order: Sequence[Hashable], arrival: Sequence[Hashable]) -> str:
    """A stack, not a queue, shows in a burst: those who had to wait are served newest first."""
    rank = {item: i for i, item in enumerate(arrival)}
    ranks = [rank[item] for item in burst_order if item in rank]
    newest_first = sum(1 for a, b in itertools.pairwise(ranks) if a > b)
    if newest_first > len(ranks) / 2:
        return (
            "the newest waiters went first: keep waiters in a queue and always serve its head -- append "
            "at the back, take from the front (deque.append + popleft, not pop)"
        )
    return (
        "keep waiters in a queue and always serve its head: whoever merely wakes up or arrives when "
        "capacity is back must not overtake the ones already waiting"
    )


def _window_hint(most: float, limit: float) -> str:
    if most >= 1.5 * limit:
        return (
            "count every grant still inside the window, boundaries included (a window that resets on the "
            "clock lets a burst through on each side of the reset): keep a log of the grants of the last "
            "window_seconds, wherever they fall"
        )
    if most > limit + 1:
        return (
            "more than the limit got into some window: count the grants themselves (a log of the last "
            "window_seconds), not an estimate, and grant only if what is in the log + weight <= max_requests"
        )
    return (
        "one too many in a window: an off-by-one. Grant only if (weight in the log) + weight <= "
        "max_requests, and keep a grant at t0 in the log until t0 + window <= now -- not a moment less"
    )


def _polling(make: Callable[[], Any], n: int, limit: float, horizon: float) -> tuple[str, bool, str, str]:
    """Wake-ups per grant under a burst that leaves many waiters queued (polling costs grow with the queue).

    A limiter that wakes each waiter once, when it can go, fires about one timer per grant (fewer, when
    one timer serves several).  Waiters that sleep and look again fire many more -- a fixed interval
    wakes them when nothing can be granted, and "sleep until capacity is back, then retry" wakes all of
    them at that moment, to let one through.
    """
    name = "no polling"
    crowd = n + int(min(7 * limit, 200))
    try:
        run = drive(make, [(0.0, 1.0)] * crowd, horizon)
    except (TimeoutError, VirtualTimeError) as exc:
        return name, False, type(exc).__name__, _stuck_hint(exc)
    per_grant = len(run.wakeups) / crowd
    detail = f"{per_grant:.1f} wake-ups per grant, {crowd} requests at once"
    if per_grant <= 2.0:
        return name, True, detail, ""
    grant_times = {round(t, 9) for t, _, _ in run.grants}
    idle = sum(1 for t in run.wakeups if round(t, 9) not in grant_times)
    if idle > len(run.wakeups) / 2:
        hint = (
            "don't sleep-and-retry in a loop: your waiters mostly woke when nothing could be granted. "
            "Compute when the head can go and sleep exactly until then"
        )
    else:
        hint = (
            "don't sleep-and-retry: each time capacity came back, every waiter woke up to look and all but "
            "the first went back to sleep (sleeping until exactly that moment does not help: they all wake "
            "then). Queue the waiters (one future each) and wake only the head, with one loop.call_at"
        )
    return name, False, detail, hint


def _cancellation(
    make: Callable[[], Any], limit: float, quit_at: float, horizon: float, what: str
) -> tuple[str, bool, str, str]:
    """A waiter in the middle of the queue gives up; those behind it must be granted as if it never came.

    Every caller arrives at t=0, in order; the quitter joins after ``limit + 2`` of them (so it waits,
    with others ahead of it and behind it) and is cancelled at ``quit_at``, before anyone waiting can
    have been granted.  The others' grant times are compared with a run without the quitter.
    """
    name = "a cancelled waiter takes nothing from the others"
    n = int(2 * limit + 3)
    position = int(limit) + 2  # callers ahead of the quitter

    async def scenario(with_quitter: bool) -> dict[int, float | str]:
        limiter = make()
        loop = asyncio.get_running_loop()
        times: dict[int, float | str] = {}

        async def caller(i: int) -> None:
            try:
                await acquire_once(limiter, 1)
            except Exception as exc:  # the learner's code: note it, the check reports it
                times[i] = f"{type(exc).__name__}: {exc}".splitlines()[0]
                return
            times[i] = loop.time()

        tasks = [asyncio.create_task(caller(i)) for i in range(position)]
        if with_quitter:
            quitter = asyncio.create_task(acquire_once(limiter, 1))
            await asyncio.sleep(0)  # let it join the queue before the others behind it
        tasks += [asyncio.create_task(caller(i)) for i in range(position, n)]
        if with_quitter:
            await asyncio.sleep(quit_at)
            quitter.cancel()
            tasks.append(quitter)
        await asyncio.gather(*tasks, return_exceptions=True)
        return times

    try:
        reference, _ = run_counting(lambda: scenario(False), horizon)
        with_quitter, _ = run_counting(lambda: scenario(True), horizon)
    except (TimeoutError, VirtualTimeError) as exc:
        return name, False, type(exc).__name__, _stuck_hint(exc)
    failures = [(i, t) for i, t in sorted(with_quitter.items()) if isinstance(t, str)]
    if failures or len(with_quitter) < n:
        i, what_happened = failures[0] if failures else (len(with_quitter), "never granted")
        return (
            name,
            False,
            f"caller #{i}: {what_happened}",
            "after a cancellation the others must still be served: skip the cancelled waiter's future "
            "(future.cancelled()) instead of resolving it, and serve the next one",
        )
    # Who gets which moment is the order check's business; here, the moments themselves must not move.
    before = sorted(t for t in reference.values() if isinstance(t, float))
    after = sorted(t for t in with_quitter.values() if isinstance(t, float))
    for k, (b, a) in enumerate(zip(before, after, strict=False)):
        if abs(a - b) > 1e-6:
            return (
                name,
                False,
                f"grant #{k + 1} of the others at {a:.3f} s instead of {b:.3f} s",
                (
                    f"the waiter that gave up kept {what}, so the callers behind it waited longer: take "
                    "capacity only when it is granted, at the head of the queue (not reserve it first and "
                    "then sleep), and when a waiter is cancelled, drop it from the queue and give back "
                    "anything it took"
                )
                if a > b
                else "a cancellation let the others through early: never hand out more than the limit",
            )
    return name, True, "same grant times as without the quitter", ""
