"""Tokens: one request's token charge, as a single number *and* as its input and output parts.

OpenAI counts one token budget (TPM); Anthropic counts input and output tokens per minute separately
(ITPM and OTPM).  A request's charge is therefore two numbers where the split matters and one number
everywhere else -- in events, plots, a plain token bucket, ``max_weight`` checks.  ``Tokens`` is both: a
``float`` equal to ``input + output`` that also carries the two parts::

    Tokens(input=120, output=512)      == 632.0 to everything that reads a number
        .input  -> 120                 what a Throttler's itpm meter is charged
        .output -> 512                 what its otpm meter is charged (at admission: max_tokens)

so a caller passes it wherever a token weight is accepted -- ``throttler.acquire(...)``, ``gate.admit(...)``,
``permit.reconcile(...)`` -- and code that knows nothing of the split keeps working unchanged.

>>> charge = Tokens(input=120, output=512)
>>> charge, charge.input, charge.output
(Tokens(input=120, output=512), 120, 512)
>>> charge + 0, charge > 600
(632.0, True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = ["INPUT", "ONE", "OUTPUT", "TOTAL", "Tokens", "check_parts", "split_charge", "units"]

#: What a budget is charged per request, for the throttlers that meter several (``Throttler``,
#: ``SharedThrottler``): one unit (requests, concurrency), or the charge's total, input or output tokens.
ONE, TOTAL, INPUT, OUTPUT = 0, 1, 2, 3


def _part(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a non-negative finite number of tokens, got {value!r}")
    return value


class Tokens(float):
    """A token charge split into ``input`` and ``output``; as a number, their sum.

    Arithmetic on it gives plain floats (``Tokens(1, 2) + 1 == 4.0``): only the object itself carries the
    split, so build a new one for a new charge.
    """

    __slots__ = ("input", "output")
    input: float
    output: float

    def __new__(cls, input: float, output: float) -> Tokens:
        input_part, output_part = _part("input", input), _part("output", output)
        self = super().__new__(cls, input_part + output_part)
        self.input = input_part
        self.output = output_part
        return self

    def __repr__(self) -> str:
        return f"Tokens(input={self.input:g}, output={self.output:g})"

    def __reduce__(self) -> tuple[Any, ...]:
        # float's own pickling would call Tokens(total) and lose the split.
        return (Tokens, (self.input, self.output))


def units(weight: float, part: int) -> float:
    """What a budget metering ``part`` takes from a request charged ``weight``.

    >>> units(Tokens(3, 4), ONE), units(Tokens(3, 4), TOTAL), units(Tokens(3, 4), OUTPUT)
    (1, Tokens(input=3, output=4), 4)
    """
    if part == ONE:
        return 1
    if part == TOTAL:
        return weight
    # Only a throttler with split budgets asks for a part, and it turns every charge into Tokens first.
    assert isinstance(weight, Tokens)
    return weight.input if part == INPUT else weight.output


def split_charge(tokens: float, owner: str) -> Tokens:
    """``tokens`` as :class:`Tokens`, for ``owner``, a throttler with input and output budgets: a plain
    number is refused (its parts are unknown), except 0 -- the request alone."""
    if isinstance(tokens, Tokens):
        return tokens
    if tokens == 0 and not isinstance(tokens, bool):
        return Tokens(0, 0)
    raise ValueError(
        f"{owner} meters input and output tokens separately (itpm/otpm): charge it "
        f"Tokens(input=..., output=...), not {tokens!r}"
    )


def check_parts(charge: Tokens, budgets: Iterable[tuple[int, float, str]]) -> None:
    """Raise ``ValueError`` if the charge's input or output part is larger than the whole budget that
    meters it -- such a request could never be sent, so it fails at once instead of waiting for ever.

    ``budgets``: ``(part, capacity, what)`` for each budget, ``what`` naming it in the message.
    """
    for part, capacity, what in budgets:
        if part >= INPUT and units(charge, part) > capacity:
            raise ValueError(
                f"{'input' if part == INPUT else 'output'} tokens {units(charge, part):g} exceed {what} "
                f"({capacity:g}, its whole budget): this request could never be sent"
            )
