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
from typing import Any

__all__ = ["Tokens"]


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
