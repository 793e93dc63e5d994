"""Checking numbers from outside: one rule, one wording, wherever a number comes in.

Numbers reach the server three ways: as Python values (:class:`~mock_server.config.ServerConfig`,
``set_limits``), as command-line text (``--rpm 180``) and as text from the network (a header, the
``since`` of ``GET /events``). Each place answers a bad one in its own way — a ``ValueError``, an argparse
error, an OpenAI-shaped 400 — but all of them should agree on what a valid number is, and say what they
expected in the same words. So the rules live here, and every message names the argument and the rule::

    >>> check_number("jitter", 1.5, maximum=1.0)
    Traceback (most recent call last):
        ...
    ValueError: jitter must be a finite number >= 0 and <= 1, got 1.5
    >>> check_limit("rpm", 0)
    Traceback (most recent call last):
        ...
    ValueError: rpm must be a positive integer or None (unlimited), got 0
    >>> parse_limit("none"), parse_limit("180")
    (None, 180)
    >>> parse_int("eighty", minimum=0, maximum=65535)
    Traceback (most recent call last):
        ...
    ValueError: expected an integer >= 0 and <= 65535, got 'eighty'

``check_*`` take Python values and say ``<name> must be ...``; ``parse_*`` take text, whose name the caller
knows better (argparse prefixes ``argument --rpm:``), and say ``expected ...``. ``True`` is never a number
here: ``bool`` is an ``int`` to Python, but ``rpm=True`` is a mistake, not a limit of one.
"""

from __future__ import annotations

import math
from typing import TypeGuard

__all__ = [
    "NO_LIMIT_WORDS",
    "check_int",
    "check_limit",
    "check_number",
    "describe",
    "is_int",
    "is_real",
    "parse_count",
    "parse_int",
    "parse_limit",
    "parse_number",
]

NO_LIMIT_WORDS = frozenset({"none", "unlimited", "inf"})
"""What the command line accepts for "no limit" (any case)."""

_MAX_DIGITS = 18  # always fits in 63 bits; longer is never parsed (``int()`` refuses past 4300 digits anyway)


def is_int(value: object) -> TypeGuard[int]:
    """An ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value: object) -> TypeGuard[float]:
    """A finite ``int`` or ``float`` that is not a ``bool`` (NaN and infinities are not amounts).

    An ``int`` counts up to 2**53, the largest a float holds exactly: JSON allows ``10**400``, and
    ``math.isfinite`` would raise ``OverflowError`` on it (a 500) instead of saying no (a 400).

    >>> is_real(3), is_real(2.5), is_real(True), is_real(float("nan")), is_real(10**400)
    (True, True, False, False, False)
    """
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) <= 2**53
    return isinstance(value, float) and math.isfinite(value)


def describe(
    *, integer: bool, minimum: float | None = None, maximum: float | None = None, above: bool = False
) -> str:
    """The rule in words, as every message here states it.

    >>> describe(integer=True, minimum=1), describe(integer=False, minimum=0, above=True)
    ('a positive integer', 'a finite number > 0')

    ``above`` makes ``minimum`` exclusive.
    """
    if integer and maximum is None and not above:
        # The two integer rules people say in words; everything else is stated with its bounds.
        if minimum == 1:
            return "a positive integer"
        if minimum == 0:
            return "a non-negative integer"
    bounds = []
    if minimum is not None:
        bounds.append(f"{'>' if above else '>='} {minimum:g}")
    if maximum is not None:
        bounds.append(f"<= {maximum:g}")
    noun = "an integer" if integer else "a finite number"
    return f"{noun} {' and '.join(bounds)}" if bounds else noun


def _within(value: float, minimum: float | None, maximum: float | None, above: bool) -> bool:
    if minimum is not None and (value <= minimum if above else value < minimum):
        return False
    return maximum is None or value <= maximum


# -- Python values -----------------------------------------------------------------------------------


def check_int(name: str, value: object, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` if it is an integer within the bounds, else ``ValueError`` naming ``name``."""
    if not is_int(value) or not _within(value, minimum, maximum, False):
        raise ValueError(
            f"{name} must be {describe(integer=True, minimum=minimum, maximum=maximum)}, got {value!r}"
        )
    return value


def check_limit(name: str, value: object) -> int | None:
    """``value`` if it is a positive integer or ``None`` (unlimited), else ``ValueError`` naming ``name``."""
    if value is None:
        return None
    if not is_int(value) or value < 1:
        raise ValueError(
            f"{name} must be {describe(integer=True, minimum=1)} or None (unlimited), got {value!r}"
        )
    return value


def check_number(
    name: str, value: object, *, minimum: float = 0.0, maximum: float | None = None, above: bool = False
) -> float:
    """``value`` (unchanged: an int stays an int) if it is a finite number within the bounds.

    The lower bound defaults to 0 because nearly every number the server takes is a duration, a rate or
    a probability; pass ``above=True`` for "strictly positive".
    """
    if not is_real(value) or not _within(value, minimum, maximum, above):
        rule = describe(integer=False, minimum=minimum, maximum=maximum, above=above)
        raise ValueError(f"{name} must be {rule}, got {value!r}")
    return value


# -- text ----------------------------------------------------------------------------------------------


def parse_int(text: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """The integer ``text`` spells (as ``int()`` reads it), within the bounds, else ``ValueError``."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not _within(value, minimum, maximum, False):
        raise ValueError(f"expected {describe(integer=True, minimum=minimum, maximum=maximum)}, got {text!r}")
    return value


def parse_limit(text: str) -> int | None:
    """A positive integer, or ``None`` for one of :data:`NO_LIMIT_WORDS`; else ``ValueError``."""
    if text.strip().lower() in NO_LIMIT_WORDS:
        return None
    try:
        return parse_int(text, minimum=1)
    except ValueError:
        raise ValueError(f"expected {describe(integer=True, minimum=1)} or 'none', got {text!r}") from None


def parse_number(
    text: str, *, minimum: float = 0.0, maximum: float | None = None, above: bool = False
) -> float:
    """The finite number ``text`` spells (as ``float()`` reads it), within the bounds, else ``ValueError``."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan  # fails the check below like any other non-number
    if not math.isfinite(value) or not _within(value, minimum, maximum, above):
        rule = describe(integer=False, minimum=minimum, maximum=maximum, above=above)
        raise ValueError(f"expected {rule}, got {text!r}")
    return value


def parse_count(text: str | bytes | None, *, too_long: int | None = None) -> int | None:
    """A non-negative integer written in plain ASCII digits, or ``None`` if ``text`` is not one.

    For text from the network (headers, query strings), where a bad number is answered, not raised.
    Stricter than ``int()``: no sign, spaces, underscores or non-ASCII digits. A number longer than 18
    digits is not parsed at all — it gives ``too_long`` (``None``: "not a number we accept"), so a
    megabyte of digits is scanned once and never converted.

    >>> parse_count(b"42"), parse_count("-1"), parse_count("٣"), parse_count("9" * 30, too_long=10**18)
    (42, None, None, 1000000000000000000)
    """
    if text is None or not text.isascii() or not text.isdigit():
        return None
    return int(text) if len(text) <= _MAX_DIGITS else too_long
