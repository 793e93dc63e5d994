"""Lesson 01 -- meet the 429: read the server's "come back in ..." hint yourself.

The exercise: write ``hint_seconds(headers) -> float | None``, the seconds a 429 response asks you to
wait, read the way the official OpenAI and Anthropic SDKs read it:

1. ``retry-after-ms``, if it holds a usable number: milliseconds;
2. otherwise ``retry-after``, if it holds a usable number: seconds (``"2"``, or a decimal like ``"1.5"``);
3. otherwise ``None``: the server gave no hint.

A usable number is finite and not negative (``0`` is fine: "go now").  Headers come from the network, so
anything else -- ``"soon"``, ``""``, ``"-5"``, ``"nan"`` -- is no hint at all, and your function must
return ``None`` for it rather than raise.  ``headers`` is an ``httpx.Headers``: look-ups ignore case.

:func:`check` tries your function on :data:`CASES`; :func:`comparison` lines the rule up against
``throttle_lab.parse_retry_after``, which reads a few more headers and caps what it finds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ...client.retry_after import parse_retry_after
from ..grading import Guide, Report

__all__ = ["CASES", "EXTRA_CASES", "Case", "check", "comparison", "hint", "solution"]

_TITLE = "lesson01.check"
_GARBAGE = "headers come from the network: return None for anything that is not a usable number, never raise"

_GUIDE = Guide(
    "lesson01",
    [
        "Two headers, in order: use retry-after-ms if it holds a usable number, else retry-after, else "
        "return None. Headers come from the network, so a value may be anything at all.",
        "Write one small helper that turns a header value (or None) into a finite, non-negative float or "
        "None: float() inside try/except ValueError, then math.isfinite(x) and x >= 0. Test results with "
        "`is None`: 0.0 is a real hint, and it is falsy.",
        "ms = number(headers.get('retry-after-ms')); if ms is not None: return ms / 1000; "
        "return number(headers.get('retry-after')).",
    ],
    solution="throttle_lab.lab.solutions.lesson01",
)


def hint(level: int | None = None) -> None:
    """Print the next hint for the exercise (or hint number ``level``), one level more concrete each call."""
    _GUIDE.hint(level)


def solution() -> None:
    """Print the reference solution (read it, then close it and write your own)."""
    _GUIDE.solution()


@dataclass(frozen=True)
class Case:
    """One set of headers, what the simple rule answers for it, and a hint for getting it wrong."""

    name: str
    headers: Mapping[str, str]
    expected: float | None
    hint: str = _GARBAGE


#: The header sets ``check`` grades, with the answer the rule in the module docstring gives.
CASES: tuple[Case, ...] = (
    Case(
        "milliseconds", {"retry-after-ms": "1500"}, 1.5, "retry-after-ms counts milliseconds: divide by 1000"
    ),
    Case("whole seconds", {"retry-after": "2"}, 2.0, "retry-after counts seconds"),
    Case(
        "retry-after-ms comes first",
        {"retry-after-ms": "250", "retry-after": "1"},
        0.25,
        "read retry-after-ms first: it is more precise (retry-after is rounded up to whole seconds)",
    ),
    Case("any capitalisation", {"Retry-After": "7"}, 7.0, "look the name up in headers; it ignores case"),
    Case("decimal seconds", {"retry-after": "1.5"}, 1.5, "float() reads a decimal; int() does not"),
    Case("spaces around", {"retry-after": " 4 "}, 4.0, "strip the value (float() does that for you)"),
    Case(
        "zero means go now",
        {"retry-after-ms": "0"},
        0.0,
        "0 is a real hint: test `is None`, not truthiness (`if value:` is False for 0.0)",
    ),
    Case("no hint at all", {}, None, "no retry header: return None"),
    Case(
        "other headers are not a hint",
        {"x-ratelimit-remaining-requests": "0"},
        None,
        "only retry-after-ms and retry-after count here",
    ),
    Case("garbage", {"retry-after": "soon"}, None),
    Case("empty", {"retry-after": ""}, None),
    Case(
        "garbage milliseconds fall back to seconds",
        {"retry-after-ms": "lots", "retry-after": "3"},
        3.0,
        "when retry-after-ms is unusable, go on to retry-after instead of giving up",
    ),
    Case("negative", {"retry-after": "-5"}, None, "a negative wait is no hint: return None"),
    Case(
        "not a number",
        {"retry-after-ms": "nan"},
        None,
        "float('nan') parses without an error: keep only finite numbers (math.isfinite)",
    ),
)

#: Header sets where the simple rule and ``parse_retry_after`` part ways (shown, not graded).
EXTRA_CASES: tuple[Case, ...] = (
    Case("a long wait", {"retry-after": "120"}, 120.0),
    Case(
        "OpenAI's reset header only",
        {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"},
        None,
    ),
    Case("an HTTP date (in the past)", {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
)


def _raised_hint(case: Case, exc: Exception) -> str:
    """What to do about an exception on ``case``: the mistake differs by case and by exception."""
    if isinstance(exc, KeyError):
        return "a missing header is no hint, not an error: headers.get(name) gives None instead of raising"
    if case.expected is not None:  # a usable value it could not read ("1.5" with int(), say)
        return case.hint
    return _GARBAGE


def _same(got: Any, want: float | None) -> bool:
    if want is None:
        return got is None
    if isinstance(got, bool) or not isinstance(got, int | float):
        return False
    return abs(float(got) - want) <= 1e-9


def _show(headers: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in headers.items()) + "}" if headers else "{}"


def check(hint_seconds: Callable[[httpx.Headers], float | None] | None) -> Report:
    """Grade ``hint_seconds`` on every header set in :data:`CASES` (each as an ``httpx.Headers``)."""
    if hint_seconds is None:
        return Report(_TITLE, attempted=False, note="define hint_seconds, then run me again.")
    report = Report(_TITLE)
    for case in CASES:
        try:
            got = hint_seconds(httpx.Headers(dict(case.headers)))
        except NotImplementedError:
            return Report(
                _TITLE,
                attempted=False,
                note="hint_seconds still raises NotImplementedError; fill it in and run me again.",
            )
        except Exception as exc:  # the learner's code: report it, never crash the notebook
            report.add(
                case.name,
                False,
                f"{_show(case.headers)} raised {type(exc).__name__}: {exc}".splitlines()[0],
                _raised_hint(case, exc),
            )
            continue
        ok = _same(got, case.expected)
        detail = f"{_show(case.headers)} -> {got!r}"
        if not ok:
            detail += f", expected {case.expected!r}"
        report.add(case.name, ok, detail, case.hint)
    if report.passed:
        report.note = (
            "Your parser agrees with the rule on every case. throttle_lab.parse_retry_after goes further: "
            "see lesson01.comparison()."
        )
    return report


def comparison(
    hint_seconds: Callable[[httpx.Headers], float | None] | None = None,
    cases: Sequence[Case] = CASES + EXTRA_CASES,
) -> str:
    """A table of header sets: the rule's answer, ``parse_retry_after``'s, and ``hint_seconds``'s if given."""
    rows = [("headers", "rule", "parse_retry_after", *(("yours",) if hint_seconds else ()))]
    for case in cases:
        headers = httpx.Headers(dict(case.headers))
        row = [_show(case.headers), repr(case.expected), repr(parse_retry_after(headers))]
        if hint_seconds is not None:
            try:
                row.append(repr(hint_seconds(headers)))
            except Exception as exc:  # show it in the table; check() explains
                row.append(type(exc).__name__)
        rows.append(tuple(row))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)
