"""Lesson 01, reference solution: ``retry-after-ms``, then ``retry-after``; anything unusable is no hint."""

from __future__ import annotations

import math
from collections.abc import Mapping


def _number(value: str | None) -> float | None:
    """A finite, non-negative number, or None for a missing header or anything else."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:  # "soon", "", a date...
        return None
    if not math.isfinite(number) or number < 0:  # "nan", "inf", "-5"
        return None
    return number


def hint_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks us to wait, or None when it gave no usable hint."""
    milliseconds = _number(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    return _number(headers.get("retry-after"))
