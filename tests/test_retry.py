from __future__ import annotations

import math

import pytest

from throttle_lab import RETRYABLE_STATUSES, ExponentialBackoff, RetryError, RetryPolicy


def policy(**kwargs: object) -> RetryPolicy:
    return RetryPolicy(backoff=ExponentialBackoff(base=1.0, factor=2.0, cap=8.0), **kwargs)  # type: ignore[arg-type]


def test_delays_follow_the_backoff_and_never_undercut_the_hint() -> None:
    p = policy(max_attempts=6)
    assert [p.next_delay(a, 503, None) for a in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert p.next_delay(1, 429, 3.0) == 3.0
    assert p.next_delay(4, 429, 3.0) == 8.0  # backoff already longer than the hint


def test_ignoring_the_hint_is_possible_but_not_the_default() -> None:
    assert policy(respect_hint=False).next_delay(1, 429, 30.0) == 1.0


def test_gives_up_on_attempts_on_time_and_on_non_retryable_answers() -> None:
    p = policy(max_attempts=3, max_elapsed=10.0)
    assert p.next_delay(3, 429, None) is None
    assert p.next_delay(2, 429, None, elapsed=8.5) is None  # 8.5 + 2 > 10
    assert p.next_delay(1, 404, None) is None
    assert RetryPolicy.never().next_delay(1, 503, None) is None


def test_retryable_statuses() -> None:
    assert {429, 500, 503, 529} <= RETRYABLE_STATUSES and 400 not in RETRYABLE_STATUSES
    assert policy(retry_statuses={418}).is_retryable(418)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 2.5}, "max_attempts"),
        ({"max_elapsed": 0}, "max_elapsed"),
        ({"max_elapsed": math.nan}, "max_elapsed"),
        ({"backoff": "fast"}, "backoff"),
    ],
)
def test_invalid_policies(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_retry_error_carries_the_last_response() -> None:
    class FakeResponse:
        status_code = 429

    error = RetryError("gave up", attempts=3, last_response=FakeResponse())
    assert error.attempts == 3 and error.status_code == 429
    assert RetryError("x", attempts=1).status_code is None
