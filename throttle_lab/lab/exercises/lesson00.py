"""Lesson 00 -- async in Jupyter: ask several slow questions at once.

The exercise: write ``ask_all(delays)``, a coroutine that asks :func:`pretend_call` one question per delay,
*all at the same time*, and returns the answers in the order of ``delays``.  Asked one after the other,
three calls of 3 s, 1 s and 2 s take 6 s; asked together they take 3 s -- as long as the slowest.

>>> from throttle_lab import run
>>> run(pretend_call(2.5))
'answer after 2.5 s'

:func:`check` runs your ``ask_all`` on virtual time and reports what passed::

    lesson00.check(ask_all)
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import weakref
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...core.events import Kind, emit, record, request_scope
from ...core.runtime import VirtualTimeDeadlock, VirtualTimeError, VirtualTimeLivelock, run
from ...core.trace import Trace
from ..grading import Guide, Report
from ..grading.sandbox import quiet_learner_code

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["CASES", "Watched", "check", "goal_picture", "hint", "pretend_call", "solution", "watch"]

#: The delays ``check`` asks with: short and long, all different, and all the same.
CASES: tuple[tuple[float, ...], ...] = ((3.0, 1.0, 2.0), (0.5, 0.5, 0.5, 0.5), (3600.0, 60.0, 1800.0, 1.0))

SOURCE = "pretend_call"
_TITLE = "lesson00.check"

_GUIDE = Guide(
    "lesson00",
    [
        "Calling a coroutine function does not run it: it gives a coroutine. Nothing waits until you await "
        "it, and awaiting the calls one by one adds their times up.",
        "Make every call first -- one pretend_call(d) per delay, none awaited yet -- then wait for all of "
        "them together. asyncio.gather does both and keeps the order you passed them in.",
        "async def ask_all(delays): return list(await asyncio.gather(*(lesson00.pretend_call(d) for d in "
        "delays)))",
    ],
    solution="throttle_lab.lab.solutions.lesson00",
)


def goal_picture(seconds: Sequence[float] = (3600.0, 1800.0, 2700.0)) -> Figure:
    """The lesson's first picture: the same calls awaited one after another, and started all at once.

    Both runs happen on virtual time (hours of waiting, drawn in milliseconds).  The code that starts
    them at once is the lesson's exercise, so it lives here rather than in the notebook::

        figure = lesson00.goal_picture()   # top: one after another; bottom: all at once
    """
    import matplotlib.pyplot as plt

    from .. import plots

    async def one_after_another() -> None:
        for each in seconds:
            await pretend_call(each)

    async def all_at_once() -> None:
        await asyncio.gather(*(pretend_call(each) for each in seconds))

    figure, axes = plt.subplots(2, 1, figsize=(9, 4.2), sharex=True, layout="constrained")
    for ax, (title, program) in zip(
        axes,
        (("awaited one after another", one_after_another), ("started all at once", all_at_once)),
        strict=True,
    ):
        with record() as trace:
            run(program())
        plots.timeline(trace, ax=ax, legend=False, title=f"{title}: done after {trace.end / 3600:g} h")
        ax.set_ylabel("call")
    axes[0].set_xlabel("")
    axes[-1].set_xlabel("virtual time (s)")
    axes[0].set_xlim(0, sum(seconds) * 1.02)  # the longer run sets the shared time axis
    return figure


def hint(level: int | None = None) -> None:
    """Print the next hint for the exercise (or hint number ``level``), one level more concrete each call."""
    _GUIDE.hint(level)


def solution() -> None:
    """Print the reference solution (read it, then close it and write your own)."""
    _GUIDE.solution()


# One numbering of calls per event loop, so every run names its calls call-1, call-2, ... afresh.
_counters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Iterator[int]] = weakref.WeakKeyDictionary()


async def pretend_call(seconds: float) -> str:
    """A stand-in for an API call: it takes ``seconds`` of loop time and answers ``"answer after ... s"``.

    Every call is recorded (``sent`` when it starts, ``done`` when it answers), so a run inside
    ``throttle_lab.record()`` can be drawn with ``plots.timeline``.
    """
    loop = asyncio.get_running_loop()
    number = next(_counters.setdefault(loop, itertools.count(1)))
    with request_scope(f"call-{number}"):
        emit(loop.time(), Kind.SENT, SOURCE, detail={"seconds": seconds})
        await asyncio.sleep(seconds)
        emit(loop.time(), Kind.DONE, SOURCE)
    return f"answer after {seconds:g} s"


@dataclass
class Watched:
    """What one run of ``ask_all(delays)`` did: its answers, the virtual seconds it took, its calls."""

    delays: tuple[float, ...]
    answers: Any
    elapsed: float
    trace: Trace

    @property
    def calls(self) -> int:
        """How many times ``pretend_call`` was called."""
        return self.trace.count(Kind.SENT, SOURCE)

    @property
    def expected(self) -> list[str]:
        return [f"answer after {d:g} s" for d in self.delays]


class _NotAwaitable(TypeError):
    pass


class _TooLong(TimeoutError):
    """The check's own time limit ran out (not a timeout of the learner's)."""


def watch(ask_all: Callable[[list[float]], Awaitable[Any]], delays: Sequence[float]) -> Watched:
    """Run ``ask_all(list(delays))`` on virtual time and record its calls (for a timeline, or a check).

    Gives up after a long virtual time (ten times the sum of the delays, plus a minute) with ``TimeoutError``.
    """
    delays = tuple(float(d) for d in delays)
    horizon = 10 * sum(delays) + 60.0

    async def main() -> tuple[Any, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        pending = ask_all(list(delays))
        if not inspect.isawaitable(pending):
            raise _NotAwaitable(f"ask_all returned a {type(pending).__name__}, not a coroutine to await")
        try:
            async with asyncio.timeout(horizon) as limit:
                answers = await pending
        except TimeoutError:
            if limit.expired():
                raise _TooLong(f"not finished after {horizon:g} virtual seconds") from None
            raise  # a timeout of ask_all's own
        return answers, loop.time() - start

    with record() as trace:
        answers, elapsed = run(main())
    return Watched(delays, answers, elapsed, trace)


def _failure(exc: BaseException) -> tuple[str, str]:
    """A short description of what went wrong, and a hint."""
    text = (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__).splitlines()[0]
    if isinstance(exc, _NotAwaitable):
        return str(exc), "define it with `async def ask_all(delays):` so that calling it gives a coroutine"
    if isinstance(exc, RuntimeError) and "running event loop" in str(exc):
        return text, (
            "ask_all already runs on a loop: inside a coroutine, `await` other coroutines (or gather them) "
            "instead of calling asyncio.run"
        )
    if isinstance(exc, VirtualTimeDeadlock):
        return text, "every task was waiting for something that never happens: await the calls themselves"
    if isinstance(exc, VirtualTimeLivelock):
        return text, "something spins without letting time pass: await asyncio.sleep(...) or the calls"
    if isinstance(exc, _TooLong):
        return "still not finished after a long virtual time", "does ask_all return once every answer is in?"
    if isinstance(exc, TimeoutError):
        return text, (
            "a timeout of ask_all's own ran out (asyncio.timeout / wait_for): the slowest call takes as long "
            "as its delay, so give it that long, or leave the timeout out"
        )
    if isinstance(exc, VirtualTimeError):
        return text, "it never finished: does ask_all return once every answer is in?"
    return text, "ask_all raised an exception: run it on its own to see the traceback"


def check(ask_all: Callable[[list[float]], Awaitable[Any]] | None) -> Report:
    """Grade ``ask_all``: right answers in the right order, every question asked once, all at once.

    Each case runs on virtual time, so a case with an hour-long call costs no real time.  Nothing but
    the report is printed: what ``ask_all`` left behind (a coroutine never awaited, a gather whose
    exception nobody read) is cleaned up quietly -- the report already says what went wrong.
    """
    if ask_all is None:
        return Report(_TITLE, attempted=False, note="define ask_all, then run me again.")
    with quiet_learner_code():  # everything ask_all made is let go, and collected, in here
        return _grade(ask_all)


def _grade(ask_all: Callable[[list[float]], Awaitable[Any]]) -> Report:
    report = Report(_TITLE)
    runs: list[Watched] = []
    for delays in CASES:
        outcome = _run_case(ask_all, delays)
        if outcome is None:
            return Report(
                _TITLE,
                attempted=False,
                note="ask_all still raises NotImplementedError; fill it in and run me again.",
            )
        if isinstance(outcome, tuple):
            detail, failure_hint = outcome
            report.add(f"runs for delays {list(delays)}", False, detail, failure_hint)
            return report
        runs.append(outcome)

    wrong = next((w for w in runs if w.answers != w.expected), None)
    report.add(
        "answers in the order of `delays`",
        wrong is None,
        "all cases" if wrong is None else f"for {list(wrong.delays)}: got {_show_answers(wrong.answers)}",
        _order_hint(wrong),
    )
    miscounted = next((w for w in runs if w.calls != len(w.delays)), None)
    report.add(
        "every question asked exactly once",
        miscounted is None,
        "all cases"
        if miscounted is None
        else f"for {list(miscounted.delays)}: {miscounted.calls} calls for {len(miscounted.delays)} delays",
        "call lesson00.pretend_call(seconds) once for each delay",
    )
    slow = next((w for w in runs if abs(w.elapsed - max(w.delays)) > 1e-6), None)
    report.add(
        "all at once: as long as the slowest call, not the sum",
        slow is None,
        ", ".join(f"{w.elapsed:g} s" for w in runs) if slow is None else _slow_detail(slow),
        "start every call before awaiting any of them: asyncio.gather(*(pretend_call(d) for d in delays))",
    )
    if report.passed:
        saved = sum(sum(w.delays) - w.elapsed for w in runs)
        report.note = (
            f"Together the cases took {sum(w.elapsed for w in runs):g} virtual seconds instead of "
            f"{sum(sum(w.delays) for w in runs):g}: {saved:g} s saved by waiting for all the calls at once."
        )
    for w in runs:  # coroutines handed back as answers were never run: close them, so they don't warn later
        for answer in w.answers if isinstance(w.answers, list | tuple) else ():
            if inspect.iscoroutine(answer):
                answer.close()
    return report


def _run_case(
    ask_all: Callable[[list[float]], Awaitable[Any]], delays: Sequence[float]
) -> Watched | tuple[str, str] | None:
    """One case: what it did, or (what went wrong, a hint) if it raised, or None while it is a stub."""
    try:
        return watch(ask_all, delays)
    except NotImplementedError:
        return None
    except Exception as exc:  # the learner's code: report it, never crash the notebook
        return _failure(exc)


def _show_answers(answers: Any) -> str:
    """``repr(answers)``, but a coroutine shows as its name, not its (changing) address."""
    if isinstance(answers, list | tuple) and any(inspect.iscoroutine(a) for a in answers):
        shown = ", ".join(
            f"<coroutine {a.__qualname__}>" if inspect.iscoroutine(a) else repr(a) for a in answers
        )
        return f"[{shown}]"
    return repr(answers)


def _order_hint(wrong: Watched | None) -> str:
    if wrong is None:
        return ""
    if isinstance(wrong.answers, list | tuple) and any(inspect.isawaitable(a) for a in wrong.answers):
        return (
            "those are coroutines, not answers: calling pretend_call only makes one -- await them, all "
            "together: await asyncio.gather(*coroutines)"
        )
    if isinstance(wrong.answers, list) and sorted(map(str, wrong.answers)) == sorted(wrong.expected):
        return (
            "the right answers in the wrong order: asyncio.gather returns results in the order you passed "
            "the coroutines (as_completed gives them in the order they finish)"
        )
    return "return a list with one answer per delay: what pretend_call returned for it"


def _slow_detail(w: Watched) -> str:
    text = f"for {list(w.delays)}: took {w.elapsed:g} s, the slowest call takes {max(w.delays):g} s"
    if abs(w.elapsed - sum(w.delays)) <= 1e-6 and len(w.delays) > 1:
        text += " (that is the sum: one after the other)"
    return text
