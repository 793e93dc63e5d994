"""Dry run: totals, the duration each limit implies, requests too large for the budget."""

from __future__ import annotations

import json

from throttle_lab.batch import BatchLimits, estimate_batch, parse_requests

from .helpers import MESSAGES, chat_line


def lines(*records: dict[str, object]) -> list[str]:
    return [json.dumps(r) for r in records]


def test_each_limit_implies_a_duration_and_the_longest_binds() -> None:
    batch = parse_requests(lines(*(chat_line(str(i), "hi", max_tokens=92) for i in range(700))))  # 100 each
    estimate = estimate_batch(batch, BatchLimits(rpm=600, tpm=30_000, burst_seconds=1))
    assert (estimate.requests, estimate.tokens) == (700, 70_000)
    by_limit = dict(estimate.by_limit)
    assert by_limit["openai rpm"] == (700 - 10) / 10  # 69 s
    assert by_limit["openai tpm"] == (70_000 - 500) / 500  # 139 s
    assert (estimate.duration, estimate.binding) == (139.0, "openai tpm")
    assert "expected duration: at least 139.0 s (bound by openai tpm)" in estimate.report()


def test_no_limits_no_duration() -> None:
    estimate = estimate_batch(parse_requests(lines(chat_line("a"))), BatchLimits())
    assert estimate.duration is None and "unknown" in estimate.report()


def test_requests_too_large_are_listed_not_counted() -> None:
    batch = parse_requests(lines(chat_line("small"), chat_line("huge", max_tokens=5_000)))
    estimate = estimate_batch(batch, BatchLimits(tpm=60_000, burst_seconds=1))
    assert estimate.requests == 1
    assert [custom_id for custom_id, _ in estimate.too_large] == ["huge"]
    assert "against a tpm budget of 1000 at once" in estimate.too_large[0][1]


def test_anthropic_lines_are_bound_by_input_and_output_budgets_and_done_ids_skipped() -> None:
    record = {
        "custom_id": "",
        "method": "POST",
        "url": MESSAGES,
        "body": {
            "model": "claude-sonnet-4-6",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "hi"}],
        },
    }
    batch = parse_requests(lines(*({**record, "custom_id": str(i)} for i in range(120))))
    estimate = estimate_batch(
        batch, BatchLimits(itpm=600, otpm=3_000, burst_seconds=60), skip=frozenset({"0", "1"})
    )
    assert estimate.requests == 118
    assert estimate.output_tokens == 118 * 50
    assert estimate.binding == "anthropic otpm"
    assert estimate.duration == (118 * 50 - 3_000) / 50
