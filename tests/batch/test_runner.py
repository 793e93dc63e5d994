"""run_batch end to end against the in-process mock server, on virtual time (exact and instant)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from throttle_lab.batch import BatchLimits, ProgressSnapshot, endpoint, run_batch

from .helpers import MESSAGES, app, chat_line, ids_of, read_output, transport, vrun, write_input, write_lines


def server_ids(server: Any) -> list[str]:
    """The custom_ids the server saw arrive (the runner sends each line's id as x-request-id)."""
    return [e["request"] for e in server.events if e["kind"] == "arrived"]


def test_every_line_gets_one_result_in_the_batch_output_format(tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 40)
    server = app(rpm=600, tpm=60_000, window=1)

    async def main() -> Any:
        return await run_batch(
            source,
            tmp_path / "out.jsonl",
            base_url="http://mock",
            transport=transport(server),
            progress=False,
        )

    summary = vrun(main())
    assert (summary.succeeded, summary.failed, summary.exit_code) == (40, 0, 0)
    assert summary.rate_limited == 0  # limits learned from the first answer: no 429 at all
    assert summary.limits["openai"] == BatchLimits(rpm=600, tpm=60_000, max_concurrent=64, burst_seconds=1)
    records = read_output(tmp_path / "out.jsonl")
    assert [r["custom_id"] for r in records] != [] and set(ids_of(tmp_path / "out.jsonl").values()) == {1}
    first = records[0]
    assert set(first) == {"id", "custom_id", "response", "error"}
    assert first["response"]["status_code"] == 200
    assert first["response"]["request_id"].startswith("req_")
    assert first["response"]["body"]["object"] == "chat.completion"
    assert first["error"] is None
    assert sorted(server_ids(server)) == sorted(f"doc-{i}" for i in range(40))


def test_a_rerun_sends_only_what_is_not_in_the_output(tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 30)
    out = tmp_path / "out.jsonl"
    done = [
        json.dumps({"id": "x", "custom_id": f"doc-{i}", "response": {"status_code": 200}, "error": None})
        for i in range(0, 30, 3)
    ]
    out.write_text("\n".join(done) + "\n")
    server = app(rpm=6000)

    async def main() -> Any:
        return await run_batch(
            source, out, base_url="http://mock", transport=transport(server), progress=False
        )

    summary = vrun(main())
    assert (summary.skipped, summary.succeeded, summary.exit_code) == (10, 20, 0)
    assert set(server_ids(server)) == {f"doc-{i}" for i in range(30) if i % 3}
    assert set(ids_of(out).values()) == {1} and len(ids_of(out)) == 30


def test_a_request_error_is_final_and_the_others_continue(tmp_path: Path) -> None:
    lines = [chat_line(f"ok-{i}") for i in range(5)]
    lines.insert(2, chat_line("bad-model", model="no-such-model"))
    source = write_lines(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"
    server = app()

    async def main() -> Any:
        return await run_batch(
            source, out, base_url="http://mock", transport=transport(server), progress=False
        )

    summary = vrun(main())
    assert (summary.succeeded, summary.failed, summary.exit_code) == (5, 1, 1)
    bad = next(r for r in read_output(out) if r["custom_id"] == "bad-model")
    assert bad["response"]["status_code"] == 404
    assert bad["response"]["body"]["error"]["code"] == "model_not_found"
    # Final: the next run sends nothing.
    again = vrun(main())
    assert (again.skipped, again.skipped_failed, again.attempts, again.exit_code) == (6, 1, 0, 1)


def test_server_errors_after_every_attempt_are_not_written_and_the_next_run_sends_them(
    tmp_path: Path,
) -> None:
    source = write_input(tmp_path / "in.jsonl", 8)
    out = tmp_path / "out.jsonl"
    broken = app(error_rate_500=1.0)

    async def first() -> Any:
        return await run_batch(
            source,
            out,
            base_url="http://mock",
            transport=transport(broken),
            max_attempts=2,
            seed=1,
            progress=False,
        )

    summary = vrun(first())
    assert (summary.succeeded, summary.retry_later, summary.exit_code) == (0, 8, 1)
    assert summary.attempts == 16  # two attempts each
    assert out.read_text() == ""
    assert sorted(summary.retry_later_ids) == sorted(f"doc-{i}" for i in range(8))
    healthy = app()

    async def second() -> Any:
        return await run_batch(
            source, out, base_url="http://mock", transport=transport(healthy), progress=False
        )

    assert vrun(second()).exit_code == 0
    assert ids_of(out) == {f"doc-{i}": 1 for i in range(8)}


def test_write_exhausted_makes_them_final_error_lines(tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 3)
    out = tmp_path / "out.jsonl"

    async def main() -> Any:
        return await run_batch(
            source,
            out,
            base_url="http://mock",
            transport=transport(app(error_rate_503=1.0)),
            max_attempts=2,
            write_exhausted=True,
            progress=False,
        )

    summary = vrun(main())
    assert (summary.failed, summary.retry_later) == (3, 0)
    record = read_output(out)[0]
    assert record["response"]["status_code"] == 503
    assert record["error"]["code"] == "retries_exhausted"


def test_a_request_too_large_for_the_token_budget_fails_at_once_with_a_clear_line(tmp_path: Path) -> None:
    lines = [chat_line(f"ok-{i}") for i in range(6)]
    lines.insert(3, chat_line("huge", max_tokens=5_000))
    source = write_lines(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"
    server = app(rpm=600, tpm=60_000, window=1)  # a bucket of 1,000 tokens

    async def main() -> Any:
        return await run_batch(
            source, out, base_url="http://mock", transport=transport(server), progress=False
        )

    summary = vrun(main())
    assert (summary.succeeded, summary.failed) == (6, 1)
    huge = next(r for r in read_output(out) if r["custom_id"] == "huge")
    assert huge["response"] is None
    assert huge["error"]["code"] == "request_too_large"
    assert "more than the whole budget of 1000" in huge["error"]["message"]
    assert "huge" not in server_ids(server)  # never sent


def test_a_first_line_too_large_for_the_given_budget_hands_the_probe_to_the_next(tmp_path: Path) -> None:
    lines = [chat_line("huge", max_tokens=5_000), *(chat_line(f"ok-{i}") for i in range(5))]
    source = write_lines(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"
    server = app(rpm=600, tpm=60_000, window=1)

    async def main() -> Any:
        return await run_batch(
            source,
            out,
            base_url="http://mock",
            tpm=60_000,
            burst_seconds=1,
            transport=transport(server),
            progress=False,
        )

    summary = vrun(main())
    assert (summary.succeeded, summary.failed) == (5, 1)
    assert summary.limits["openai"].rpm == 600  # learned from the next request's answer
    assert "huge" not in server_ids(server)


def test_stop_waits_for_requests_in_flight_writes_them_and_the_rerun_finishes(tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 60)
    out = tmp_path / "out.jsonl"
    server = app(rpm=600, window=1, ttft=0.5)

    async def interrupted() -> Any:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(2.2, stop.set)
        return await run_batch(
            source, out, base_url="http://mock", transport=transport(server), stop=stop, progress=False
        )

    summary = vrun(interrupted())
    assert summary.interrupted and summary.exit_code == 130
    written = ids_of(out)
    assert 0 < len(written) < 60 and set(written.values()) == {1}
    assert summary.succeeded == len(written)
    assert summary.unfinished == 60 - len(written)
    # Everything that reached the server was in flight and finished: written, none lost.
    assert set(server_ids(server)) == set(written)

    async def resume() -> Any:
        return await run_batch(
            source, out, base_url="http://mock", transport=transport(server), progress=False
        )

    assert vrun(resume()).exit_code == 0
    assert ids_of(out) == {f"doc-{i}": 1 for i in range(60)}
    assert sorted(server_ids(server)) == sorted(f"doc-{i}" for i in range(60))  # nothing sent twice


def test_cancelling_the_call_still_writes_what_was_in_flight(tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 30)
    out = tmp_path / "out.jsonl"
    server = app(rpm=600, window=1, ttft=0.5)

    async def main() -> None:
        task = asyncio.create_task(
            run_batch(source, out, base_url="http://mock", transport=transport(server), progress=False)
        )
        await asyncio.sleep(1.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    vrun(main())
    assert set(server_ids(server)) == set(ids_of(out))


def test_an_unreachable_server_writes_nothing_and_says_so(tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 5)
    out = tmp_path / "out.jsonl"

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    async def main() -> Any:
        return await run_batch(
            source,
            out,
            base_url="http://127.0.0.1:9",
            transport=httpx.MockTransport(refuse),
            max_attempts=2,
            progress=False,
        )

    summary = vrun(main())
    assert summary.exit_code == 3
    assert (
        summary.unreachable
        == "http://127.0.0.1:9/v1/chat/completions: ConnectError: [Errno 111] Connection refused"
    )
    assert out.read_text() == ""
    assert summary.succeeded + summary.failed == 0


def test_a_refused_key_stops_the_run_without_writing(tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 5)
    out = tmp_path / "out.jsonl"
    server = app(api_keys=("sk-right",))

    async def main(key: str) -> Any:
        return await run_batch(
            source, out, base_url="http://mock", api_key=key, transport=transport(server), progress=False
        )

    summary = vrun(main("sk-wrong"))
    assert summary.exit_code == 4 and summary.fatal is not None and "401" in summary.fatal
    assert out.read_text() == "" and len(server_ids(server)) == 1
    assert vrun(main("sk-right")).exit_code == 0


def test_each_dialect_gets_its_own_auth_headers(tmp_path: Path) -> None:
    lines = [
        chat_line("openai-line"),
        {
            "custom_id": "anthropic-line",
            "method": "POST",
            "url": MESSAGES,
            "body": {
                "model": "claude-sonnet-4-6",
                "max_tokens": 20,
                "messages": [{"role": "user", "content": "hi"}],
            },
        },
    ]
    source = write_lines(tmp_path / "in.jsonl", lines)
    seen: dict[str, httpx.Headers] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        seen[request.url.path] = request.headers
        return httpx.Response(200, json={"ok": True})

    async def main() -> Any:
        return await run_batch(
            source,
            tmp_path / "out.jsonl",
            base_url="https://api.example.com/v1",
            api_key="sk-openai",
            anthropic_api_key="sk-ant",
            transport=httpx.MockTransport(answer),
            progress=False,
        )

    assert vrun(main()).succeeded == 2
    openai, anthropic = seen["/v1/chat/completions"], seen["/v1/messages"]
    assert openai["authorization"] == "Bearer sk-openai" and "x-api-key" not in openai
    assert anthropic["x-api-key"] == "sk-ant" and anthropic["anthropic-version"] == "2023-06-01"
    assert "authorization" not in anthropic


def test_anthropic_lines_against_the_mock_messages_route(tmp_path: Path) -> None:
    server = app(rpm=600, itpm=60_000, otpm=12_000, window=1)
    probe = vrun(_post_messages(server))
    if probe.status_code == 404 and "model" not in probe.text:
        pytest.skip("the mock server has no POST /v1/messages yet")
    lines = [
        {
            "custom_id": f"claude-{i}",
            "method": "POST",
            "url": MESSAGES,
            "body": {
                "model": "claude-sonnet-4-6",
                "max_tokens": 30,
                "messages": [{"role": "user", "content": f"Summarise {i}."}],
            },
        }
        for i in range(20)
    ]
    source = write_lines(tmp_path / "in.jsonl", lines)
    server = app(rpm=600, itpm=60_000, otpm=12_000, window=1)

    async def main() -> Any:
        return await run_batch(
            source,
            tmp_path / "out.jsonl",
            base_url="http://mock",
            transport=transport(server),
            progress=False,
        )

    summary = vrun(main())
    assert summary.succeeded == 20, summary.notes
    assert summary.rate_limited == 0
    limits = summary.limits["anthropic"]
    assert (limits.rpm, limits.itpm, limits.otpm) == (600, 60_000, 12_000)
    record = read_output(tmp_path / "out.jsonl")[0]
    assert record["response"]["body"]["type"] == "message"


async def _post_messages(server: Any) -> httpx.Response:
    async with httpx.AsyncClient(transport=transport(server), base_url="http://mock") as client:
        return await client.post(
            MESSAGES,
            headers={"anthropic-version": "2023-06-01", "x-api-key": "k"},
            json={
                "model": "claude-sonnet-4-6",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "hi"}],
            },
        )


def test_progress_listeners_get_snapshots_on_the_loop_clock(tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 200)
    snapshots: list[ProgressSnapshot] = []

    async def main() -> Any:
        return await run_batch(
            source,
            tmp_path / "out.jsonl",
            base_url="http://mock",
            transport=transport(app(rpm=600, window=1)),
            progress=snapshots.append,
        )

    summary = vrun(main())
    assert len(snapshots) >= 20  # about one a second of a ~20 s run, plus the last
    assert [s.t for s in snapshots] == sorted(s.t for s in snapshots)
    last = snapshots[-1]
    assert (last.finished, last.succeeded, last.total, last.remaining) == (200, 200, 200, 0)
    assert last.rpm_limit == 600
    # Once the first second's burst is out of the 10 s window, the rate is the limit's.
    steady = next(s for s in snapshots if s.t >= 12)
    assert 570 <= steady.rpm <= 610
    assert steady.eta is not None and 4 <= steady.eta <= 12  # ~80 left at 10 a second
    assert summary.succeeded == 200


def test_invalid_options_raise_value_error(tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 1)
    for kwargs, match in (
        ({"base_url": "127.0.0.1:8000"}, "base_url"),
        ({"base_url": "http://x", "rpm": 0}, "rpm"),
        ({"base_url": "http://x", "grace": -1}, "grace"),
        ({"base_url": "http://x", "max_attempts": 0}, "max_attempts"),
    ):
        with pytest.raises(ValueError, match=match):
            vrun(run_batch(source, tmp_path / "out.jsonl", progress=False, **kwargs))


def test_endpoint_does_not_double_v1() -> None:
    assert endpoint("https://api.openai.com/v1/", "/v1/embeddings") == "https://api.openai.com/v1/embeddings"
    assert endpoint("http://h:1", "/v1/messages") == "http://h:1/v1/messages"
    assert endpoint("http://h:1/proxy", "/v1/messages") == "http://h:1/proxy/v1/messages"
