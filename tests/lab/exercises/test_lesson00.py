"""Lesson 00: the reference ``ask_all`` passes; one-by-one, out-of-order, nested-loop and other slips fail."""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any

import pytest

from throttle_lab.lab.exercises import lesson00
from throttle_lab.lab.grading import Report

from .helpers import load_solution, results


def failed_hints(report: Report) -> str:
    return " ".join(r.hint for r in report.results if not r.passed)


# -- deliberately wrong answers ------------------------------------------------------------------------
async def one_by_one(delays: list[float]) -> list[str]:
    return [await lesson00.pretend_call(d) for d in delays]


async def in_finishing_order(delays: list[float]) -> list[str]:
    return [await f for f in asyncio.as_completed([lesson00.pretend_call(d) for d in delays])]


async def nested_run(delays: list[float]) -> list[str]:
    coroutine = one_by_one(delays)
    try:
        return asyncio.run(coroutine)
    finally:
        coroutine.close()  # never started: close it here rather than leave a warning for a later test


def not_async(delays: list[float]) -> list[str]:
    return [f"answer after {d:g} s" for d in delays]


async def fakes_the_calls(delays: list[float]) -> list[str]:
    await asyncio.sleep(max(delays))
    return [f"answer after {d:g} s" for d in delays]


async def never_returns(delays: list[float]) -> list[str]:
    await asyncio.Event().wait()
    return []


async def stub(delays: list[float]) -> list[str]:
    raise NotImplementedError


async def nested_run_as_written(delays: list[float]) -> list[str]:
    """What learners write: the refused coroutine is left for the garbage collector (it used to warn)."""
    return asyncio.run(one_by_one(delays))


async def forgets_to_await(delays: list[float]) -> list[object]:
    return [lesson00.pretend_call(d) for d in delays]


async def fire_and_forget(delays: list[float]) -> list[str]:
    """Tasks started and never awaited: the answers are made up before any call has answered."""
    started = [asyncio.ensure_future(lesson00.pretend_call(d)) for d in delays]
    assert len(started) == len(delays)
    return [f"answer after {d:g} s" for d in delays]


# -- tests ---------------------------------------------------------------------------------------------
def test_reference_solution_passes() -> None:
    report = lesson00.check(load_solution("lesson00").ask_all)
    assert report.passed, str(report)
    assert "3/3 checks passed" in str(report)
    assert "3600 s" in str(report)  # the hour-long case took an hour of virtual time, not the sum


def test_one_by_one_takes_the_sum() -> None:
    report = lesson00.check(one_by_one)
    assert not report.passed
    assert results(report) == {
        "answers in the order of `delays`": True,
        "every question asked exactly once": True,
        "all at once: as long as the slowest call, not the sum": False,
    }
    assert "took 6 s" in str(report) and "the sum" in str(report)
    assert "asyncio.gather" in failed_hints(report)


def test_answers_in_finishing_order_fail_the_order_check() -> None:
    report = lesson00.check(in_finishing_order)
    assert results(report)["answers in the order of `delays`"] is False
    assert results(report)["all at once: as long as the slowest call, not the sum"] is True
    assert "as_completed" in failed_hints(report)


def test_asyncio_run_inside_is_explained() -> None:
    report = lesson00.check(nested_run)
    assert not report.passed
    assert "cannot be called from a running event loop" in str(report)
    assert "instead of calling asyncio.run" in failed_hints(report)


def test_a_plain_function_is_told_to_use_async_def() -> None:
    report = lesson00.check(not_async)
    assert not report.passed
    assert "async def" in failed_hints(report)


def test_skipping_the_calls_is_caught() -> None:
    report = lesson00.check(fakes_the_calls)
    assert results(report)["every question asked exactly once"] is False
    assert "0 calls for 3 delays" in str(report)


def test_a_coroutine_that_never_returns_is_reported_not_hung() -> None:
    report = lesson00.check(never_returns)
    assert not report.passed
    assert "not finished" in str(report)


def test_stub_and_none_are_not_attempted() -> None:
    for answer in (stub, None):
        report = lesson00.check(answer)
        assert not report.attempted and not report.passed
        assert "not attempted yet" in str(report)


def test_check_works_where_a_loop_is_already_running() -> None:
    # In a notebook the check is called while the kernel's loop runs: run() must move to a worker thread.
    async def from_a_running_loop() -> Report:
        return lesson00.check(load_solution("lesson00").ask_all)

    assert asyncio.run(from_a_running_loop()).passed


def test_watch_records_one_timeline_row_per_call() -> None:
    watched = lesson00.watch(load_solution("lesson00").ask_all, [3.0, 1.0, 2.0])
    assert watched.elapsed == 3.0
    assert watched.calls == 3
    assert watched.trace.requests == ["call-1", "call-2", "call-3"]  # numbered afresh in every run
    assert [round(e.t, 9) for e in watched.trace.of_kind("done")] == [1.0, 2.0, 3.0]


