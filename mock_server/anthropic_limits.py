"""Anthropic's rate limits: requests, input tokens and output tokens per minute, and their headers.

OpenAI limits a request by *one* token budget (TPM), charged prompt + ``max_tokens`` up front. Anthropic
splits it in two, because reading and writing cost it differently:

=============  ==================================================================================
budget         charged
=============  ==================================================================================
RPM            one per request — the same requests bucket the OpenAI routes use (``rpm``: one
               account, whichever dialect it speaks)
ITPM           the request's input tokens (:func:`mock_server.tokens.messages_input_tokens`), at
               admission; they are known exactly, so nothing is adjusted later
OTPM           ``max_tokens`` at admission — the output is not known yet — then, when the reply ends,
               *adjusted* to the output really produced: the unused part is given back
               (``ServerConfig.output_reconcile``, on by default, as Anthropic documents: "OTPM rate
               limits are estimated based on max_tokens at the beginning of each request and
               adjusted at the end"). Off, ``max_tokens`` stays charged.
=============  ==================================================================================

Each budget is a continuously refilling bucket (:class:`~mock_server.buckets.RefillingBucket`) of
``limit * window / 60``, refilled at ``limit / 60`` per second, exactly like ``rpm``/``tpm``. So a client
that asks for a huge ``max_tokens`` "just in case" is admitted less often even though it writes little:
the reservation, not the output, decides admission — reconciliation only shortens how long it is held.

Checks, in order (the first that fails decides; a refusal is a 429 ``rate_limit_error``):

1. **never fits** — input tokens above the whole ITPM bucket, or ``max_tokens`` above the whole OTPM
   bucket: waiting cannot help, so the answer comes at once, with no ``retry-after`` and (the mock's own
   aid, obeyed by the official SDKs) ``x-should-retry: false``. Anthropic answers such a request with a
   429 ``rate_limit_error`` too; a 413 is for bodies over the size limit, not for budgets;
2. **concurrency** — ``max_concurrent`` requests of the key in flight;
3. **requests**, 4. **input tokens**, 5. **output tokens** — the bucket holds less than the charge.

Admission takes all three charges together or none. Every ``/v1/messages`` response (200 or error)
carries, for each budget that is configured::

    anthropic-ratelimit-requests-limit / -remaining / -reset
    anthropic-ratelimit-input-tokens-limit / -remaining / -reset
    anthropic-ratelimit-output-tokens-limit / -remaining / -reset
    anthropic-ratelimit-tokens-limit / -remaining / -reset     (whichever of input/output has the
                                                                fewest remaining: the tighter one)

``limit`` is the per-minute figure, ``remaining`` whole units in the bucket now, ``reset`` the RFC 3339
UTC time at which the bucket would be full again, to the millisecond (rounded up, so a client that waits
until then is never early). Reset times are loop time mapped to the wall once
(:meth:`~mock_server.state.ServerState.wall_time`), so they are exact on virtual time too. A 429 also
carries ``retry-after``: whole seconds (at least 1, at most 60) until this same request would fit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from .asgi import Headers
from .buckets import TOLERANCE, RefillingBucket
from .policy import MAX_RETRY_HINT, KeyState, ProviderPolicy

__all__ = ["MessagesDecision", "MessagesLimits", "rfc3339"]


def rfc3339(unix_time: float) -> str:
    """``2026-12-02T00:40:01.250Z``: a Unix time as RFC 3339 UTC, rounded *up* to the millisecond.

    >>> rfc3339(0.0), rfc3339(1.0001)
    ('1970-01-01T00:00:00.000Z', '1970-01-01T00:00:01.001Z')
    """
    micros = round(unix_time * 1_000_000)  # float noise below a microsecond is not a millisecond more
    ms = -(-micros // 1000)
    whole, frac = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{frac:03d}Z"


@dataclass(frozen=True, slots=True)
class MessagesDecision:
    """The outcome of one admission request on ``/v1/messages``."""

    admitted: bool
    limit_type: str | None
    """Which budget refused: ``requests``, ``input_tokens``, ``output_tokens`` or ``concurrency``."""
    message: str
    """The 429's message (empty when admitted)."""
    headers: Headers
    """``anthropic-ratelimit-*`` after the decision, plus ``retry-after`` / ``x-should-retry`` on a 429."""
    retry_after: int | None
    """Seconds in ``retry-after`` (None: no hint, the request can never fit or was admitted)."""
    remaining: dict[str, int | None]
    """``remaining_requests``, ``remaining_input_tokens``, ``remaining_output_tokens`` (event details)."""


