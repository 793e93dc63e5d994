"""Checking numbers from users: one place, one wording, an error that names the argument.

Every constructor and setter in throttle_lab checks its numbers the same way, so a bad value always fails
at once with ``ValueError`` and a message that says which argument and what it must be::

    >>> from throttle_lab.core.validation import check_positive, check_non_negative
    >>> check_positive("rate", 2)
    2.0
    >>> check_positive("rate", float("nan"))
    Traceback (most recent call last):
        ...
    ValueError: rate must be a positive finite number, got nan
    >>> check_non_negative("seconds", True)
    Traceback (most recent call last):
        ...
    ValueError: seconds must be a number, got True

``True`` is refused on purpose: ``bool`` is an ``int`` to Python, but "a rate of True" is a bug, not a one.
"""

from __future__ import annotations

import math
from typing import TypeGuard

__all__ = ["check_finite", "check_non_negative", "check_positive", "is_real", "resolve_rate"]


def is_real(value: object) -> TypeGuard[float]:
    """A finite ``int`` or ``float``, ``bool`` excluded."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def _of(unit: str) -> str:
    return f" of {unit}" if unit else ""


def check_finite(name: str, value: float, *, unit: str = "") -> float:
    """Return ``value`` as a float if it is a finite number (any sign), else raise ``ValueError``."""
    number = _number(name, value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number{_of(unit)}, got {value!r}")
    return number


def check_positive(name: str, value: float, *, integer: bool = False, unit: str = "") -> float:
    """Return ``value`` as a float if it is a positive finite number, else raise ``ValueError`` naming
    ``name`` (and its ``unit``, e.g. ``"seconds"``).  ``integer=True`` also requires a whole number."""
    number = _number(name, value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a positive finite number{_of(unit)}, got {value!r}")
    if integer and number != int(number):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return number


def check_non_negative(name: str, value: float, *, unit: str = "") -> float:
    """Return ``value`` as a float if it is a finite number >= 0, else raise ``ValueError`` naming
    ``name`` (and its ``unit``)."""
    number = _number(name, value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a non-negative finite number{_of(unit)}, got {value!r}")
    return number


def resolve_rate(rate: float | None, per_minute: float | None) -> float:
    """Rates may be stated per second (``rate=``) or per minute (``per_minute=``); return per second."""
    if (rate is None) == (per_minute is None):
        raise ValueError("give exactly one of rate= (per second) or per_minute=")
    if rate is not None:
        return check_positive("rate", rate)
    assert per_minute is not None
    return check_positive("per_minute", per_minute) / 60.0
