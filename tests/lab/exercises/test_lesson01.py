"""Lesson 01: the reference ``hint_seconds`` passes; parsers that raise, mis-scale or trust garbage fail."""

from __future__ import annotations

import math
from collections.abc import Mapping

import httpx
import pytest

from throttle_lab import parse_retry_after
from throttle_lab.lab.exercises import lesson01
from throttle_lab.lab.grading import Report

from .helpers import load_solution


def failures(report: Report) -> dict[str, str]:
    return {r.name: r.hint for r in report.results if not r.passed}


# -- deliberately wrong answers ------------------------------------------------------------------------
def trusting(headers: Mapping[str, str]) -> float | None:
    """float() on whatever is there: raises on garbage, accepts "nan" and "-5"."""
    if "retry-after-ms" in headers:
        return float(headers["retry-after-ms"]) / 1000
    if "retry-after" in headers:
        return float(headers["retry-after"])
    return None


def _usable(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) and number >= 0 else None


def forgets_milliseconds(headers: Mapping[str, str]) -> float | None:
    ms = _usable(headers.get("retry-after-ms"))
    return ms if ms is not None else _usable(headers.get("retry-after"))  # the bug: ms taken as seconds


def seconds_only(headers: Mapping[str, str]) -> float | None:
    return _usable(headers.get("retry-after"))


def zero_is_false(headers: Mapping[str, str]) -> float | None:
    ms = _usable(headers.get("retry-after-ms"))
    if ms:  # the bug: 0.0 is falsy
        return ms / 1000
    return _usable(headers.get("retry-after"))


def stub(headers: Mapping[str, str]) -> float | None:
    raise NotImplementedError


def reads_whole_seconds(headers: Mapping[str, str]) -> float | None:
    """int() where float() belongs: "1.5" raises (and so does every garbage value)."""
    try:
        if headers.get("retry-after-ms") is not None:
            return int(headers["retry-after-ms"]) / 1000
        if headers.get("retry-after") is not None:
            return int(headers["retry-after"])
    except ValueError:
        return None
    return None


def reads_whole_seconds_unguarded(headers: Mapping[str, str]) -> float | None:
    ms = headers.get("retry-after-ms")
    if ms is not None:
        return int(ms) / 1000
    seconds = headers.get("retry-after")
    return int(seconds) if seconds is not None else None


def indexes_the_headers(headers: Mapping[str, str]) -> float | None:
    """headers[name] instead of headers.get(name): a missing header raises KeyError."""
    value = _usable(headers["retry-after-ms"]) if "retry-after-ms" in headers else None
    return value / 1000 if value is not None else _usable(headers["retry-after"])


def gives_up_on_bad_milliseconds(headers: Mapping[str, str]) -> float | None:
    if "retry-after-ms" in headers:
        ms = _usable(headers["retry-after-ms"])
        return ms / 1000 if ms is not None else None  # the bug: never looks at retry-after then
    return _usable(headers.get("retry-after"))


# -- tests ---------------------------------------------------------------------------------------------
def test_reference_solution_passes() -> None:
    report = lesson01.check(load_solution("lesson01").hint_seconds)
    assert report.passed, str(report)
    assert f"{len(lesson01.CASES)}/{len(lesson01.CASES)} checks passed" in str(report)


def test_the_rule_agrees_with_the_library_on_every_graded_case() -> None:
    for case in lesson01.CASES:
        assert parse_retry_after(httpx.Headers(dict(case.headers))) == case.expected, case.name


def test_the_extra_cases_are_where_rule_and_library_differ() -> None:
    for case in lesson01.EXTRA_CASES:
        assert parse_retry_after(httpx.Headers(dict(case.headers))) != case.expected, case.name


def test_a_trusting_parser_fails_on_garbage_without_crashing_the_check() -> None:
    report = lesson01.check(trusting)
    failed = failures(report)
    assert {
        "garbage",
        "empty",
        "garbage milliseconds fall back to seconds",
        "negative",
        "not a number",
    } == set(failed)
    assert "raised ValueError" in str(report)
    assert "never raise" in failed["garbage"]
    assert "math.isfinite" in failed["not a number"]


def test_milliseconds_taken_as_seconds_fail() -> None:
    failed = failures(lesson01.check(forgets_milliseconds))
    assert "milliseconds" in failed
    assert "divide by 1000" in failed["milliseconds"]


def test_ignoring_retry_after_ms_fails() -> None:
    failed = failures(lesson01.check(seconds_only))
    assert {"milliseconds", "retry-after-ms comes first", "zero means go now"} <= set(failed)


def test_zero_taken_for_no_hint_fails() -> None:
    failed = failures(lesson01.check(zero_is_false))
    assert set(failed) == {"zero means go now"}
    assert "is None" in failed["zero means go now"]


def test_stub_and_none_are_not_attempted() -> None:
    for answer in (stub, None):
        report = lesson01.check(answer)
        assert not report.attempted and not report.passed
        assert "not attempted yet" in str(report)


def test_comparison_table() -> None:
    table = lesson01.comparison(load_solution("lesson01").hint_seconds).splitlines()
    assert table[0].split() == ["headers", "rule", "parse_retry_after", "yours"]
    assert len(table) == 2 + len(lesson01.CASES) + len(lesson01.EXTRA_CASES)
    long_wait = next(line for line in table if "'120'" in line)
    assert long_wait.split()[-3:] == ["120.0", "60.0", "120.0"]  # the library caps at 60 s
    assert all(line.endswith("NotImplementedError") for line in lesson01.comparison(stub).splitlines()[2:])
    assert "yours" not in lesson01.comparison().splitlines()[0]


def test_int_instead_of_float_is_told_about_decimals() -> None:
    failed = failures(lesson01.check(reads_whole_seconds))
    assert "decimal seconds" in failed and "negative" in failed  # and nothing makes it raise
    assert "int() does not" in failed["decimal seconds"]


def test_int_instead_of_float_that_raises_gets_the_decimal_hint_not_the_garbage_one() -> None:
    report = lesson01.check(reads_whole_seconds_unguarded)
    failed = failures(report)
    assert "raised ValueError" in str(report)
    assert "int() does not" in failed["decimal seconds"]
    assert "never raise" in failed["garbage"]


def test_indexing_the_headers_is_told_to_use_get() -> None:
    report = lesson01.check(indexes_the_headers)
    failed = failures(report)
    assert {"no hint at all", "other headers are not a hint"} <= set(failed)
    assert "raised KeyError" in str(report)
    assert "headers.get(name)" in failed["no hint at all"]


def test_giving_up_on_unusable_milliseconds_fails_the_fallback() -> None:
    failed = failures(lesson01.check(gives_up_on_bad_milliseconds))
    assert set(failed) == {"garbage milliseconds fall back to seconds"}
    assert "go on to retry-after" in failed["garbage milliseconds fall back to seconds"]


def test_hints_go_from_general_to_concrete_and_solution_prints_the_reference(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for level in (1, 2, 3):
        lesson01.hint(level)
    hints = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in hints] == [f"lesson01 hint {n} of 3" for n in (1, 2, 3)]
    assert "math.isfinite" in hints[1] and "ms / 1000" in hints[2]
    lesson01.solution()
    out = capsys.readouterr().out
    assert out.startswith("# throttle_lab.lab.solutions.lesson01") and "def hint_seconds" in out
    assert {"hint", "solution"} <= set(lesson01.__all__)
