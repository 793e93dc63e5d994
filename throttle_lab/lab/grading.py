"""Self-checking exercises: grade a learner's code by how it behaves over time.

Each ``check_*`` function runs the learner's code on virtual time, records what happens and reports, line by
line, what passed, what failed and a hint for each failure.  Nothing is compared with a model answer's
source: a limiter passes if it *behaves* like one (the limit holds in every window, callers are served in
order, the impossible fails fast...), however it is written.

"Not attempted yet" is a normal outcome: an exercise stub that raises ``NotImplementedError`` (or a
``None`` where code is expected) gets a friendly nudge, not a traceback.

>>> from throttle_lab import TokenBucket
>>> report = check_limiter(lambda: TokenBucket(rate=2.0, capacity=4), rate=2.0, capacity=4)
>>> report.passed
True
>>> print(report)  # doctest: +ELLIPSIS
check_limiter: 6/6 checks passed
  ✓ everyone gets through ...
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.events import Event, request_scope
from ..core.runtime import VirtualTimeDeadlock, VirtualTimeError, VirtualTimeLivelock, VirtualTimeLoop
from ..core.trace import Trace

__all__ = [
    "CheckResult",
    "Report",
    "check_backoff",
    "check_limiter",
    "check_trace",
    "check_twice",
    "inverted_pairs",
]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One line of a report."""

    name: str
    passed: bool
    detail: str = ""
    hint: str = ""


@dataclass
class Report:
    """What a check found.  Prints as a short list; ``passed`` is True only if everything passed."""

    title: str
    results: list[CheckResult] = field(default_factory=list)
    attempted: bool = True
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.attempted and bool(self.results) and all(r.passed for r in self.results)

    def add(self, name: str, passed: bool, detail: str = "", hint: str = "") -> bool:
        self.results.append(CheckResult(name, passed, detail, "" if passed else hint))
        return passed

    def __str__(self) -> str:
        if not self.attempted:
            return f"{self.title}: not attempted yet -- {self.note}"
        good = sum(r.passed for r in self.results)
        lines = [f"{self.title}: {good}/{len(self.results)} checks passed"]
        for r in self.results:
            mark = "✓" if r.passed else "✗"
            lines.append(f"  {mark} {r.name}" + (f" ({r.detail})" if r.detail else ""))
            if r.hint:
                lines.append(f"      hint: {r.hint}")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython shows the text, not a repr
        printer.text(str(self))


class _NotAttempted(Exception):
    pass


def _not_attempted(title: str, what: str) -> Report:
    return Report(
        title, attempted=False, note=f"{what} still raises NotImplementedError; fill it in and run me again."
    )


