"""Lesson 05: the reference send step passes; ones that ignore tokens, under- or over-estimate them, or
never release their permit fail with a useful message."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from throttle_lab import Throttler, estimate_request_tokens
from throttle_lab.lab import solutions
from throttle_lab.lab.exercises import lesson05
from throttle_lab.lab.experiments import WorkItem
from throttle_lab.lab.grading import Report

SOLUTION = Path(solutions.__file__).parent / "lesson05.py"
URL = "/v1/chat/completions"


def load_solution() -> ModuleType:
    spec = importlib.util.spec_from_file_location("solution_lesson05", SOLUTION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results(report: Report) -> dict[str, bool]:
    return {r.name: r.passed for r in report.results}


async def requests_only(throttler: Throttler, client: httpx.AsyncClient, item: WorkItem) -> None:
    async with throttler.slot():  # no tokens: the article's mistake
        await client.post(URL, json=item.body())


async def prompt_only(throttler: Throttler, client: httpx.AsyncClient, item: WorkItem) -> None:
    async with throttler.slot(tokens=len(item.prompt) // 4):  # forgets max_tokens
        await client.post(URL, json=item.body())


async def over_cautious(throttler: Throttler, client: httpx.AsyncClient, item: WorkItem) -> None:
    async with throttler.slot(tokens=2 * estimate_request_tokens(item.body())):
        await client.post(URL, json=item.body())


async def never_releases(throttler: Throttler, client: httpx.AsyncClient, item: WorkItem) -> None:
    await throttler.acquire(tokens=estimate_request_tokens(item.body()))
    await client.post(URL, json=item.body())


def test_the_reference_solution_passes() -> None:
    report = lesson05.check(load_solution().send)
    assert report.passed, str(report)
    assert results(report) == {
        "at most 0 429s": True,
        "at least 95% of the binding limit": True,
        "every request answered": True,
    }


def test_a_send_that_charges_no_tokens_gets_429s() -> None:
    report = lesson05.check(requests_only)
    result = results(report)
    assert result["at most 0 429s"] is False and result["every request answered"] is False
    assert "reserve capacity before sending" in str(report)


def test_a_send_that_forgets_max_tokens_gets_429s() -> None:
    result = results(lesson05.check(prompt_only))
    assert result["at most 0 429s"] is False


def test_an_over_cautious_send_leaves_capacity_unused() -> None:
    report = lesson05.check(over_cautious)
    result = results(report)
    assert result["at most 0 429s"] is True
    assert result["at least 95% of the binding limit"] is False
    assert "leaving capacity unused" in str(report)


def test_a_send_that_never_releases_its_permit_is_told_so() -> None:
    report = lesson05.check(never_releases)
    assert results(report) == {"runs": False}
    assert "10 permits still held" in str(report) and "async with throttler.slot" in str(report)


def test_stubs_and_none_are_not_attempted_and_do_not_raise() -> None:
    async def stub(throttler: Throttler, client: httpx.AsyncClient, item: WorkItem) -> None:
        raise NotImplementedError

    for candidate in (stub, None):
        report = lesson05.check(candidate)
        assert report.attempted is False and report.passed is False
        assert str(report).startswith("lesson05.check: not attempted yet")


def test_a_plain_function_or_a_crash_is_reported_not_raised() -> None:
    def not_async(throttler: Throttler, client: httpx.AsyncClient, item: WorkItem) -> None:
        return None

    report = lesson05.check(not_async)  # type: ignore[arg-type]
    assert results(report) == {"runs": False} and "async def send" in str(report)

    async def crashes(throttler: Throttler, client: httpx.AsyncClient, item: WorkItem) -> Any:
        answer: dict[str, Any] = {}
        return answer["usage"]

    report = lesson05.check(crashes)
    assert results(report) == {"runs": False} and "KeyError" in str(report)


def test_run_send_lines_up_client_throttler_and_server_events() -> None:
    trace = lesson05.run_send(load_solution().send)
    accepted = trace.filter(kind="accepted", source="server")
    assert len(accepted) == lesson05.WORKLOAD.requests
    assert {e.request for e in accepted} == {item.request_id for item in lesson05.WORKLOAD.items()}
    granted = {e.request for e in trace.filter(kind="granted", source="throttler")}
    assert granted == {e.request for e in accepted}
    assert trace.meta["server"] == {"rpm": 120, "tpm": 20_000, "window": 60.0}
