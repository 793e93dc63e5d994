"""Tests for throttle_lab.client.retry_after: one table of header sets, plus the edges around it."""

from __future__ import annotations

import math
import time

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from throttle_lab.client.retry_after import RetryHint, parse_duration, parse_retry_after, retry_hint

# 2023-11-14T22:13:20Z, a Tuesday: every absolute date below is written relative to it.
NOW = 1_700_000_000.0

# ----------------------------------------------------------------------------------------------------------
# parse_duration
# ----------------------------------------------------------------------------------------------------------

DURATIONS: list[tuple[str, float | None]] = [
    ("20ms", 0.02),
    ("1s", 1.0),
    ("1.5s", 1.5),
    ("6m0s", 360.0),
    ("1h2m3.5s", 3723.5),
    ("500us", 0.0005),
    ("500\u00b5s", 0.0005),  # micro sign
    ("500\u03bcs", 0.0005),  # Greek small mu: Go accepts both
    ("250ns", 2.5e-7),
    ("0s", 0.0),
    ("0", 0.0),
    ("12ms", 0.012),
    ("1m30.5s", 90.5),
    (".5s", 0.5),
    ("1.s", 1.0),
    ("2h", 7200.0),
    ("1s500ms", 1.5),
    (" 3s ", 3.0),
    ("-1.5s", -1.5),  # Go allows a sign; callers reject negatives
    ("+2s", 2.0),
    ("", None),
    ("s", None),
    ("abc", None),
    ("1", None),  # a unit is required except for "0"
    ("1 s", None),
    ("1S", None),
    ("1d", None),
    ("1.2.3s", None),
    (".s", None),
    ("--1s", None),
    ("-", None),
    ("nan", None),
    ("inf", None),
    ("1e3s", None),
    ("9" * 400 + "s", None),  # overflows to inf
    ("\u0663s", None),  # an Arabic-Indic digit is not an ASCII digit
]


@pytest.mark.parametrize(("text", "expected"), DURATIONS, ids=[repr(t)[:20] for t, _ in DURATIONS])
def test_parse_duration(text: str, expected: float | None) -> None:
    result = parse_duration(text)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected, rel=1e-12, abs=0)


def test_parse_duration_is_exact_for_milliseconds() -> None:
    # Dividing by 1000 rather than multiplying by 1e-3 keeps the values a reader expects.
    assert [parse_duration(f"{n}ms") for n in (3, 7, 12, 20, 999)] == [0.003, 0.007, 0.012, 0.02, 0.999]


def test_parse_duration_ignores_non_strings() -> None:
    assert parse_duration(5) is None  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------
# retry_hint: the table
# ----------------------------------------------------------------------------------------------------------

HintCase = tuple[str, dict[str, str], float | None, str | None]

FUTURE_30 = "Tue, 14 Nov 2023 22:13:50 GMT"  # NOW + 30 s
PAST_60 = "Tue, 14 Nov 2023 22:12:20 GMT"  # NOW - 60 s
RESET_IN_10 = "2023-11-14T22:13:30Z"  # NOW + 10 s
RESET_IN_20 = "2023-11-14T22:13:40Z"  # NOW + 20 s

