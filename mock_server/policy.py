"""The provider's admission policy: limits, rate-limit headers and 429 bodies.

For each API key (or one shared key when ``per_key`` is off) the policy keeps a requests bucket, a tokens
bucket and the set of requests in flight. A request asks for admission with its token *charge*
(estimated prompt tokens + ``max_tokens`` by default) and gets a :class:`Decision`. Checks run in this
order, and the first that fails decides:

1. **quota** — the prepaid token balance cannot cover the charge → 429 ``insufficient_quota``
   (no retry hint, and -- the mock's own aid -- ``x-should-retry: false``: waiting will not help);
2. **too large** — the charge exceeds the whole tokens bucket, so it could never be admitted → 429 with
   type ``tokens`` and code ``rate_limit_exceeded``, as OpenAI answers: only the message ("Request too
   large for ... Limit ..., Requested ...") and the missing retry hint tell it from an ordinary token
   429. ``flag_too_large`` (a mock-only aid) gives it the distinct code ``request_too_large`` and
   ``x-should-retry: false``, so clients -- and the official SDKs -- do not retry in vain;
3. **concurrency** — ``max_concurrent`` requests already in flight → 429 ``rate_limit_exceeded``;
4. **requests** — the requests bucket holds less than 1 → 429 type ``requests``;
5. **tokens** — the tokens bucket holds less than the charge → 429 type ``tokens``.

Admission is all or nothing: one request and the whole charge are taken together, and never refunded —
not even if the request later fails. A refused request still takes one request from the requests bucket
when ``count_rejected`` is on (debt allowed down to ``-capacity``).

Each key's state also holds Anthropic's input- and output-token buckets (``itpm``/``otpm``); the
``/v1/messages`` route admits against them, and against the same requests bucket and in-flight set, by
Anthropic's rules (:mod:`mock_server.anthropic_limits`), so ``rpm`` and ``max_concurrent`` are one
account's across both dialects. The checks above are the OpenAI routes'.

Every answer carries the ``x-ratelimit-*`` headers computed *after* the decision; a rate-limit 429 also
carries ``retry-after`` (whole seconds, rounded up) and ``retry-after-ms``: the time until this same
request would fit, capped at 60 s because older SDKs ignore longer hints.
"""

from __future__ import annotations

import enum
import hashlib
import math
from dataclasses import dataclass
from typing import Any, Final

from .buckets import TOLERANCE, RefillingBucket, ceil_ms, format_duration
from .config import ServerConfig
from .errors import error_body

__all__ = [
    "KEEP",
    "MAX_RETRY_HINT",
    "SHARED_KEY",
    "Decision",
    "Keep",
    "KeyState",
    "Limits",
    "ProviderPolicy",
    "hash_key",
]

MAX_RETRY_HINT = 60.0
"""Seconds: the longest retry hint sent. Older SDKs ignore larger hints; the newest give up above 120 s."""

SHARED_KEY = "*"
"""The key every request shares when limits are not per API key."""

_MAX_IDLE_KEYS = 10_000  # beyond this many keys, forget idle ones (a fuzzer must not exhaust memory)

Headers = list[tuple[bytes, bytes]]


class Keep(enum.Enum):
    """Type of :data:`KEEP`."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP
"""Sentinel for :meth:`ProviderPolicy.set_limits`: leave this limit as it is (``None`` means unlimited)."""


def _configured(config: ServerConfig) -> Limits:
    return Limits(config.rpm, config.tpm, config.max_concurrent, config.itpm, config.otpm)


def hash_key(authorization: str | None) -> str:
    """A short, stable label for an API key, safe to show in traces (never the key itself)."""
    if not authorization:
        return "anonymous"
    return "key-" + hashlib.sha256(authorization.encode("utf-8", "replace")).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits in force. ``None`` = unlimited."""

    rpm: int | None
    tpm: int | None
    max_concurrent: int | None
    itpm: int | None = None
    """Input tokens per minute (Anthropic's ``/v1/messages`` only)."""
    otpm: int | None = None
    """Output tokens per minute (Anthropic's ``/v1/messages`` only)."""


