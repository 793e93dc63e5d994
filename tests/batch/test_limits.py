"""Limits: validated, merged, learned from either provider's headers, turned into a Throttler."""

from __future__ import annotations

import httpx
import pytest

from throttle_lab import Tokens
from throttle_lab.batch import BatchLimits, limits_from_headers

from .helpers import vrun


def test_openai_headers_give_rpm_tpm_and_the_burst() -> None:
    headers = httpx.Headers(
        {
            "X-RateLimit-Limit-Requests": "6000",
            "x-ratelimit-limit-tokens": "1000000",
            "x-ratelimit-remaining-requests": "99",
        }
    )
    assert limits_from_headers(headers) == BatchLimits(rpm=6000, tpm=1_000_000, burst_seconds=1.0)


def test_anthropic_headers_give_rpm_itpm_otpm() -> None:
    learned = limits_from_headers(
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-input-tokens-limit": "30000",
            "anthropic-ratelimit-output-tokens-limit": "8000",
        }
    )
    assert learned == BatchLimits(rpm=50, itpm=30_000, otpm=8_000, burst_seconds=60.0)


def test_garbage_headers_are_ignored_and_no_headers_teach_nothing() -> None:
    assert limits_from_headers({"x-ratelimit-limit-requests": "lots", "x-ratelimit-limit-tokens": "-5"}) == (
        BatchLimits()
    )
    assert limits_from_headers({}) == BatchLimits()


def test_given_limits_win_over_learned_ones() -> None:
    merged = BatchLimits(rpm=100, max_concurrent=4).merged(BatchLimits(rpm=600, tpm=9_000, burst_seconds=1))
    assert merged == BatchLimits(rpm=100, tpm=9_000, max_concurrent=4, burst_seconds=1)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rpm", 0),
        ("tpm", -1),
        ("itpm", float("nan")),
        ("otpm", float("inf")),
        ("max_concurrent", 1.5),
        ("burst_seconds", 0),
        ("rpm", True),
    ],
)
def test_invalid_limits_raise_value_error_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        BatchLimits(**{field: value})


def test_anthropic_lines_get_split_budgets_and_openai_lines_do_not() -> None:
    limits = BatchLimits(rpm=60, tpm=1000, itpm=600, otpm=300, burst_seconds=60)
    anthropic = limits.throttler("anthropic")
    assert anthropic.input_tokens is not None and anthropic.output_tokens is not None
    assert anthropic.input_tokens.max_weight == 600 and anthropic.output_tokens.max_weight == 300

    async def charge() -> bool:
        return anthropic.try_acquire(Tokens(input=10, output=20)) is not None

    assert vrun(charge())
    openai = limits.throttler("openai")
    assert openai.input_tokens is None and openai.tokens is not None


def test_a_burst_too_small_for_one_request_is_raised_to_hold_one() -> None:
    throttler = BatchLimits(rpm=30, burst_seconds=1).throttler("openai")
    assert throttler.burst_seconds == 2.0  # 30 rpm: one request every 2 s