class MessagesLimits:
    """Anthropic's admission rules over the shared :class:`ProviderPolicy`'s per-key buckets."""

    def __init__(self, policy: ProviderPolicy, wall_time: Callable[[float], float], reconcile: bool) -> None:
        self._policy = policy
        self._wall_time = wall_time
        self._reconcile = reconcile

    # -- headers ------------------------------------------------------------------------------------

    def headers(self, key: str, now: float) -> tuple[Headers, dict[str, int | None]]:
        """The ``anthropic-ratelimit-*`` headers of ``key`` at ``now`` and the remaining counts they show."""
        return self._headers(self._policy.state(key, now), now)

    def _headers(self, state: KeyState, now: float) -> tuple[Headers, dict[str, int | None]]:
        limits = self._policy.limits
        headers: Headers = []
        remaining: dict[str, int | None] = {}
        tightest: tuple[int, int, RefillingBucket] | None = None
        for name, per_minute, bucket in (
            ("requests", limits.rpm, state.requests),
            ("input-tokens", limits.itpm, state.input_tokens),
            ("output-tokens", limits.otpm, state.output_tokens),
        ):
            detail = "remaining_" + name.replace("-", "_")
            if bucket is None or per_minute is None:
                remaining[detail] = None
                continue
            left = bucket.remaining(now)
            remaining[detail] = left
            headers += self._triple(name, per_minute, left, bucket, now)
            if name != "requests" and (tightest is None or left < tightest[1]):
                tightest = (per_minute, left, bucket)
        if tightest is not None:
            headers += self._triple("tokens", *tightest, now)
        return headers, remaining

    def _triple(self, name: str, limit: int, left: int, bucket: RefillingBucket, now: float) -> Headers:
        prefix = b"anthropic-ratelimit-" + name.encode() + b"-"
        reset = rfc3339(self._wall_time(now + bucket.time_until_full(now)))
        return [
            (prefix + b"limit", str(limit).encode()),
            (prefix + b"remaining", str(left).encode()),
            (prefix + b"reset", reset.encode()),
        ]

    # -- admission ----------------------------------------------------------------------------------

    def admit(
        self, key: str, seq: int, input_tokens: int, max_tokens: int, model: str, now: float
    ) -> MessagesDecision:
        """Decide whether request ``seq`` of ``key`` goes now; if so, charge all three budgets."""
        policy = self._policy
        state = policy.state(key, now)
        limits = policy.limits
        requests, inputs, outputs = state.requests, state.input_tokens, state.output_tokens

        for kind, amount, bucket, per_minute in (
            ("input", input_tokens, inputs, limits.itpm),
            ("output", max_tokens, outputs, limits.otpm),
        ):
            if bucket is not None and amount > bucket.capacity + TOLERANCE:
                return self._refuse(
                    state,
                    now,
                    f"{kind}_tokens",
                    f"This request can never be admitted: it needs {amount:,} {kind} tokens"
                    f"{' (its max_tokens)' if kind == 'output' else ''}, more than your organization's "
                    f"whole budget of {per_minute:,} {kind} tokens per minute{self._window_note(bucket)} "
                    f"for {model}. Waiting will not help: "
                    + ("shorten the prompt." if kind == "input" else "lower max_tokens."),
                    never=True,
                )
        cap = limits.max_concurrent
        wait = state.concurrency_wait(cap, now)
        if wait is not None:
            return self._refuse(
                state,
                now,
                "concurrency",
                f"Your organization has {len(state.in_flight)} requests in flight, the most this mock "
                f"server allows at once ({cap}). Wait for one to finish before sending another.",
                extra_wait=wait,
                charges=(input_tokens, max_tokens),
            )
        for limit_type, amount, bucket, per_minute, unit in (
            ("requests", 1, requests, limits.rpm, "requests"),
            ("input_tokens", input_tokens, inputs, limits.itpm, "input tokens"),
            ("output_tokens", max_tokens, outputs, limits.otpm, "output tokens"),
        ):
            if bucket is not None and per_minute is not None and not bucket.fits(amount, now):
                how = (
                    " (output is charged at max_tokens until the reply ends)"
                    if unit == "output tokens"
                    else ""
                )
                return self._refuse(
                    state,
                    now,
                    limit_type,
                    f"This request would exceed your organization's rate limit of {per_minute:,} {unit} "
                    f"per minute{self._window_note(bucket)} for {model}: it needs {amount:,}{how}, "
                    f"{bucket.remaining(now):,} are left. The limit refills continuously; "
                    "retry after the time in the retry-after header.",
                    charges=(input_tokens, max_tokens),
                )

        if requests is not None:
            requests.take(1, now)
        if inputs is not None:
            inputs.take(input_tokens, now)
        if outputs is not None:
            outputs.take(max_tokens, now)
        state.in_flight[seq] = math.inf
        headers, remaining = self._headers(state, now)
        return MessagesDecision(True, None, "", headers, None, remaining)

    def settle(self, key: str, max_tokens: int, output_tokens: int, now: float) -> int:
        """The reply has ended having produced ``output_tokens``: give back the rest of ``max_tokens``.

        Returns the tokens given back (0 when reconciliation is off or OTPM is unlimited).
        """
        if not self._reconcile:
            return 0
        bucket = self._policy.state(key, now).output_tokens
        unused = max(0, max_tokens - output_tokens)
        if bucket is None or unused == 0:
            return 0
        bucket.give_back(unused, now)
        return unused

    # -- refusals -----------------------------------------------------------------------------------

    def _window_note(self, bucket: RefillingBucket) -> str:
        window = self._policy.config.window
        if window == 60.0:
            return ""
        return f" (enforced by this mock as {bucket.capacity:g} per {window:g}s)"

    def _refuse(
        self,
        state: KeyState,
        now: float,
        limit_type: str,
        message: str,
        *,
        never: bool = False,
        extra_wait: float = 0.0,
        charges: tuple[int, int] = (0, 0),
    ) -> MessagesDecision:
        requests = state.requests
        if self._policy.config.count_rejected and requests is not None:
            requests.take(1, now, floor=-requests.capacity)
        headers, remaining = self._headers(state, now)
        if never:
            # The mock's own aid: the official SDKs obey x-should-retry and stop retrying in vain.
            headers.append((b"x-should-retry", b"false"))
            return MessagesDecision(False, limit_type, message, headers, None, remaining)
        # When would this same request fit, counting what the refusal itself just took?
        wait = extra_wait
        input_tokens, max_tokens = charges
        for amount, bucket in (
            (1, requests),
            (input_tokens, state.input_tokens),
            (max_tokens, state.output_tokens),
        ):
            if bucket is not None:
                wait = max(wait, bucket.wait_for(amount, now))
        retry_after = max(1, math.ceil(min(wait, MAX_RETRY_HINT) - 1e-9))
        headers.append((b"retry-after", str(retry_after).encode()))
        return MessagesDecision(False, limit_type, message, headers, retry_after, remaining)
