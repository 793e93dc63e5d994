from __future__ import annotations

import math

import pytest

from throttle_lab import ExponentialBackoff, FullJitter, RetryError, RetryPolicy
from throttle_lab.client.retry import IDEMPOTENCY_HEADER, IDEMPOTENT_METHODS, RETRYABLE_STATUSES, HintMode


def policy(**kwargs: object) -> RetryPolicy:
    return RetryPolicy(backoff=ExponentialBackoff(base=1.0, factor=2.0, cap=8.0), **kwargs)  # type: ignore[arg-type]


def test_delays_follow_the_backoff_and_never_undercut_the_hint() -> None:
    p = policy(max_attempts=6)
    assert [p.next_delay(a, 503, None) for a in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert p.next_delay(1, 429, 3.0) == 3.0
    assert p.next_delay(4, 429, 3.0) == 8.0  # backoff already longer than the hint


def test_ignoring_the_hint_is_possible_but_not_the_default() -> None:
    assert policy(hint_mode="ignore").next_delay(1, 429, 30.0) == 1.0
    assert RetryPolicy().hint_mode == "max"


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
        ({"hint_mode": "sometimes"}, "hint_mode"),
        ({"hint_mode": True}, "hint_mode"),
        ({"retry_non_idempotent": "no"}, "retry_non_idempotent"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "Idempotency Key"}, "idempotency_key"),
        ({"idempotency_key": "X-Key:"}, "idempotency_key"),
        ({"idempotency_key": 1}, "idempotency_key"),
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


# ----------------------------------------------------------------------------------------------------------
# The default backoff is seeded per policy; explicit seeds repeat
# ----------------------------------------------------------------------------------------------------------


def draws(p: RetryPolicy, n: int = 20) -> list[float | None]:
    return [p.next_delay(1 + i % 4, 503, None) for i in range(n)]


def test_two_default_policies_draw_different_delays() -> None:
    # With one fixed seed every client using the default would retry in lockstep: the herd itself.
    first, second = draws(RetryPolicy()), draws(RetryPolicy())
    assert first != second
    assert all(d is not None and 0.0 <= d <= 30.0 for d in first + second)


def test_the_default_backoff_is_full_jitter_seeded_from_the_os() -> None:
    backoff = RetryPolicy().backoff
    assert repr(backoff) == "FullJitter(base=0.5, cap=30.0, seed=None)"
    assert RetryPolicy().backoff is not RetryPolicy().backoff  # one generator per policy, never shared


def test_explicit_seeds_reproduce() -> None:
    def seeded(seed: int) -> RetryPolicy:
        return RetryPolicy(backoff=FullJitter(base=0.5, cap=30.0, seed=seed))

    assert draws(seeded(7)) == draws(seeded(7))
    assert draws(seeded(7)) != draws(seeded(8))


# ----------------------------------------------------------------------------------------------------------
# Non-idempotent requests
# ----------------------------------------------------------------------------------------------------------


def test_by_default_every_method_is_retried_as_the_sdks_do() -> None:
    p = policy()
    for method in ("GET", "POST", "PATCH", None):
        assert p.next_delay(1, 503, None, method=method) == 1.0
        assert p.next_delay(1, 409, None, method=method) == 1.0


def test_only_idempotent_methods_are_retried_on_5xx_when_asked() -> None:
    p = policy(retry_non_idempotent=False)
    assert p.next_delay(1, 503, None, method="POST") is None
    assert p.next_delay(1, 500, None, method="patch") is None
    assert p.next_delay(1, 503, None) is None  # method unknown: not known to be safe, so not resent
    for method in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "get"):
        assert p.next_delay(1, 503, None, method=method) == 1.0, method
    assert {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"} == IDEMPOTENT_METHODS


def test_a_429_is_always_safe_to_retry() -> None:
    # The server refused before doing any work, so a POST that got a 429 did nothing.
    p = policy(retry_non_idempotent=False)
    assert p.next_delay(1, 429, 2.0, method="POST") == 2.0
    assert p.is_retryable(429, "POST") and not p.is_retryable(503, "POST")
    assert not policy(retry_non_idempotent=False, retry_statuses={503}).is_retryable(429, "POST")


def test_idempotency_header_names() -> None:
    assert RetryPolicy().idempotency_header is None
    assert RetryPolicy(idempotency_key=True).idempotency_header == IDEMPOTENCY_HEADER == "Idempotency-Key"
    assert RetryPolicy(idempotency_key="X-Request-Key").idempotency_header == "X-Request-Key"


# ----------------------------------------------------------------------------------------------------------
# Hint modes: max, hint + jitter, ignore
# ----------------------------------------------------------------------------------------------------------


def herd(mode: HintMode, attempt: int = 1, hint: float = 5.0, clients: int = 100) -> list[float]:
    """The waits of ``clients`` clients, each with its own seed, all given the same hint."""
    delays = []
    for seed in range(clients):
        p = RetryPolicy(backoff=FullJitter(base=0.5, cap=8.0, seed=seed), hint_mode=mode)
        delay = p.next_delay(attempt, 429, hint)
        assert delay is not None
        delays.append(delay)
    return delays


@pytest.mark.parametrize("attempt", [1, 2, 4])
def test_hint_plus_jitter_spreads_a_herd_given_the_same_hint(attempt: int) -> None:
    schedule = min(8.0, 0.5 * 2 ** (attempt - 1))
    delays = herd("plus_jitter", attempt)
    assert all(5.0 <= d <= 5.0 + schedule for d in delays)  # never early; at most the jitter's range late
    assert max(delays) - min(delays) > 0.8 * schedule  # spread over (nearly) the whole range
    assert len(set(delays)) == len(delays)


def test_max_sends_the_herd_back_at_the_hint_instant() -> None:
    # The jitter (< 0.5 s on the first retry) never beats a 5 s hint: everyone returns at 5.0 exactly.
    assert set(herd("max")) == {5.0}


def test_ignore_retries_before_the_hint() -> None:
    assert all(d < 0.5 for d in herd("ignore"))


def test_plus_jitter_without_a_hint_is_the_backoff() -> None:
    assert policy(hint_mode="plus_jitter").next_delay(2, 503, None) == 2.0
    assert policy(hint_mode="plus_jitter").next_delay(1, 429, 3.0) == 4.0  # 3 s hint + backoff(0) = 1 s


def test_plus_jitter_still_gives_up_past_max_elapsed() -> None:
    p = policy(hint_mode="plus_jitter", max_elapsed=10.0)
    assert p.next_delay(1, 429, 9.5) is None  # 9.5 + 1 > 10


@pytest.mark.parametrize("mode", ["max", "plus_jitter", "ignore"])
@pytest.mark.parametrize("hint", [-1.0, math.nan, math.inf, True])
def test_a_broken_hint_is_reported_in_every_mode(mode: str, hint: float) -> None:
    with pytest.raises(ValueError, match="hint"):
        policy(hint_mode=mode).next_delay(1, 429, hint)


def test_the_old_respect_hint_spelling_still_works() -> None:
    assert RetryPolicy(respect_hint=False).hint_mode == "ignore"
    assert RetryPolicy(respect_hint=True).hint_mode == "max"
    with pytest.raises(ValueError, match="respect_hint"):
        RetryPolicy(respect_hint="no")  # type: ignore[arg-type]
