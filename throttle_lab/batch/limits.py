"""The limits a batch runs under: given on the command line, or learned from the provider's headers.

Every answer from OpenAI (and the mock server) says what the limits are; Anthropic's say the same in its
own words::

    x-ratelimit-limit-requests: 600          anthropic-ratelimit-requests-limit: 50
    x-ratelimit-limit-tokens: 100000         anthropic-ratelimit-input-tokens-limit: 30000
    x-ratelimit-remaining-requests: 9        anthropic-ratelimit-output-tokens-limit: 8000
                                             anthropic-ratelimit-requests-remaining: 49

So the runner sends the first request of each dialect alone, reads its answer's headers, and only then
builds the :class:`~throttle_lab.Throttler` for the rest.  The ``remaining`` count also tells how much
may go *at once*: a provider that enforces its per-minute limit over one second shows ``remaining: 9``
right after the first of 600 per minute (a bucket of 10 = one second's worth), so the throttler's
``burst_seconds`` becomes ``60 x (remaining + 1) / limit`` = 1 s rather than a whole minute's burst.

>>> learned = limits_from_headers({"x-ratelimit-limit-requests": "600", "x-ratelimit-limit-tokens": "100000",
...                                "x-ratelimit-remaining-requests": "9"})
>>> learned
BatchLimits(rpm=600.0, tpm=100000.0, burst_seconds=1.0)
>>> BatchLimits(tpm=50_000).merged(learned)      # what you give wins over what was learned
BatchLimits(rpm=600.0, tpm=50000.0, burst_seconds=1.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from ..core.throttler import Throttler
from .jsonl import Dialect

__all__ = ["BatchLimits", "limits_from_headers"]


def _check(name: str, value: float | None, *, whole: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value < math.inf):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if whole and value != int(value):
        raise ValueError(f"{name} must be a whole number, got {value!r}")


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """Client-side limits (``None``: none of that kind).  Invalid values raise ``ValueError``.

    ``rpm`` and ``max_concurrent`` apply to every line; ``tpm`` to OpenAI lines; ``itpm`` / ``otpm``
    (input and output tokens per minute) to Anthropic lines.  ``burst_seconds`` is how many seconds'
    worth of each limit may go at once (see :class:`~throttle_lab.Throttler`; 60 when nobody said).
    """

    rpm: float | None = None
    tpm: float | None = None
    itpm: float | None = None
    otpm: float | None = None
    max_concurrent: int | None = None
    burst_seconds: float | None = None

    def __post_init__(self) -> None:
        for name in ("rpm", "tpm", "itpm", "otpm", "burst_seconds"):
            _check(name, getattr(self, name))
        _check("max_concurrent", self.max_concurrent, whole=True)
        # One spelling for each: rates as floats, the concurrency cap as an int (frozen: set directly).
        for name in ("rpm", "tpm", "itpm", "otpm", "burst_seconds"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))
        if self.max_concurrent is not None:
            object.__setattr__(self, "max_concurrent", int(self.max_concurrent))

    def __repr__(self) -> str:
        given = [
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if getattr(self, f.name) is not None
        ]
        return f"BatchLimits({', '.join(given)})"

    def merged(self, learned: BatchLimits) -> BatchLimits:
        """These limits, with the gaps filled from ``learned``."""
        return replace(
            self,
            **{
                f.name: getattr(learned, f.name)
                for f in fields(self)
                if getattr(self, f.name) is None and getattr(learned, f.name) is not None
            },
        )

    def any_rate(self, dialect: Dialect) -> bool:
        """Whether there is any per-minute limit for lines of ``dialect``."""
        tokens = (self.tpm,) if dialect == "openai" else (self.itpm, self.otpm)
        return self.rpm is not None or any(t is not None for t in tokens)

    def throttler(self, dialect: Dialect, *, name: str | None = None) -> Throttler:
        """The :class:`~throttle_lab.Throttler` for one dialect's lines."""
        burst = self.burst_seconds if self.burst_seconds is not None else 60.0
        if self.rpm is not None:
            burst = max(burst, 60.0 / self.rpm)  # the bucket must hold one request, or none would go
        label = name or f"batch.{dialect}"
        split = dialect == "anthropic"  # Anthropic's input and output budgets apply to its lines only
        return Throttler(
            max_concurrent=self.max_concurrent,
            rpm=self.rpm,
            tpm=None if split else self.tpm,
            itpm=self.itpm if split else None,
            otpm=self.otpm if split else None,
            burst_seconds=burst,
            name=label,
        )


def _header_number(headers: Mapping[str, str], name: str) -> float | None:
    text = headers.get(name)
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None  # a header is data from the network: garbage is ignored, never raised
    return value if 0 < value < math.inf else None


def _remaining(headers: Mapping[str, str], name: str) -> float | None:
    text = headers.get(name)
    try:
        value = float(text.strip()) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and 0 <= value < math.inf else None


def limits_from_headers(headers: Mapping[str, str], *, charged: bool = True) -> BatchLimits:
    """The limits an answer's rate-limit headers announce (OpenAI's or Anthropic's); empty if none.

    ``charged``: the answer's request was taken from the bucket (a 2xx, or a fault after admission);
    a refusal (429, a 4xx before the limit check) was not, so its ``remaining`` is the whole bucket.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    anthropic = any(k.startswith("anthropic-ratelimit-") for k in lower)
    if anthropic:
        prefix = "anthropic-ratelimit-"
        rpm = _header_number(lower, prefix + "requests-limit")
        itpm = _header_number(lower, prefix + "input-tokens-limit")
        otpm = _header_number(lower, prefix + "output-tokens-limit")
        remaining = _remaining(lower, prefix + "requests-remaining")
        limits = BatchLimits(rpm=rpm, itpm=itpm, otpm=otpm)
    else:
        rpm = _header_number(lower, "x-ratelimit-limit-requests")
        tpm = _header_number(lower, "x-ratelimit-limit-tokens")
        remaining = _remaining(lower, "x-ratelimit-remaining-requests")
        limits = BatchLimits(rpm=rpm, tpm=tpm)
    if rpm is not None and remaining is not None:
        # One request was just taken from a bucket that (probably) was full: it holds remaining + 1.
        burst = min(60.0, 60.0 * (remaining + (1 if charged else 0)) / rpm)
        limits = replace(limits, burst_seconds=max(burst, 60.0 / rpm))
    return limits