@dataclass(slots=True)
class KeyState:
    """Buckets and in-flight requests of one API key."""

    requests: RefillingBucket | None
    tokens: RefillingBucket | None
    in_flight: dict[int, float]
    """Arrival number → loop time the request is expected to finish (``inf`` until its latency is known)."""
    input_tokens: RefillingBucket | None = None
    """ITPM (``/v1/messages``; see :mod:`mock_server.anthropic_limits`)."""
    output_tokens: RefillingBucket | None = None
    """OTPM (``/v1/messages``)."""

    def concurrency_wait(self, cap: int | None, now: float) -> float | None:
        """``None`` while fewer than ``cap`` requests are in flight; at the cap, seconds until the first of
        them is expected to finish (0 when that is unknown or past) -- what a 429's hint is built from."""
        if cap is None or len(self.in_flight) < cap:
            return None
        soonest = min(self.in_flight.values())
        return soonest - now if math.isfinite(soonest) and soonest > now else 0.0


@dataclass(slots=True)
class Decision:
    """The outcome of one admission request."""

    admitted: bool
    status: int
    """200 when admitted, otherwise the status of the refusal."""
    limit_type: str | None
    """Which limit refused: ``requests``, ``tokens``, ``concurrency`` or ``quota``."""
    code: str | None
    body: bytes
    """The error body of a refusal (empty when admitted)."""
    headers: Headers
    remaining_requests: int | None
    remaining_tokens: int | None
    retry_after_ms: int | None
    """The hint sent, in ms; ``None`` when no hint was sent."""