def test_a_refused_asyncio_run_leaves_no_warning_behind(capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "never awaited" RuntimeWarning would fail the test ...
        report = lesson00.check(nested_run_as_written)
        gc.collect()  # ... here, where the coroutine would be collected
    assert "instead of calling asyncio.run" in failed_hints(report)
    assert capsys.readouterr().err == ""


def test_coroutines_returned_unawaited_are_told_to_await(capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = lesson00.check(forgets_to_await)
        gc.collect()
    assert results(report)["answers in the order of `delays`"] is False
    assert "got [<coroutine pretend_call>, <coroutine pretend_call>" in str(report)  # no addresses
    assert "those are coroutines, not answers" in failed_hints(report)
    assert capsys.readouterr().err == ""


def test_fire_and_forget_tasks_fail_the_timing_check() -> None:
    report = lesson00.check(fire_and_forget)
    assert results(report)["all at once: as long as the slowest call, not the sum"] is False
    assert "took 0 s" in str(report)
    assert "start every call before awaiting any of them" in failed_hints(report)


def test_a_crash_names_its_case() -> None:
    async def fails_on_four(delays: list[float]) -> list[str]:
        if len(delays) == 4:
            raise ValueError("four is too many")
        return list(await asyncio.gather(*(lesson00.pretend_call(d) for d in delays)))

    report = lesson00.check(fails_on_four)
    assert results(report) == {"runs for delays [0.5, 0.5, 0.5, 0.5]": False}
    assert "ValueError: four is too many" in str(report)


def test_hints_go_from_general_to_concrete_and_solution_prints_the_reference(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for level in (1, 2, 3):
        lesson00.hint(level)
    hints = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in hints] == [f"lesson00 hint {n} of 3" for n in (1, 2, 3)]
    assert "asyncio.gather" not in hints[0] and "asyncio.gather(" in hints[2]
    lesson00.solution()
    out = capsys.readouterr().out
    assert out.startswith("# throttle_lab.lab.solutions.lesson00") and "async def ask_all" in out
    assert {"hint", "solution"} <= set(lesson00.__all__)


# -- quiet: the report and nothing else -------------------------------------------------------------------
async def returns_the_gather_unawaited(delays: list[float]) -> object:
    return asyncio.gather(*(lesson00.pretend_call(d) for d in delays))


async def runs_the_gather_with_asyncio_run(delays: list[float]) -> list[str]:
    gathered: Any = asyncio.gather(*(lesson00.pretend_call(d) for d in delays))  # not a coroutine: refused
    return asyncio.run(gathered)


async def leaves_a_failed_task_unread(delays: list[float]) -> list[str]:
    async def fails() -> None:
        raise ValueError("nobody reads me")

    leftover = asyncio.ensure_future(fails())
    assert not leftover.done()
    return list(await asyncio.gather(*(lesson00.pretend_call(d) for d in delays)))


async def run_until_complete_inside(delays: list[float]) -> list[str]:
    loop = asyncio.get_running_loop()
    return loop.run_until_complete(asyncio.gather(*(lesson00.pretend_call(d) for d in delays)))


QUIET_CASES = [
    "reference",
    one_by_one,
    nested_run_as_written,
    forgets_to_await,
    fire_and_forget,
    never_returns,
    returns_the_gather_unawaited,
    runs_the_gather_with_asyncio_run,
    leaves_a_failed_task_unread,
    run_until_complete_inside,
]


@pytest.mark.parametrize("in_a_loop", [False, True], ids=["script", "notebook"])
@pytest.mark.parametrize("answer", QUIET_CASES, ids=lambda a: a if isinstance(a, str) else a.__name__)
def test_checks_print_nothing_but_the_report(
    answer: object, in_a_loop: bool, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """No "never retrieved" / "never awaited" / "destroyed but pending" on stderr, now or later."""
    ask_all: Any = load_solution("lesson00").ask_all if answer == "reference" else answer

    async def in_a_cell() -> Report:  # as in a notebook: a loop is running, the check moves to a thread
        return lesson00.check(ask_all)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = asyncio.run(in_a_cell()) if in_a_loop else lesson00.check(ask_all)
        gc.collect()  # whatever the check let go of is gone by now: nothing may speak up here either
    assert report.passed == (answer in ("reference", leaves_a_failed_task_unread)), str(report)
    assert report.results, str(report)
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


def test_leftovers_outside_a_check_are_still_logged(caplog: pytest.LogCaptureFixture) -> None:
    """The quiet is for the check's duration only: asyncio's own reports work again afterwards."""
    lesson00.check(leaves_a_failed_task_unread)

    async def leak() -> None:
        async def fails() -> None:
            raise ValueError("mine, after the check")

        leftover = asyncio.ensure_future(fails())
        await asyncio.sleep(0)
        assert leftover.done()

    asyncio.run(leak())
    gc.collect()
    assert any(
        "exception was never retrieved" in r.getMessage() for r in caplog.records if r.name == "asyncio"
    )


def test_a_timeout_of_ask_alls_own_is_not_called_a_hang() -> None:
    async def too_impatient(delays: list[float]) -> list[str]:
        gathered = asyncio.gather(*(lesson00.pretend_call(d) for d in delays))
        return list(await asyncio.wait_for(gathered, timeout=1))

    report = lesson00.check(too_impatient)
    assert results(report) == {"runs for delays [3.0, 1.0, 2.0]": False}
    assert "(TimeoutError)" in str(report) and "not finished" not in str(report)
    assert "a timeout of ask_all's own ran out" in failed_hints(report)


def test_the_goal_picture_shows_the_sum_against_the_slowest() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = lesson00.goal_picture((3.0, 1.0, 2.0))
    try:
        top, bottom = figure.axes[:2]
        assert "done after" in top.get_title() and "one after another" in top.get_title()
        assert "all at once" in bottom.get_title()
        assert top.get_xlim()[1] >= 6.0  # the sequential run (3 + 1 + 2 s) fits on the shared axis
    finally:
        plt.close(figure)