CASES: list[HintCase] = [
    # --- nothing usable
    ("no headers", {}, None, None),
    ("unrelated headers", {"content-type": "application/json"}, None, None),
    # --- retry-after as seconds
    ("seconds", {"retry-after": "2"}, 2.0, "retry-after"),
    ("zero", {"retry-after": "0"}, 0.0, "retry-after"),
    ("decimal seconds", {"retry-after": "1.5"}, 1.5, "retry-after"),
    ("surrounding spaces", {"retry-after": " 3 "}, 3.0, "retry-after"),
    ("exponent", {"retry-after": "1e1"}, 10.0, "retry-after"),
    ("empty", {"retry-after": ""}, None, None),
    ("garbage", {"retry-after": "abc"}, None, None),
    ("negative", {"retry-after": "-1"}, None, None),
    ("nan", {"retry-after": "nan"}, None, None),
    ("inf", {"retry-after": "inf"}, None, None),
    ("overflow", {"retry-after": "1e400"}, None, None),
    ("underscore digits", {"retry-after": "1_000"}, None, None),
    ("two values", {"retry-after": "1, 2"}, None, None),
    ("huge capped", {"retry-after": "99999999999999999999"}, 60.0, "retry-after"),
    ("just above cap", {"retry-after": "61"}, 60.0, "retry-after"),
    # --- retry-after-ms
    ("ms", {"retry-after-ms": "1500"}, 1.5, "retry-after-ms"),
    ("fractional ms", {"retry-after-ms": "250.5"}, 0.2505, "retry-after-ms"),
    ("ms beats seconds", {"retry-after-ms": "1500", "retry-after": "2"}, 1.5, "retry-after-ms"),
    ("ms garbage falls to seconds", {"retry-after-ms": "soon", "retry-after": "2"}, 2.0, "retry-after"),
    ("ms negative falls to seconds", {"retry-after-ms": "-5", "retry-after": "2"}, 2.0, "retry-after"),
    ("ms nan falls to seconds", {"retry-after-ms": "NaN", "retry-after": "4"}, 4.0, "retry-after"),
    ("ms huge capped", {"retry-after-ms": "86400000"}, 60.0, "retry-after-ms"),
    ("mixed-case names", {"Retry-After-Ms": "300", "RETRY-AFTER": "9"}, 0.3, "retry-after-ms"),
    # --- retry-after as an HTTP-date
    ("date in 30 s", {"retry-after": FUTURE_30}, 30.0, "retry-after"),
    ("date in the past", {"retry-after": PAST_60}, 0.0, "retry-after"),
    ("date far ahead capped", {"retry-after": "Fri, 01 Jan 2100 00:00:00 GMT"}, 60.0, "retry-after"),
    ("RFC 850 date", {"retry-after": "Tuesday, 14-Nov-23 22:13:50 GMT"}, 30.0, "retry-after"),
    ("asctime date", {"retry-after": "Tue Nov 14 22:13:50 2023"}, 30.0, "retry-after"),
    ("date with offset", {"retry-after": "Tue, 14 Nov 2023 23:13:50 +0100"}, 30.0, "retry-after"),
    ("impossible date", {"retry-after": "Tue, 31 Feb 2023 22:13:50 GMT"}, None, None),
    ("bad hour", {"retry-after": "Tue, 14 Nov 2023 99:13:50 GMT"}, None, None),
    ("year out of range", {"retry-after": "Tue, 14 Nov 99999 22:13:50 GMT"}, None, None),
    ("ms beats a date", {"retry-after-ms": "100", "retry-after": FUTURE_30}, 0.1, "retry-after-ms"),
    # --- OpenAI reset durations
    ("reset requests only", {"x-ratelimit-reset-requests": "1s"}, 1.0, "x-ratelimit-reset-requests"),
    (
        "both resets, no remaining: larger",
        {"x-ratelimit-reset-requests": "2s", "x-ratelimit-reset-tokens": "20ms"},
        2.0,
        "x-ratelimit-reset-requests",
    ),
    (
        "tokens exhausted wins though shorter",
        {
            "x-ratelimit-remaining-requests": "4999",
            "x-ratelimit-reset-requests": "12ms",
            "x-ratelimit-remaining-tokens": "0",
            "x-ratelimit-reset-tokens": "6m0s",
        },
        60.0,
        "x-ratelimit-reset-tokens",
    ),
    (
        "requests exhausted wins though shorter",
        {
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "1.5s",
            "x-ratelimit-remaining-tokens": "100",
            "x-ratelimit-reset-tokens": "30s",
        },
        1.5,
        "x-ratelimit-reset-requests",
    ),
    (
        "both exhausted: larger",
        {
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "1s",
            "x-ratelimit-remaining-tokens": "0",
            "x-ratelimit-reset-tokens": "1m0s",
        },
        60.0,
        "x-ratelimit-reset-tokens",
    ),
    (
        "neither exhausted: larger",
        {
            "x-ratelimit-remaining-requests": "3",
            "x-ratelimit-reset-requests": "20ms",
            "x-ratelimit-remaining-tokens": "7",
            "x-ratelimit-reset-tokens": "450ms",
        },
        0.45,
        "x-ratelimit-reset-tokens",
    ),
    (
        "garbage reset ignored",
        {"x-ratelimit-reset-requests": "soon", "x-ratelimit-reset-tokens": "3s"},
        3.0,
        "x-ratelimit-reset-tokens",
    ),
    (
        "exhausted budget with garbage reset: the other one",
        {
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "??",
            "x-ratelimit-reset-tokens": "3s",
        },
        3.0,
        "x-ratelimit-reset-tokens",
    ),
    ("negative reset ignored", {"x-ratelimit-reset-tokens": "-1s"}, None, None),
    ("zero reset", {"x-ratelimit-reset-tokens": "0s"}, 0.0, "x-ratelimit-reset-tokens"),
    ("mixed-case reset name", {"X-RateLimit-Reset-Tokens": "1h2m3.5s"}, 60.0, "x-ratelimit-reset-tokens"),
    (
        "retry-after beats resets",
        {"retry-after": "5", "x-ratelimit-reset-requests": "1s"},
        5.0,
        "retry-after",
    ),
    (
        "garbage retry-after falls to resets",
        {"retry-after": "later", "x-ratelimit-reset-requests": "1s"},
        1.0,
        "x-ratelimit-reset-requests",
    ),
    # --- Anthropic RFC 3339 resets
    (
        "anthropic requests reset",
        {"anthropic-ratelimit-requests-reset": RESET_IN_10},
        10.0,
        "anthropic-ratelimit-requests-reset",
    ),
    (
        "anthropic: the exhausted budget wins",
        {
            "anthropic-ratelimit-requests-remaining": "10",
            "anthropic-ratelimit-requests-reset": RESET_IN_20,
            "anthropic-ratelimit-tokens-remaining": "0",
            "anthropic-ratelimit-tokens-reset": RESET_IN_10,
        },
        10.0,
        "anthropic-ratelimit-tokens-reset",
    ),
    (
        "anthropic: none exhausted, the latest",
        {
            "anthropic-ratelimit-input-tokens-reset": RESET_IN_10,
            "anthropic-ratelimit-output-tokens-reset": RESET_IN_20,
        },
        20.0,
        "anthropic-ratelimit-output-tokens-reset",
    ),
    (
        "anthropic: output tokens exhausted",
        {
            "anthropic-ratelimit-requests-reset": RESET_IN_20,
            "anthropic-ratelimit-output-tokens-remaining": "0",
            "anthropic-ratelimit-output-tokens-reset": RESET_IN_10,
        },
        10.0,
        "anthropic-ratelimit-output-tokens-reset",
    ),
    (
        "anthropic past reset",
        {"anthropic-ratelimit-tokens-reset": "2023-11-14T22:00:00Z"},
        0.0,
        "anthropic-ratelimit-tokens-reset",
    ),
    (
        "anthropic offset and fraction",
        {"anthropic-ratelimit-tokens-reset": "2023-11-14T23:13:30.5+01:00"},
        10.5,
        "anthropic-ratelimit-tokens-reset",
    ),
    (
        "anthropic lower-case t and z",
        {"anthropic-ratelimit-tokens-reset": "2023-11-14t22:13:30z"},
        10.0,
        "anthropic-ratelimit-tokens-reset",
    ),
    ("anthropic no offset", {"anthropic-ratelimit-tokens-reset": "2023-11-14T22:13:30"}, None, None),
    ("anthropic date only", {"anthropic-ratelimit-tokens-reset": "2023-11-14"}, None, None),
    ("anthropic month 13", {"anthropic-ratelimit-tokens-reset": "2023-13-14T22:13:30Z"}, None, None),
    ("anthropic offset 25h", {"anthropic-ratelimit-tokens-reset": "2023-11-14T22:13:30+25:00"}, None, None),
    ("anthropic epoch number", {"anthropic-ratelimit-tokens-reset": "1700000010"}, None, None),
    (
        "anthropic far future capped",
        {"anthropic-ratelimit-requests-reset": "2030-01-01T00:00:00Z"},
        60.0,
        "anthropic-ratelimit-requests-reset",
    ),
    (
        "openai resets beat anthropic",
        {"x-ratelimit-reset-tokens": "2s", "anthropic-ratelimit-tokens-reset": RESET_IN_10},
        2.0,
        "x-ratelimit-reset-tokens",
    ),
    (
        "retry-after-ms beats everything",
        {
            "anthropic-ratelimit-tokens-reset": RESET_IN_10,
            "x-ratelimit-reset-tokens": "2s",
            "retry-after": "3",
            "retry-after-ms": "4000",
        },
        4.0,
        "retry-after-ms",
    ),
]