class ProviderPolicy:
    """Limits for every key, decided at loop times passed in by the caller."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.limits = _configured(config)
        self.quota_used = 0
        self._states: dict[str, KeyState] = {}
        self._limit_headers = self._build_limit_headers()

    # -- state --------------------------------------------------------------------------------------

    def _bucket(self, per_minute: int | None, now: float) -> RefillingBucket | None:
        if per_minute is None:
            return None
        return RefillingBucket(self.config.capacity(per_minute), per_minute / 60.0, now)

    def state(self, key: str, now: float) -> KeyState:
        """The state of ``key``, created (buckets full) on first use."""
        state = self._states.get(key)
        if state is None:
            if len(self._states) >= _MAX_IDLE_KEYS:
                self._forget_idle(now)
            limits = self.limits
            state = KeyState(
                self._bucket(limits.rpm, now),
                self._bucket(limits.tpm, now),
                {},
                self._bucket(limits.itpm, now),
                self._bucket(limits.otpm, now),
            )
            self._states[key] = state
        return state

    def _forget_idle(self, now: float) -> None:
        # A key with nothing in flight and full buckets carries no information: recreating it is exact.
        for key, state in list(self._states.items()):
            if not state.in_flight and all(
                b is None or b.time_until_full(now) == 0.0
                for b in (state.requests, state.tokens, state.input_tokens, state.output_tokens)
            ):
                del self._states[key]

    def new_clock(self) -> None:
        """Forget bucket times and in-flight requests (a new loop's clock has another origin).

        Limits and the quota balance are kept: they are not tied to any clock.
        """
        self._states.clear()

    def reset(self) -> None:
        """Forget all keys, usage and quota, and return to the configured limits."""
        self.limits = _configured(self.config)
        self.quota_used = 0
        self._states.clear()
        self._limit_headers = self._build_limit_headers()

    def set_limits(
        self,
        now: float,
        *,
        rpm: int | Keep | None = KEEP,
        tpm: int | Keep | None = KEEP,
        max_concurrent: int | Keep | None = KEEP,
        itpm: int | Keep | None = KEEP,
        otpm: int | Keep | None = KEEP,
    ) -> Limits:
        """Change limits at ``now``, keeping each key's current usage (see :meth:`RefillingBucket.resize`)."""
        old = self.limits
        new = Limits(
            old.rpm if rpm is KEEP else rpm,
            old.tpm if tpm is KEEP else tpm,
            old.max_concurrent if max_concurrent is KEEP else max_concurrent,
            old.itpm if itpm is KEEP else itpm,
            old.otpm if otpm is KEEP else otpm,
        )
        # Validate through the config's own rules, so errors name the argument the same way.
        ServerConfig(
            rpm=new.rpm,
            tpm=new.tpm,
            itpm=new.itpm,
            otpm=new.otpm,
            max_concurrent=new.max_concurrent,
            window=self.config.window,
        )
        for state in self._states.values():
            state.requests = self._resized(state.requests, new.rpm, now)
            state.tokens = self._resized(state.tokens, new.tpm, now)
            state.input_tokens = self._resized(state.input_tokens, new.itpm, now)
            state.output_tokens = self._resized(state.output_tokens, new.otpm, now)
        self.limits = new
        self._limit_headers = self._build_limit_headers()
        return new

    def _resized(
        self, bucket: RefillingBucket | None, per_minute: int | None, now: float
    ) -> RefillingBucket | None:
        if per_minute is None:
            return None
        if bucket is None:
            return self._bucket(per_minute, now)
        bucket.resize(self.config.capacity(per_minute), per_minute / 60.0, now)
        return bucket

    # -- headers ------------------------------------------------------------------------------------

    def _build_limit_headers(self) -> Headers:
        headers: Headers = []
        if self.limits.rpm is not None:
            headers.append((b"x-ratelimit-limit-requests", str(self.limits.rpm).encode()))
        if self.limits.tpm is not None:
            headers.append((b"x-ratelimit-limit-tokens", str(self.limits.tpm).encode()))
        return headers

    def rate_headers(self, state: KeyState, now: float) -> tuple[Headers, int | None, int | None]:
        """The ``x-ratelimit-*`` headers for ``state`` at ``now``, and the two remaining counts they show.

        A pair of headers is omitted for a kind that is unlimited (its count is then None).
        """
        headers = list(self._limit_headers)
        counts: list[int | None] = []
        for name, bucket in ((b"requests", state.requests), (b"tokens", state.tokens)):
            if bucket is None:
                counts.append(None)
                continue
            remaining = bucket.remaining(now)
            counts.append(remaining)
            headers.append((b"x-ratelimit-remaining-" + name, str(remaining).encode()))
            headers.append(
                (b"x-ratelimit-reset-" + name, format_duration(bucket.time_until_full(now)).encode())
            )
        return headers, counts[0], counts[1]

    # -- admission ----------------------------------------------------------------------------------

    def admit(self, key: str, seq: int, charge: int, model: str, now: float) -> Decision:
        """Decide whether request number ``seq`` of ``key``, charging ``charge`` tokens, goes now."""
        state = self.state(key, now)
        limits = self.limits
        requests, tokens = state.requests, state.tokens

        quota = self.config.quota_tokens
        if quota is not None and self.quota_used + charge > quota:
            return self._refuse(
                state,
                now,
                limit_type="quota",
                type_="insufficient_quota",
                code="insufficient_quota",
                message="You exceeded your current quota (a prepaid balance of "
                f"{quota} tokens on this mock server; {self.quota_used} used, {charge} requested). "
                "Waiting will not help: this request will not succeed until the quota is raised.",
                hint=False,
                dont_retry=True,
            )
        if tokens is not None and charge > tokens.capacity + TOLERANCE:
            return self._refuse(
                state,
                now,
                limit_type="tokens",
                type_="tokens",
                code="request_too_large" if self.config.flag_too_large else "rate_limit_exceeded",
                message=f"Request too large for {model} on tokens per min (TPM): Limit {limits.tpm}"
                f"{self._window_note(tokens)}, Requested {charge}. No amount of waiting lets a request this "
                "big through: reduce the prompt or max_tokens.",
                hint=False,
                dont_retry=self.config.flag_too_large,
            )
        cap = limits.max_concurrent
        wait = state.concurrency_wait(cap, now)
        if wait is not None:
            return self._refuse(
                state,
                now,
                limit_type="concurrency",
                type_="requests",
                code="rate_limit_exceeded",
                message=f"Too many concurrent requests for {model}: Limit {cap} in flight, "
                f"In flight {len(state.in_flight)}. Please wait for a request to finish.",
                hint=True,
                charge=charge,
                extra_wait=wait,
            )
        if requests is not None and not requests.fits(1, now):
            return self._refuse(
                state,
                now,
                limit_type="requests",
                type_="requests",
                code="rate_limit_exceeded",
                message=f"Rate limit reached for {model} on requests per min (RPM): Limit {limits.rpm}"
                f"{self._window_note(requests)}, Used {self._used(requests, now)}, Requested 1.",
                hint=True,
                charge=charge,
            )
        if tokens is not None and not tokens.fits(charge, now):
            return self._refuse(
                state,
                now,
                limit_type="tokens",
                type_="tokens",
                code="rate_limit_exceeded",
                message=f"Rate limit reached for {model} on tokens per min (TPM): Limit {limits.tpm}"
                f"{self._window_note(tokens)}, Used {self._used(tokens, now)}, Requested {charge}.",
                hint=True,
                charge=charge,
            )

        if requests is not None:
            requests.take(1, now)
        if tokens is not None:
            tokens.take(charge, now)
        self.quota_used += charge
        state.in_flight[seq] = math.inf
        headers, remaining_requests, remaining_tokens = self.rate_headers(state, now)
        return Decision(
            admitted=True,
            status=200,
            limit_type=None,
            code=None,
            body=b"",
            headers=headers,
            remaining_requests=remaining_requests,
            remaining_tokens=remaining_tokens,
            retry_after_ms=None,
        )

    def _window_note(self, bucket: RefillingBucket) -> str:
        window = self.config.window
        if window == 60.0:
            return ""
        # The mock's own addition to OpenAI's wording: it shows the bucket actually enforced.
        return f" per min, enforced as {bucket.capacity:g} per {window:g}s"

    @staticmethod
    def _used(bucket: RefillingBucket, now: float) -> int:
        return max(0, math.ceil(bucket.used(now) - TOLERANCE))

    def _refuse(
        self,
        state: KeyState,
        now: float,
        *,
        limit_type: str,
        type_: str,
        code: str,
        message: str,
        hint: bool,
        dont_retry: bool = False,
        charge: int = 0,
        extra_wait: float = 0.0,
    ) -> Decision:
        """Answer 429: count the refusal if configured, then build headers (with a hint) and the body."""
        requests, tokens = state.requests, state.tokens
        if self.config.count_rejected and requests is not None:
            requests.take(1, now, floor=-requests.capacity)
        headers, remaining_requests, remaining_tokens = self.rate_headers(state, now)
        retry_ms: int | None = None
        if hint:
            # When would this same request fit, counting what the refusal itself just took?
            wait = extra_wait
            if requests is not None:
                wait = max(wait, requests.wait_for(1, now))
            if tokens is not None:
                wait = max(wait, tokens.wait_for(charge, now))
            retry_ms = ceil_ms(min(wait, MAX_RETRY_HINT))
            message += f" Please try again in {format_duration(retry_ms / 1000)}."
            headers.append((b"retry-after", str(-(-retry_ms // 1000)).encode()))
            headers.append((b"retry-after-ms", str(retry_ms).encode()))
        if dont_retry:
            # The mock's own aid, not OpenAI's: the official SDKs obey x-should-retry and stop retrying.
            headers.append((b"x-should-retry", b"false"))
        return Decision(
            admitted=False,
            status=429,
            limit_type=limit_type,
            code=code,
            body=error_body(message, type_, None, code),
            headers=headers,
            remaining_requests=remaining_requests,
            remaining_tokens=remaining_tokens,
            retry_after_ms=retry_ms,
        )

    # -- in flight ----------------------------------------------------------------------------------

    def expect_end(self, key: str, seq: int, end: float) -> None:
        """Record when admitted request ``seq`` expects to finish (feeds the concurrency retry hint)."""
        state = self._states.get(key)
        if state is not None and seq in state.in_flight:
            state.in_flight[seq] = end

    def release(self, key: str, seq: int) -> None:
        """Admitted request ``seq`` is finished (completed, failed or abandoned)."""
        state = self._states.get(key)
        if state is not None:
            state.in_flight.pop(seq, None)

    # -- inspection ---------------------------------------------------------------------------------

    def snapshot(self, now: float) -> dict[str, Any]:
        """Limits, quota and every key's bucket levels at ``now``, as JSON-friendly data."""
        keys: dict[str, Any] = {}
        for key, state in self._states.items():
            entry: dict[str, Any] = {"in_flight": len(state.in_flight)}
            for name, bucket in (
                ("requests", state.requests),
                ("tokens", state.tokens),
                ("input_tokens", state.input_tokens),
                ("output_tokens", state.output_tokens),
            ):
                if bucket is not None:
                    entry[name] = {
                        "capacity": bucket.capacity,
                        "level": bucket.level(now),
                        "remaining": bucket.remaining(now),
                        "reset_seconds": bucket.time_until_full(now),
                    }
            keys[key] = entry
        limits: dict[str, Any] = {
            "rpm": self.limits.rpm,
            "tpm": self.limits.tpm,
            "max_concurrent": self.limits.max_concurrent,
            "window": self.config.window,
        }
        if self.limits.itpm is not None or self.limits.otpm is not None:
            # Anthropic's budgets, shown once one is set (an OpenAI-only server's stats stay as they were).
            limits["itpm"] = self.limits.itpm
            limits["otpm"] = self.limits.otpm
        return {
            "limits": limits,
            "quota": {"limit": self.config.quota_tokens, "used": self.quota_used},
            "keys": keys,
        }