# ------------------------------------------------------------------------------------------------ running
class _CountingLoop(VirtualTimeLoop):
    """A virtual loop that counts timers: a limiter that polls schedules many more than it grants."""

    def __init__(self) -> None:
        super().__init__(max_spins=50_000)
        self.timers = 0

    def call_at(  # type: ignore[override]
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        self.timers += 1
        return super().call_at(when, callback, *args, context=context)


def _run_counting(main: Callable[[], Any], horizon: float) -> tuple[Any, int]:
    """Run ``main()`` on a counting virtual loop, giving up after ``horizon`` virtual seconds.

    Where a loop is already running in this thread (a notebook cell), the run happens in a worker thread,
    as :func:`throttle_lab.run` does, so a check is one plain call everywhere.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_counting_here(main, horizon)
    context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="throttle_lab.lab.grading") as pool:
        return pool.submit(context.run, _run_counting_here, main, horizon).result()


def _run_counting_here(main: Callable[[], Any], horizon: float) -> tuple[Any, int]:
    loop = _CountingLoop()
    try:
        result = loop.run_until_complete(asyncio.wait_for(main(), timeout=horizon))
        return result, loop.timers
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()


@dataclass
class _Run:
    grants: list[tuple[float, Hashable, float]]  # (time, request, weight)
    timers: int
    order: list[Hashable]


def _drive(make: Callable[[], Any], arrivals: Sequence[tuple[float, float]], horizon: float) -> _Run:
    """One caller per (arrival time, weight), each calling ``acquire(weight)`` (``acquire()`` for 1)."""
    grants: list[tuple[float, Hashable, float]] = []
    order: list[Hashable] = []

    async def main() -> None:
        limiter = make()
        loop = asyncio.get_running_loop()

        async def caller(index: int, at: float, weight: float) -> None:
            await asyncio.sleep(at)
            with request_scope(index):
                await _acquire(limiter, weight)
            grants.append((loop.time(), index, weight))
            order.append(index)

        await asyncio.gather(*(caller(i, at, w) for i, (at, w) in enumerate(arrivals)))

    _, timers = _run_counting(main, horizon)
    return _Run(grants, timers, order)


async def _acquire(limiter: Any, weight: float) -> None:
    acquire = getattr(limiter, "acquire", None)
    if acquire is None:
        raise TypeError("your limiter needs an async acquire() method")
    if weight == 1:
        try:
            await acquire(1)
            return
        except TypeError as exc:
            if "argument" not in str(exc):
                raise
        await acquire()
    else:
        await acquire(weight)


def inverted_pairs(order: Sequence[Hashable], arrival: Sequence[Hashable]) -> int:
    """How many pairs were served in the opposite order of their arrival (0 = first come, first served)."""
    rank = {item: i for i, item in enumerate(arrival)}
    ranks = [rank[item] for item in order if item in rank]
    return sum(1 for i in range(len(ranks)) for j in range(i + 1, len(ranks)) if ranks[i] > ranks[j])


def _max_in_window(grants: Sequence[tuple[float, Hashable, float]], window: float) -> float:
    return Trace(Event(t, "granted", "learner", r, w) for t, r, w in grants).max_in_window(
        "granted", window, weighted=True
    )


def _bucket_excess(grants: Sequence[tuple[float, Hashable, float]], capacity: float, rate: float) -> float:
    """The worst ``granted - (capacity + rate x span)`` over all spans (<= 0 means the bound holds)."""
    ordered = sorted(grants, key=lambda g: g[0])
    worst = -math.inf
    for i in range(len(ordered)):
        total = 0.0
        for j in range(i, len(ordered)):
            total += ordered[j][2]
            worst = max(worst, total - (capacity + rate * (ordered[j][0] - ordered[i][0])))
    return worst


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
        return _not_attempted(title, "your limiter")
    limit = float(capacity if bucket else max_requests)  # type: ignore[arg-type]
    per_second = float(rate) if bucket else float(max_requests) / float(window_seconds)  # type: ignore[arg-type]
    span = (limit / per_second) if bucket else float(window_seconds)  # type: ignore[arg-type]
    report = Report(title)
    n = int(3 * limit + 5)
    ideal = (n - limit) / per_second if bucket else math.ceil(n / limit - 1) * span
    horizon = 20 * ideal + 100 * span

    try:
        burst = _drive(make, [(0.0, 1.0)] * n, horizon)
    except NotImplementedError:
        return _not_attempted(title, "your limiter")
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
        runs.append(_drive(make, [(0.9 * span, 1.0)] * n, horizon))
    except (TimeoutError, VirtualTimeError) as exc:
        report.add(
            "everyone gets through a burst just before a window ends",
            False,
            type(exc).__name__,
            _stuck_hint(exc),
        )
    if bucket:
        excess = max(_bucket_excess(run.grants, limit, per_second) for run in runs)
        report.add(
            "never more than capacity + rate x T",
            excess <= 1e-6,
            f"worst excess {max(excess, 0):.3g}",
            "you grant faster than the bucket refills",
        )
    else:
        most = max(_max_in_window(run.grants, span) for run in runs)
        report.add(
            f"never more than {limit:g} in any {span:g} s window",
            most <= limit,
            f"busiest window held {most:g}",
            "count every grant still inside the window, boundaries included (a window that resets on the "
            "clock lets a burst through on each side of the reset)",
        )

    arrivals = [(round(i * span / (7 * limit), 9), 1.0) for i in range(n)]
    try:
        staggered = _drive(make, arrivals, horizon)
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


def check_twice(
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
            await asyncio.wait_for(_acquire(limiter, limit + 1), timeout=3600)
        except ValueError:
            return "raised ValueError"
        except TimeoutError:
            return "hung"
        except TypeError:
            return "no weight"
        return "granted"

    outcome, _ = _run_counting(main, horizon + 3600)
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
            await _acquire(limiter, 1)
            times[i] = loop.time()

        tasks = [asyncio.create_task(caller(i)) for i in range(n)]
        if with_quitter:
            quitter = asyncio.create_task(_acquire(limiter, 1))
            tasks.append(quitter)
            await asyncio.sleep(span / 10)
            quitter.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return [times[i] for i in range(n)]

    try:
        reference, _ = _run_counting(lambda: scenario(False), horizon)
        with_quitter, _ = _run_counting(lambda: scenario(True), horizon)
    except (TimeoutError, VirtualTimeError) as exc:
        return name, False, type(exc).__name__, _stuck_hint(exc)
    same = all(abs(a - b) < 1e-6 for a, b in zip(reference, with_quitter, strict=True))
    return (
        name,
        same,
        "same grant times as without the quitter" if same else "grant times changed",
        ("a cancelled waiter must leave the queue (and give back anything it was granted)"),
    )


def check_backoff(delay: Callable[[int, float | None], float] | None, *, cap: float = 60.0) -> Report:
    """Grade a retry-delay function ``delay(attempt, hint) -> seconds`` (attempt counts from 0).

    Checks: never earlier than the server's hint; grows with the attempt when there is no hint; stays
    within ``cap`` (unless the hint says more); spreads out (jitter), so a herd does not retry in step.
    """
    title = "check_backoff"
    if delay is None:
        return _not_attempted(title, "your delay function")
    report = Report(title)
    try:
        delays = {(a, h): [float(delay(a, h)) for _ in range(20)] for a in range(6) for h in (None, 0.5, 7.0)}
    except NotImplementedError:
        return _not_attempted(title, "your delay function")
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


def check_trace(
    trace: Trace | None,
    *,
    rpm: float | None = None,
    tpm: float | None = None,
    max_429s: int = 0,
    min_utilisation: float | None = None,
    window: float = 60.0,
) -> Report:
    """Grade a run by what the *server* saw: no 429s (or at most ``max_429s``), limits kept, rate achieved.

    ``min_utilisation`` asks for at least that fraction of the binding limit in steady state (after the
    first ``window``).
    """
    title = "check_trace"
    if trace is None:
        return Report(title, attempted=False, note="run your experiment and pass its trace.")
    report = Report(title)
    limited = (
        trace.filter(kind="429", source="client").count()
        or trace.filter(kind="limited", source="server").count()
    )
    report.add(
        f"at most {max_429s} 429s",
        limited <= max_429s,
        f"{limited} 429s",
        "reserve capacity before sending, and honour retry-after across all tasks",
    )
    accepted = trace.filter(kind="accepted", source="server")
    if not len(accepted):
        report.add("the server accepted requests", False, "none", "did your code send anything?")
        return report
    # The server enforces its limits itself (that is what the 429s are); what the client controls is how
    # much of them it uses.  Measure after the first window, once any stored-up burst is spent.
    ratios = []
    steady = [e for e in accepted if e.t >= window]
    duration = steady[-1].t - window if len(steady) > 1 else 0.0
    for limit, weighted in ((rpm, False), (tpm, True)):
        if limit is not None and duration > 0:
            amount = sum(e.weight for e in steady) if weighted else len(steady)
            ratios.append(amount / duration * 60.0 / limit)
    if min_utilisation is not None:
        if rpm is None and tpm is None:
            raise ValueError("min_utilisation needs the limits: pass rpm= and/or tpm=")
        if not ratios:
            report.add(
                f"at least {min_utilisation:.0%} of the binding limit",
                False,
                f"nothing accepted after the first {window:g} s to measure",
                "the run must last well past the first minute to measure a steady rate",
            )
            return report
        best = max(ratios)
        report.add(
            f"at least {min_utilisation:.0%} of the binding limit",
            best >= min_utilisation,
            f"{best:.1%} in steady state",
            "you are leaving capacity unused: wait less, or exactly as long as needed",
        )
    return report
