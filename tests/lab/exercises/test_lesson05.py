"""Lesson 05: the reference send step passes; ones that ignore tokens, under- or over-estimate them, or
never release their permit fail with a useful message."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from throttle_lab import Throttler, estimate_request_tokens, parse_retry_after
from throttle_lab.lab.exercises import lesson05
from throttle_lab.lab.experiments import WorkItem
from throttle_lab.lab.grading import Report
from throttle_lab.lab.grading.trace_checks import token_charges

from .helpers import load_solution, results

URL = "/v1/chat/completions"


def failures(report: Report) -> dict[str, str]:
    return {r.name: r.hint for r in report.results if not r.passed}


NO_429S = "at most 0 429s"
UTILISATION = "at least 95% of the binding limit"
ANSWERED = "every request answered"
HELD = "every 429 held everyone for its retry-after"
SHARED = "every request answered with another client on the key"


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


# -- the catalogue: send steps learners write -------------------------------------------------------------
async def ignores_429s(throttler: Throttler, client: httpx.AsyncClient, item: WorkItem) -> Any:
    """Right books, but a 429 is just an answer: never paused, never retried (it scored 3/3 before)."""
    body = item.body()
    async with throttler.slot(tokens=estimate_request_tokens(body)) as permit:
        response = await client.post(URL, json=body)
        if response.status_code == 200:
            permit.reconcile(response.json()["usage"]["prompt_tokens"] + item.max_tokens)
        return response.json()


async def raises_on_429(throttler: Throttler, client: httpx.AsyncClient, item: WorkItem) -> Any:
    body = item.body()
    async with throttler.slot(tokens=estimate_request_tokens(body)) as permit:
        response = await client.post(URL, json=body)
        response.raise_for_status()
        permit.reconcile(response.json()["usage"]["prompt_tokens"] + item.max_tokens)
        return response.json()


async def sleeps_alone(throttler: Throttler, client: httpx.AsyncClient, item: WorkItem) -> Any:
    """Retries after the hint, but only the refused task waits: the others walk into the same 429."""
    body = item.body()
    while True:
        async with throttler.slot(tokens=estimate_request_tokens(body)) as permit:
            response = await client.post(URL, json=body)
            if response.status_code != 429:
                permit.reconcile(response.json()["usage"]["prompt_tokens"] + item.max_tokens)
                return response.json()
        await asyncio.sleep(parse_retry_after(response.headers) or 1.0)


async def reconciles_total_tokens(throttler: Throttler, client: httpx.AsyncClient, item: WorkItem) -> Any:
    """Everything right but the books: usage.total_tokens, while the server keeps the whole max_tokens."""
    body = item.body()
    while True:
        async with throttler.slot(tokens=estimate_request_tokens(body)) as permit:
            response = await client.post(URL, json=body)
            if response.status_code == 429:
                throttler.pause(parse_retry_after(response.headers) or 1.0)
                continue
            answer: dict[str, Any] = response.json()
            permit.reconcile(answer["usage"]["total_tokens"])
            return answer


def test_the_reference_solution_passes() -> None:
    report = lesson05.check(load_solution("lesson05").send)
    assert report.passed, str(report)
    assert results(report) == {
        "at most 0 429s": True,
        "at least 95% of the binding limit": True,
        "every request answered": True,
        HELD: True,
        SHARED: True,
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
    trace = lesson05.run_send(load_solution("lesson05").send)
    accepted = trace.filter(kind="accepted", source="server")
    assert len(accepted) == lesson05.WORKLOAD.requests
    assert {e.request for e in accepted} == {item.request_id for item in lesson05.WORKLOAD.items()}
    granted = {e.request for e in trace.filter(kind="granted", source="throttler")}
    assert granted == {e.request for e in accepted}
    assert trace.meta["server"] == {"rpm": 120, "tpm": 20_000, "window": 60.0}


# -- the catalogue, graded: each mistake fails, with the hint that fits it ---------------------------------
def test_no_token_reservation_is_told_its_permits_reserved_nothing() -> None:
    hint = failures(lesson05.check(requests_only))[NO_429S]
    assert "your permits reserved no tokens" in hint and "throttler.slot(tokens=" in hint


def test_a_prompt_only_estimate_is_told_it_leaves_out_max_tokens() -> None:
    report = lesson05.check(prompt_only)
    hint = failures(report)[NO_429S]
    assert "your estimate is short of what the server charged" in hint
    assert "it leaves out max_tokens" in hint


def test_a_reconcile_to_total_tokens_is_told_to_reconcile_with_the_charge() -> None:
    report = lesson05.check(reconciles_total_tokens)
    assert not report.passed
    assert set(failures(report)) == {NO_429S}
    hint = failures(report)[NO_429S]
    assert "you reconcile with usage.total_tokens" in hint and "usage.prompt_tokens + item.max_tokens" in hint


def test_the_three_token_mistakes_get_three_different_hints() -> None:
    hints = {
        failures(lesson05.check(f))[NO_429S] for f in (requests_only, prompt_only, reconciles_total_tokens)
    }
    assert len(hints) == 3


def test_an_over_estimate_is_told_how_much_too_much() -> None:
    hint = failures(lesson05.check(over_cautious))[UTILISATION]
    assert "your permits hold 2.0x the tokens the server charged" in hint


def test_a_send_that_ignores_429s_fails_once_another_client_shares_the_key() -> None:
    report = lesson05.check(ignores_429s)
    assert not report.passed
    assert results(report) == {NO_429S: True, UTILISATION: True, ANSWERED: True, HELD: False, SHARED: False}
    assert "throttler.pause(hint) holds every task" in failures(report)[HELD]
    assert "someone else spent the key's budget" in failures(report)[SHARED]


def test_a_send_that_raises_on_a_429_is_told_to_check_the_status_first() -> None:
    report = lesson05.check(raises_on_429)
    assert not report.passed
    failed = failures(report)
    assert set(failed) == {"runs with another client on the key"}
    assert "HTTPStatusError" in str(report)
    assert "status_code == 429 before raise_for_status()" in failed["runs with another client on the key"]


def test_a_send_that_sleeps_alone_is_told_to_pause_everyone() -> None:
    report = lesson05.check(sleeps_alone)
    assert set(failures(report)) == {HELD}
    assert "requests sent while a retry-after was running" in str(report)
    assert "a sleep in the refused task alone" in failures(report)[HELD]


def test_the_other_client_makes_the_server_refuse_the_reference_at_least_once() -> None:
    trace = lesson05.run_send(load_solution("lesson05").send, neighbour_tokens=lesson05.NEIGHBOUR_TOKENS)
    accepted = trace.filter(kind="accepted", source="server")
    neighbour = accepted.filter(request=lesson05.NEIGHBOUR)
    assert len(neighbour) == 1 and abs(neighbour[0].weight - lesson05.NEIGHBOUR_TOKENS) <= 10
    refused = trace.filter(kind="limited", source="server")
    assert len(refused) >= 1 and lesson05.NEIGHBOUR not in {e.request for e in refused}
    assert len(accepted) == lesson05.WORKLOAD.requests + 1
    # The neighbour went past the throttler: nothing of the client's or the throttler's is about it.
    assert not [e for e in trace if e.request == lesson05.NEIGHBOUR and e.source != "server"]


def test_token_charges_line_up_books_and_server() -> None:
    charges = token_charges(lesson05.run_send(reconciles_total_tokens))
    assert len(charges) == lesson05.WORKLOAD.requests
    for charge in charges:
        assert charge.reserved == charge.charged == charge.prompt_tokens + charge.max_tokens
        assert charge.booked == charge.total_tokens


def test_hints_go_from_general_to_concrete_and_solution_prints_the_reference(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for level in (1, 2, 3):
        lesson05.hint(level)
    hints = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in hints] == [f"lesson05 hint {n} of 3" for n in (1, 2, 3)]
    assert "throttler.slot" not in hints[0] and "estimate_request_tokens" in hints[1]
    assert "not total_tokens" in hints[2]
    lesson05.solution()
    out = capsys.readouterr().out
    assert out.startswith("# throttle_lab.lab.solutions.lesson05") and "async def send" in out
    assert {"hint", "solution"} <= set(lesson05.__all__)
