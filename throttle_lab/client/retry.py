"""RetryPolicy: when to try a request again, and how long to wait first.

A request that fails with a *retryable* answer (429 rate limited, 5xx, 529 overloaded) is tried again after a
delay; anything else is final.  By default the delay is the larger of the backoff strategy's and the server's
hint, so a client never knocks before the server said it may::

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

**Which requests are safe to send twice.**  A 429 is always safe to retry: the server refused the request
before doing any work (providers check their limits at admission), so nothing happened the first time.  A
500 or a 503 is different: the server may have done the work -- charged the tokens, created the file,
started the fine-tuning job -- and failed only to answer.  Sending a ``POST`` again may do it twice::

                           429          408 409 5xx 529                  anything else
    GET HEAD OPTIONS       retried      retried                          final
    TRACE PUT DELETE
    POST PATCH ...         retried      retried (the SDK default), or    final
                                        final with retry_non_idempotent=False

The default retries every method, as the official SDKs do.  Read from ``openai`` 3.57
(``openai/_base_client.py``, ``BaseClient._should_retry`` and the retry loop around it): any request,
``POST`` included, is retried on 408, 409, 429 and every status >= 500, and on connection errors and
timeouts, provided its body can be sent again.  The response can overrule the status either way with
``x-should-retry: true`` or ``false``, and a ``retry-after`` above 120 s means no retry at all.  For every
non-``GET`` request the SDK makes an idempotency key (``stainless-python-retry-<uuid4>``) that stays the same
across retries, but the OpenAI client names no header for it (``_idempotency_header`` is ``None``), so the
key never reaches the server.  (Here the 5xx list is narrower -- 500, 502, 503, 504, 529 -- and exceptions
are not retried: see ``retry_statuses`` and :class:`~throttle_lab.ThrottledTransport`.)

Two options make retries safe for your own API: ``retry_non_idempotent=False`` retries ``POST`` and
``PATCH`` on 429 only; ``idempotency_key=True`` sends an ``Idempotency-Key`` header, the same on every
attempt of one request and different for every request, which a server that honours it (Stripe's
convention, the IETF ``Idempotency-Key`` draft) uses to do the work once however often it is asked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from dataclasses import InitVar, dataclass, field
from typing import Any, Literal

from ..core.validation import check_non_negative
from .backoff import Backoff, FullJitter

__all__ = [
    "IDEMPOTENCY_HEADER",
    "IDEMPOTENT_METHODS",
    "RETRYABLE_STATUSES",
    "HintMode",
    "RetryError",
    "RetryPolicy",
]

#: Answers worth another try: rate limited, the server's own trouble, "overloaded".
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})

#: Methods whose effect is the same however often they are sent (RFC 9110, section 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})

#: The header ``idempotency_key=True`` sends (the name Stripe and the IETF draft use).
IDEMPOTENCY_HEADER = "Idempotency-Key"

#: How a server's ``retry-after`` hint combines with the backoff's own delay.
HintMode = Literal["max", "plus_jitter", "ignore"]
_HINT_MODES: tuple[HintMode, ...] = ("max", "plus_jitter", "ignore")

# An HTTP field name is a "token" (RFC 9110, section 5.6.2): no spaces, colons or other separators.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class RetryError(Exception):
    """Raised when a request gives up; ``last_response`` is the final answer (an ``httpx.Response``)."""

    def __init__(self, message: str, *, attempts: int, last_response: Any = None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_response = last_response

    @property
    def status_code(self) -> int | None:
        return getattr(self.last_response, "status_code", None)


def _default_backoff() -> Backoff:
    # Seeded from the operating system, afresh for every policy: a fixed seed here would give every client
    # that uses the default the same "random" waits -- a herd in lockstep.  Experiments that must repeat
    # pass their own seeded backoff.
    return FullJitter(base=0.5, cap=30.0, seed=None)


@dataclass
class RetryPolicy:
    """How many times to try, for how long, and how long to wait between tries.

    Args:
        max_attempts: attempts in all, the first included (1: never retry).
        max_elapsed: seconds from the first attempt after which no new attempt starts.
        backoff: the delay strategy (default: full jitter from 0.5 s, capped at 30 s, seeded from the
            operating system for every policy, so two clients never wait in step; pass e.g.
            ``FullJitter(base=0.5, cap=30.0, seed=0)`` for a repeatable run).
        retry_statuses: the status codes worth another try.
        hint_mode: what to do with the server's ``retry-after`` hint (see below).
        pause_on_429: with a :class:`~throttle_lab.Throttler`, a 429 pauses *every* request for the hint,
            not just the one that got it -- the others would hit the same wall.
        retry_non_idempotent: retry ``POST``, ``PATCH`` and other non-idempotent requests on every status
            in ``retry_statuses`` (the default, as the official SDKs do).  ``False``: only on 429, which
            the server answered before doing anything; a 5xx could mean the work was done.
        idempotency_key: ``True`` to send an ``Idempotency-Key`` header with every non-idempotent request
            (a header name to use another name): one fresh value per request, the same on all its
            attempts, never replacing a key the caller set.  Only a server that honours the header gets
            anything from it.

    The three hint modes, for a herd of clients refused at the same moment and all told "retry after 2 s"
    (their backoff alone would wait less than 1 s):

    =================  ======================  ======================================================
    ``hint_mode``      the wait                in a herd
    =================  ======================  ======================================================
    ``"max"``          ``max(backoff, hint)``  never early, but everyone at the hint: one wave
    ``"plus_jitter"``  ``hint + backoff``      never early *and* spread over the backoff's range
    ``"ignore"``       ``backoff``             early: a guaranteed 429 that counts against you
    =================  ======================  ======================================================

    >>> from throttle_lab import FullJitter
    >>> def herd(mode):
    ...     backoffs = [FullJitter(base=1.0, seed=s) for s in range(5, 10)]  # one client each
    ...     policies = [RetryPolicy(backoff=b, hint_mode=mode) for b in backoffs]
    ...     return [round(p.next_delay(attempt=1, status=429, hint=2.0), 2) for p in policies]
    >>> herd("max")
    [2.0, 2.0, 2.0, 2.0, 2.0]
    >>> herd("plus_jitter")
    [2.62, 2.79, 2.32, 2.23, 2.46]
    >>> herd("ignore")
    [0.62, 0.79, 0.32, 0.23, 0.46]

    ``"max"`` stays the default: a lone client waits no longer than it must, and requests that share a
    rate-limited :class:`~throttle_lab.Throttler` (``pause_on_429``) leave its pause at the throttler's pace,
    not as a wave.  Choose ``"plus_jitter"`` for clients that retry independently -- processes, workers,
    a design without a shared throttler -- but meet the same server.
    """

    max_attempts: int = 5
    max_elapsed: float = 300.0
    backoff: Backoff = field(default_factory=_default_backoff)
    retry_statuses: Collection[int] = RETRYABLE_STATUSES
    hint_mode: HintMode = "max"
    pause_on_429: bool = True
    retry_non_idempotent: bool = True
    idempotency_key: bool | str = False
    #: The 0.1 spelling, still accepted: ``respect_hint=False`` means ``hint_mode="ignore"``, ``True``
    #: means ``"max"``.
    respect_hint: InitVar[bool | None] = None

    def __post_init__(self, respect_hint: bool | None) -> None:
        if respect_hint is not None:
            if not isinstance(respect_hint, bool):
                raise ValueError(f"respect_hint must be True or False, got {respect_hint!r}")
            self.hint_mode = "max" if respect_hint else "ignore"
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
        if self.hint_mode not in _HINT_MODES:
            raise ValueError(
                f"hint_mode must be one of {', '.join(map(repr, _HINT_MODES))}, got {self.hint_mode!r}"
            )
        if not isinstance(self.retry_non_idempotent, bool):
            raise ValueError(f"retry_non_idempotent must be True or False, got {self.retry_non_idempotent!r}")
        key = self.idempotency_key
        if not isinstance(key, bool) and not (isinstance(key, str) and _TOKEN.fullmatch(key)):
            raise ValueError(
                f"idempotency_key must be True, False or a header name (letters, digits, '-'), got {key!r}"
            )

    @classmethod
    def never(cls) -> RetryPolicy:
        """One attempt, no retries (the answer is returned as it is)."""
        return cls(max_attempts=1)

    @property
    def idempotency_header(self) -> str | None:
        """The header that carries the idempotency key, or ``None`` when no key is sent."""
        if self.idempotency_key is True:
            return IDEMPOTENCY_HEADER
        return self.idempotency_key or None

    def is_retryable(self, status: int, method: str | None = None) -> bool:
        """Whether an answer ``status`` to a ``method`` request is worth another try.

        ``method=None`` (not known) counts as non-idempotent: with ``retry_non_idempotent=False`` only a
        429 is retried then.

        >>> safe = RetryPolicy(retry_non_idempotent=False)
        >>> safe.is_retryable(503, "GET"), safe.is_retryable(503, "POST"), safe.is_retryable(429, "POST")
        (True, False, True)
        """
        if status not in self.retry_statuses:
            return False
        if status == 429 or self.retry_non_idempotent:
            return True
        return method is not None and method.upper() in IDEMPOTENT_METHODS

    def next_delay(
        self,
        attempt: int,
        status: int,
        hint: float | None,
        elapsed: float = 0.0,
        *,
        method: str | None = None,
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to give up.

        ``attempt`` counts from 1 (the attempt that just failed); ``hint`` is the server's ``retry-after`` in
        seconds (``None``: none given); ``elapsed`` is the time since the first attempt started; ``method``
        the request's HTTP method (see :meth:`is_retryable`).
        """
        if hint is not None:
            # parse_retry_after never produces a bad value; getting one is a bug upstream, so say so.
            check_non_negative("hint", hint, unit="seconds")
        if not self.is_retryable(status, method) or attempt >= self.max_attempts:
            return None
        retry = attempt - 1  # the backoff counts retries from 0
        if self.hint_mode == "max":
            delay = self.backoff.delay(retry, hint)
        elif self.hint_mode == "plus_jitter":
            # The backoff is asked without the hint: it would otherwise fold the hint in with max() and the
            # spread would be lost again.
            delay = (hint or 0.0) + self.backoff.delay(retry, None)
        else:
            delay = self.backoff.delay(retry, None)
        if elapsed + delay > self.max_elapsed:
            return None
        return delay