@pytest.mark.parametrize(("name", "headers", "delay", "source"), CASES, ids=[case[0] for case in CASES])
def test_retry_hint_table(
    name: str, headers: dict[str, str], delay: float | None, source: str | None
) -> None:
    hint = retry_hint(headers, now=NOW)
    if delay is None:
        assert hint is None
        assert parse_retry_after(headers, now=NOW) is None
    else:
        assert hint == RetryHint(delay=pytest.approx(delay, abs=1e-9), source=source)  # type: ignore[arg-type]
        assert parse_retry_after(headers, now=NOW) == hint.delay


def test_table_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert sum(1 for case in CASES if case[2] is None) >= 10  # plenty of malformed inputs


# ----------------------------------------------------------------------------------------------------------
# Everything around the table
# ----------------------------------------------------------------------------------------------------------


def test_httpx_headers_are_accepted() -> None:
    headers = httpx.Headers({"Retry-After-Ms": "750", "X-RateLimit-Reset-Tokens": "1s"})
    assert retry_hint(headers) == RetryHint(0.75, "retry-after-ms")


def test_none_headers() -> None:
    assert retry_hint(None) is None
    assert parse_retry_after(None) is None


def test_non_string_values_are_ignored() -> None:
    headers = {"retry-after-ms": 5, "retry-after": "2"}
    assert retry_hint(headers) == RetryHint(2.0, "retry-after")  # type: ignore[arg-type]


