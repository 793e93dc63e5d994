"""Dry run: what a batch will cost and how long its limits make it take, before anything is sent.

Each request is charged what the provider will charge at admission (:func:`~throttle_lab.estimate_tokens`:
the input's tokens plus the reply budget), and each limit then implies a duration on its own::

    requests: 1,000 at 600 rpm, 10 at once (burst 1 s)     -> (1,000 - 10) / 10 per s         =  99.0 s
    tokens:   180,000 at 100,000 tpm, 1,667 at once       -> (180,000 - 1,667) / 1,667 per s = 107.0 s
                                                             the binding limit: tokens, ~107 s

That is a floor (the limits alone, with zero latency); :func:`~throttle_lab.batch.simulate_batch` adds
latency, concurrency and the 429s by running the same job on virtual time against the mock server.

>>> from throttle_lab.batch import parse_requests, BatchLimits
>>> import json
>>> lines = [json.dumps({"custom_id": str(i), "method": "POST", "url": "/v1/chat/completions",
...          "body": {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}})
...          for i in range(100)]
>>> estimate = estimate_batch(parse_requests(lines), BatchLimits(rpm=600, tpm=60_000, burst_seconds=1))
>>> estimate.requests, estimate.input_tokens, estimate.output_tokens
(100, 800.0, 10000.0)
>>> round(estimate.duration, 1), estimate.binding
(9.8, 'openai tpm')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..client.tokens import estimate_tokens
from .jsonl import BatchInput, Dialect
from .limits import BatchLimits

__all__ = ["BatchEstimate", "estimate_batch"]


@dataclass(frozen=True, slots=True)
class BatchEstimate:
    """Totals of a dry run.  ``duration`` is ``None`` when no rate limit is known (none given)."""

    requests: int
    input_tokens: float
    output_tokens: float
    duration: float | None
    binding: str | None
    too_large: tuple[tuple[str, str], ...]
    by_limit: tuple[tuple[str, float], ...]
    invalid: int = 0

    @property
    def tokens(self) -> float:
        return self.input_tokens + self.output_tokens

    def report(self) -> str:
        """Several lines for a person: totals, what each limit implies, the binding one."""
        lines = [
            f"dry run: {self.requests} requests, {self.input_tokens:,.0f} input tokens + "
            f"{self.output_tokens:,.0f} reply budget (max_tokens) = {self.tokens:,.0f} tokens charged",
        ]
        for label, seconds in self.by_limit:
            lines.append(f"  {label}: at least {seconds:,.1f} s")
        if self.duration is None:
            lines.append("  no rate limits given: the duration is unknown until the server names them")
        else:
            lines.append(f"  expected duration: at least {self.duration:,.1f} s (bound by {self.binding})")
        if self.too_large:
            lines.append(f"  {len(self.too_large)} request(s) too large for the token budget, would fail:")
            lines.extend(f"    {custom_id}: {reason}" for custom_id, reason in self.too_large[:10])
        if self.invalid:
            lines.append(f"  {self.invalid} invalid input line(s), would not be sent")
        return "\n".join(lines)


def _seconds(amount: float, per_minute: float, burst_seconds: float) -> float:
    """How long ``amount`` units take through a bucket of ``per_minute`` that starts full."""
    capacity = per_minute * burst_seconds / 60.0
    return max(0.0, amount - capacity) * 60.0 / per_minute


def estimate_batch(
    batch: BatchInput,
    limits: BatchLimits,
    *,
    default_max_tokens: int = 100,
    skip: frozenset[str] = frozenset(),
) -> BatchEstimate:
    """Estimate ``batch`` (minus the ``custom_id`` s in ``skip``: those already done) under ``limits``."""
    totals: dict[Dialect, list[float]] = {}
    too_large: list[tuple[str, str]] = []
    burst = limits.burst_seconds if limits.burst_seconds is not None else 60.0
    count = 0
    for request in batch.requests:
        if request.custom_id in skip:
            continue
        tokens = estimate_tokens(request.body, path=request.url, default_max_tokens=default_max_tokens)
        reason = _too_large(request.dialect, tokens.input, tokens.output, limits, burst)
        if reason is not None:
            too_large.append((request.custom_id, reason))
            continue
        count += 1
        sums = totals.setdefault(request.dialect, [0, 0.0, 0.0])
        sums[0] += 1
        sums[1] += tokens.input
        sums[2] += tokens.output
    by_limit: list[tuple[str, float]] = []
    for dialect, (n, read, written) in totals.items():
        token_limits = (
            [("tpm", limits.tpm, read + written)]
            if dialect == "openai"
            else [
                ("itpm", limits.itpm, read),
                ("otpm", limits.otpm, written),
                ("tpm", limits.tpm, read + written),
            ]
        )
        for label, limit, amount in [("rpm", limits.rpm, n), *token_limits]:
            if limit is not None:
                by_limit.append((f"{dialect} {label}", _seconds(amount, limit, max(burst, 60.0 / limit))))
    binding = max(by_limit, key=lambda item: item[1]) if by_limit else None
    return BatchEstimate(
        requests=count,
        input_tokens=sum(t[1] for t in totals.values()),
        output_tokens=sum(t[2] for t in totals.values()),
        duration=binding[1] if binding else None,
        binding=binding[0] if binding else None,
        too_large=tuple(too_large),
        by_limit=tuple(by_limit),
        invalid=len(batch.problems),
    )


def _too_large(
    dialect: Dialect, read: float, written: float, limits: BatchLimits, burst: float
) -> str | None:
    checks = (
        [("tpm", limits.tpm, read + written)]
        if dialect == "openai"
        else [("itpm", limits.itpm, read), ("otpm", limits.otpm, written)]
    )
    for label, limit, amount in checks:
        if limit is not None and amount > limit * burst / 60.0 + 1e-9 * amount and not math.isinf(limit):
            return f"{amount:g} tokens against a {label} budget of {limit * burst / 60.0:g} at once"
    return None
