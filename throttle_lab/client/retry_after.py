"""How long does the server want me to wait?  Reading rate-limit hints from response headers.

A provider that answers ``429 Too Many Requests`` usually says *when* to come back, but not always in the
same way.  This module reads every hint the big providers send and turns it into one number of seconds:

- ``retry-after-ms: 1500``: milliseconds (OpenAI, Anthropic);
- ``retry-after: 2`` or ``retry-after: Wed, 21 Oct 2015 07:28:00 GMT``: seconds or an HTTP-date (RFC 9110);
- ``x-ratelimit-reset-requests: 6m0s`` / ``x-ratelimit-reset-tokens: 20ms``: OpenAI, a Go-style duration
  until that budget has refilled;
- ``anthropic-ratelimit-tokens-reset: 2024-06-01T12:00:30Z`` (and ``-requests-``, ``-input-tokens-``,
  ``-output-tokens-``): Anthropic, the RFC 3339 instant the budget refills.

The first two are what the official ``openai`` and ``anthropic`` SDKs read, in that order; the reset
headers are the fallback when a server sends no ``retry-after`` at all.

>>> parse_retry_after({"Retry-After": "2"})
2.0
>>> retry_hint({"retry-after-ms": "1500", "retry-after": "2"})
RetryHint(delay=1.5, source='retry-after-ms')
>>> retry_hint({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s",
...             "x-ratelimit-remaining-tokens": "900", "x-ratelimit-reset-tokens": "20ms"})
RetryHint(delay=60.0, source='x-ratelimit-reset-requests')

(The last one is 6 minutes capped to the default ``cap`` of 60 s.)

Headers are data from the network, so nothing here ever raises on a bad header value: a value that is
garbage, negative, NaN or infinite is ignored and the next header in the order above is tried; a value above
``cap`` is cut to ``cap``; an absolute time in the past means "now" (0.0).  Only *your* arguments are
validated (``cap``, ``now``), with ``ValueError``.

This module says how long to wait; :mod:`throttle_lab.client.backoff` says how long to wait when the server
did not say, and never waits less than the hint found here.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_tz

from ..core.validation import check_finite, check_positive

__all__ = ["RetryHint", "parse_duration", "parse_retry_after", "retry_hint"]


# ----------------------------------------------------------------------------------------------------------
# Go durations ("1h2m3.5s"), as OpenAI writes x-ratelimit-reset-*
# ----------------------------------------------------------------------------------------------------------

# (multiplier, divisor) per unit: dividing by an exact power of ten keeps "20ms" == 0.02 exactly, where
# multiplying by 1e-3 can land one ulp off.  Go accepts both the micro sign (U+00B5) and Greek mu (U+03BC).
_UNITS: dict[str, tuple[float, float]] = {
    "ns": (1.0, 1e9),
    "us": (1.0, 1e6),
    "\u00b5s": (1.0, 1e6),
    "\u03bcs": (1.0, 1e6),
    "ms": (1.0, 1e3),
    "s": (1.0, 1.0),
    "m": (60.0, 1.0),
    "h": (3600.0, 1.0),
}
# "ms" must come before "m" in the alternation, or "1ms" would be read as "1m" followed by junk.
_UNIT_RE = "ns|us|\u00b5s|\u03bcs|ms|s|m|h"
# Go's number: digits with an optional fraction, or a bare fraction (".5s"); "1.s" is legal Go, "." is not.
_NUMBER_RE = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_DURATION_PART = re.compile(f"({_NUMBER_RE})({_UNIT_RE})")
_DURATION = re.compile(f"(?:{_NUMBER_RE}(?:{_UNIT_RE}))+")


def parse_duration(text: str) -> float | None:
    """Parse a Go duration string (what Go's ``time.Duration.String()`` prints) into seconds.

    OpenAI's ``x-ratelimit-reset-requests`` / ``-tokens`` headers use this format: a sequence of numbers,
    each with a unit among ``ns``, ``us`` (or ``µs``), ``ms``, ``s``, ``m``, ``h``.  As in Go, a bare ``0``
    is allowed and a leading sign is accepted (so ``-1s`` gives ``-1.0``; callers that want a wait must
    reject negatives themselves, as :func:`retry_hint` does).  Anything else, including a value too large
    to be finite, gives ``None``.

    >>> parse_duration("6m0s"), parse_duration("20ms"), parse_duration("1h2m3.5s")
    (360.0, 0.02, 3723.5)
    >>> parse_duration("500us"), parse_duration("0"), parse_duration("soon")
    (0.0005, 0.0, None)

    Unlike :func:`parse_retry_after`, this reads one value, not a set of headers, and it does not cap.
    """
    if not isinstance(text, str):  # headers are untyped at runtime; a stray int must not raise
        return None
    body = text.strip()
    sign = 1.0
    if body.startswith(("+", "-")):
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    if not _DURATION.fullmatch(body):
        return None
    seconds = math.fsum(
        float(number) * _UNITS[unit][0] / _UNITS[unit][1] for number, unit in _DURATION_PART.findall(body)
    )
    # A 400-digit number parses to inf; a duration nobody can wait for is garbage, not a hint.
    return sign * seconds if math.isfinite(seconds) else None


# ----------------------------------------------------------------------------------------------------------
# Other value formats
# ----------------------------------------------------------------------------------------------------------

# RFC 9110 delay-seconds is a bare integer; like the SDKs we also take decimals ("1.5"), which some servers
# send.  A strict pattern instead of float(): float() would also take "nan", "infinity" and "1_000".
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


def _number(value: str) -> float | None:
    """A finite decimal number, or None (for garbage, "nan", "inf" and overflow such as "1e400")."""
    text = value.strip()
    if not _DECIMAL.fullmatch(text):
        return None
    number = float(text)
    # The openai SDK reads an overflowing "1e400" as "too long, do not retry"; here it is simply not a
    # usable hint, so the next header (or the caller's backoff) decides.
    return number if math.isfinite(number) else None


def _http_date(value: str) -> float | None:
    """Epoch seconds of an HTTP-date (IMF-fixdate, RFC 850 or asctime form, RFC 9110 §5.6.7), or None."""
    try:
        parts = parsedate_tz(value)
        if parts is None:
            return None
        year, month, day, hour, minute, second = parts[:6]
        # datetime() validates the fields (parsedate_tz happily returns 31 February or hour 99); a leap
        # second (:60) is folded into the next second.
        leap = max(0, second - 59)
        when = datetime(year, month, day, hour, minute, second - leap, tzinfo=UTC)
        # HTTP dates are always GMT; a missing zone (asctime form) therefore means offset 0.
        return when.timestamp() + leap - (parts[9] or 0)
    except (ValueError, OverflowError, TypeError, IndexError):
        return None


def _rfc3339(value: str) -> float | None:
    """Epoch seconds of an RFC 3339 timestamp with an explicit offset (``...Z`` or ``...+02:00``), or None.

    datetime.fromisoformat() is not used because it also accepts forms RFC 3339 forbids (no offset, a bare
    date, week dates), and a time without an offset is ambiguous.
    """
    match = _RFC3339.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = float(match.group(7)) if match.group(7) else 0.0
    offset = timedelta(0)
    if match.group(8) is None:
        offset_hours, offset_minutes = int(match.group(10)), int(match.group(11))
        if offset_hours > 23 or offset_minutes > 59:
            return None
        offset = timedelta(hours=offset_hours, minutes=offset_minutes)
        if match.group(9) == "-":
            offset = -offset
    leap = max(0, second - 59)  # RFC 3339 allows :60 for a leap second
    try:
        when = datetime(year, month, day, hour, minute, second - leap, tzinfo=timezone(offset))
    except ValueError:
        return None
    return when.timestamp() + leap + fraction


# ----------------------------------------------------------------------------------------------------------
# The hint
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryHint:
    """A server's wait hint: ``delay`` seconds (already capped, never negative), read from header ``source``.

    ``source`` lets a trace or a lesson say *why* a client waited, e.g. ``"x-ratelimit-reset-tokens"``.
    """

    delay: float
    source: str


_Candidate = tuple[float, str, bool]  # (delay, header name, is that budget exhausted?)

_OPENAI_BUDGETS = ("requests", "tokens")
_ANTHROPIC_BUDGETS = ("requests", "tokens", "input-tokens", "output-tokens")


def _lowercased(headers: Mapping[str, str]) -> dict[str, str]:
    """A plain dict with lower-case names: case-insensitive lookup for any mapping, httpx.Headers included."""
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        if isinstance(name, str) and isinstance(value, str):
            lowered[name.lower()] = value
    return lowered


def _exhausted(headers: Mapping[str, str], name: str) -> bool:
    remaining = headers.get(name)
    return remaining is not None and _number(remaining) == 0.0


def _most_urgent(candidates: Iterable[_Candidate]) -> tuple[float, str] | None:
    """Prefer the budget that is actually used up; otherwise wait for the slowest one to refill.

    When only the token budget is at 0, waiting for the (usually longer) request reset would waste time;
    when nothing says which budget ran out, the longest reset is the only wait that is surely enough.
    """
    pool = list(candidates)
    exhausted = [candidate for candidate in pool if candidate[2]]
    pool = exhausted or pool
    if not pool:
        return None
    delay, source, _ = max(pool, key=lambda candidate: candidate[0])
    return delay, source


def _from_retry_after_ms(headers: Mapping[str, str]) -> tuple[float, str] | None:
    value = headers.get("retry-after-ms")
    number = None if value is None else _number(value)
    if number is None or number < 0:
        return None
    return number / 1000.0, "retry-after-ms"


def _from_retry_after_seconds(headers: Mapping[str, str]) -> tuple[float, str] | None:
    value = headers.get("retry-after")
    number = None if value is None else _number(value)
    if number is None or number < 0:
        return None
    return number, "retry-after"


def _from_retry_after_date(
    headers: Mapping[str, str], clock: Callable[[], float]
) -> tuple[float, str] | None:
    value = headers.get("retry-after")
    when = None if value is None else _http_date(value)
    if when is None:
        return None
    return max(0.0, when - clock()), "retry-after"


def _from_openai_resets(headers: Mapping[str, str]) -> tuple[float, str] | None:
    candidates: list[_Candidate] = []
    for budget in _OPENAI_BUDGETS:
        name = f"x-ratelimit-reset-{budget}"
        value = headers.get(name)
        seconds = None if value is None else parse_duration(value)
        if seconds is not None and seconds >= 0:
            candidates.append((seconds, name, _exhausted(headers, f"x-ratelimit-remaining-{budget}")))
    return _most_urgent(candidates)


def _from_anthropic_resets(
    headers: Mapping[str, str], clock: Callable[[], float]
) -> tuple[float, str] | None:
    candidates: list[_Candidate] = []
    for budget in _ANTHROPIC_BUDGETS:
        name = f"anthropic-ratelimit-{budget}-reset"
        value = headers.get(name)
        when = None if value is None else _rfc3339(value)
        if when is not None:
            exhausted = _exhausted(headers, f"anthropic-ratelimit-{budget}-remaining")
            candidates.append((max(0.0, when - clock()), name, exhausted))
    return _most_urgent(candidates)


def retry_hint(
    headers: Mapping[str, str] | None, *, now: float | None = None, cap: float = 60.0
) -> RetryHint | None:
    """Find the server's wait hint in ``headers``; return it with the header it came from, or ``None``.

    Order (the first usable one wins, as in the openai/anthropic SDKs, then the provider reset headers):

    1. ``retry-after-ms``: milliseconds, decimals allowed;
    2. ``retry-after`` as a number of seconds;
    3. ``retry-after`` as an HTTP-date;
    4. OpenAI ``x-ratelimit-reset-requests`` / ``-tokens`` (Go durations);
    5. Anthropic ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-reset`` (RFC 3339).

    For 4 and 5, the reset of a budget whose matching ``...remaining...`` header is ``0`` wins; if none is
    exhausted (or no remaining header is present), the longest reset wins.

    ``headers`` is any ``Mapping[str, str]`` (a dict, ``httpx.Headers``, ...); names are matched
    case-insensitively.  ``now`` is the wall-clock time in epoch seconds, used only for absolute dates
    (default ``time.time()``).  ``cap`` bounds the answer: servers have sent hints of hours by mistake, and
    the SDKs refuse long ones too (hints above 60 s are ignored by older SDKs, above 120 s newer ones stop
    retrying), so a longer wait is more likely a bug than a plan.

    >>> retry_hint({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}, now=1445412480.0)
    RetryHint(delay=30.0, source='retry-after')
    >>> retry_hint({"retry-after": "soon"}) is None
    True

    :func:`parse_retry_after` is the same search returning just the number of seconds.
    """
    check_positive("cap", cap, unit="seconds")
    if now is not None:
        check_finite("now", now, unit="epoch seconds")
    if not headers:
        return None

    def clock() -> float:
        # The one legitimate wall-clock read in throttle_lab: HTTP-dates and RFC 3339 resets are wall-clock
        # instants written by the server, so only wall-clock time can turn them into a delay.  It is read
        # lazily, only when such a date is actually present, so relative hints stay fully deterministic.
        return time.time() if now is None else float(now)

    lowered = _lowercased(headers)
    found = (
        _from_retry_after_ms(lowered)
        or _from_retry_after_seconds(lowered)
        or _from_retry_after_date(lowered, clock)
        or _from_openai_resets(lowered)
        or _from_anthropic_resets(lowered, clock)
    )
    if found is None:
        return None
    delay, source = found
    return RetryHint(delay=min(float(delay), float(cap)), source=source)


def parse_retry_after(
    headers: Mapping[str, str] | None, *, now: float | None = None, cap: float = 60.0
) -> float | None:
    """Seconds the server asks us to wait (capped at ``cap``), or ``None`` when it gave no usable hint.

    >>> parse_retry_after({"retry-after-ms": "250"})
    0.25
    >>> parse_retry_after({"retry-after": "3600"}, cap=60.0)
    60.0
    >>> parse_retry_after({"retry-after": "-1"}) is None
    True

    See :func:`retry_hint` for the header order; use that one when you also want to know which header spoke.
    """
    hint = retry_hint(headers, now=now, cap=cap)
    return None if hint is None else hint.delay