@pytest.mark.parametrize("cap", [5.0, 1, 0.5])
def test_cap_argument(cap: float) -> None:
    assert parse_retry_after({"retry-after": "30"}, cap=cap) == cap
    assert parse_retry_after({"retry-after": "0.25"}, cap=cap) == 0.25


@pytest.mark.parametrize("cap", [0, -1.0, math.nan, math.inf])
def test_invalid_cap(cap: float) -> None:
    with pytest.raises(ValueError, match="cap"):
        retry_hint({"retry-after": "1"}, cap=cap)


@pytest.mark.parametrize("now", [math.nan, math.inf])
def test_invalid_now(now: float) -> None:
    with pytest.raises(ValueError, match="now"):
        parse_retry_after({"retry-after": "1"}, now=now)


def test_dates_default_to_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: NOW)
    assert parse_retry_after({"retry-after": FUTURE_30}) == 30.0
    assert parse_retry_after({"anthropic-ratelimit-tokens-reset": RESET_IN_10}) == 10.0


def test_relative_hints_never_read_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden() -> float:
        raise AssertionError("time.time() was read for a relative hint")

    monkeypatch.setattr(time, "time", forbidden)
    assert parse_retry_after({"retry-after": "2", "x-ratelimit-reset-tokens": "1s"}) == 2.0
    assert parse_retry_after({"x-ratelimit-reset-tokens": "1s"}) == 1.0


def test_retry_hint_is_frozen() -> None:
    hint = RetryHint(1.0, "retry-after")
    with pytest.raises(AttributeError):
        hint.delay = 2.0  # type: ignore[misc]


HEADER_NAMES = [
    "retry-after-ms",
    "Retry-After",
    "x-ratelimit-reset-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-tokens",
    "x-ratelimit-remaining-tokens",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-tokens-remaining",
]


@given(st.dictionaries(st.sampled_from(HEADER_NAMES), st.text(max_size=40)), st.floats(0.001, 1e6))
def test_never_raises_and_stays_in_bounds(headers: dict[str, str], cap: float) -> None:
    hint = retry_hint(headers, now=NOW, cap=cap)
    assert hint is None or (0.0 <= hint.delay <= cap and hint.source in {h.lower() for h in HEADER_NAMES})
