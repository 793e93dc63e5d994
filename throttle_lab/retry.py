"""RetryPolicy: when to try a request again, and how long to wait first.

A request that fails with a *retryable* answer (429 rate limited, 5xx, 529 overloaded) is tried again after a
delay; anything else is final.  The delay is the larger of the backoff strategy's and the server's hint, so
a client never knocks before the server said it may::

    attempt 1 ── 429 (retry-after: 2) ── wait max(backoff(0), 2) ── attempt 2 ── 503 ── wait backoff(1) ──
    ... gives up after max_attempts, or when the next try would start after max_elapsed seconds

>>> from throttle_lab import RetryPolicy, ExponentialBackoff
>>> policy = RetryPolicy(max_attempts=3, backoff=ExponentialBackoff(base=1.0, cap=8.0))
>>> policy.next_delay(attempt=1, status=429, hint=2.5)   # the hint wins over backoff(0) = 1.0
2.5
>>> policy.next_delay(attempt=2, status=503, hint=None)  # backoff(1) = 2.0
2.0
>>> policy.next_delay(attempt=3, status=503, hint=None) is None   # that was the last attempt
True
>>> policy.next_delay(attempt=1, status=400, hint=None) is None   # a bad request is never retried
True
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from .backoff import Backoff, FullJitter

__all__ = ["RETRYABLE_STATUSES", "RetryError", "RetryPolicy"]

#: Answers worth another try: rate limited, the server's own trouble, "overloaded".
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


class RetryError(Exception):
    """Raised when a request gives up; ``last_response`` is the final answer (an ``httpx.Response``)."""

    def __init__(self, message: str, *, attempts: int, last_response: Any = None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_response = last_response

    @property
    def status_code(self) -> int | None:
        return getattr(self.last_response, "status_code", None)


@dataclass
class RetryPolicy:
    """How many times to try, for how long, and how long to wait between tries.

    Args:
        max_attempts: attempts in all, the first included (1: never retry).
        max_elapsed: seconds from the first attempt after which no new attempt starts.
        backoff: the delay strategy (default: full jitter from 0.5 s, capped at 30 s, seeded).
        retry_statuses: the status codes worth another try.
        respect_hint: never retry earlier than the server's ``retry-after`` hint (on by default:
            an earlier retry is a guaranteed 429 that also counts against your limit).
        pause_on_429: with a :class:`~throttle_lab.Throttler`, a 429 pauses *every* request for the hint,
            not just the one that got it -- the others would hit the same wall.
    """

    max_attempts: int = 5
    max_elapsed: float = 300.0
    backoff: Backoff = field(default_factory=lambda: FullJitter(base=0.5, cap=30.0, seed=0))
    retry_statuses: Collection[int] = RETRYABLE_STATUSES
    respect_hint: bool = True
    pause_on_429: bool = True

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or self.max_attempts < 1
        ):
            raise ValueError(f"max_attempts must be a whole number of at least 1, got {self.max_attempts!r}")
        if not (isinstance(self.max_elapsed, int | float) and self.max_elapsed > 0):
            raise ValueError(f"max_elapsed must be a positive number of seconds, got {self.max_elapsed!r}")
        if math.isnan(self.max_elapsed):
            raise ValueError("max_elapsed must be a positive number of seconds, got nan")
        if not isinstance(self.backoff, Backoff):
            raise ValueError(f"backoff must have delay(attempt, hint) and reset(), got {self.backoff!r}")

    @classmethod
    def never(cls) -> RetryPolicy:
        """One attempt, no retries (the answer is returned as it is)."""
        return cls(max_attempts=1)

    def is_retryable(self, status: int) -> bool:
        return status in self.retry_statuses

    def next_delay(self, attempt: int, status: int, hint: float | None, elapsed: float = 0.0) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to give up.

        ``attempt`` counts from 1 (the attempt that just failed); ``elapsed`` is the time since the first
        attempt started.
        """
        if not self.is_retryable(status) or attempt >= self.max_attempts:
            return None
        delay = self.backoff.delay(attempt - 1, hint if self.respect_hint else None)
        if elapsed + delay > self.max_elapsed:
            return None
        return delay
