"""Lesson 06, reference solution: the hint, plus full jitter on top.

    from throttle_lab.lab.solutions.lesson06 import delay
    lesson06.check(delay)

Three rules, one line each:

* **never earlier than the hint** -- the server said when it will have room; knocking before that is a
  guaranteed 429 (which may count against you too);
* **on top, not underneath** -- every client in a herd gets the *same* hint, so ``max(hint, jitter)``
  brings them all back at the hint's instant; ``hint + jitter`` spreads them over the jitter's range;
* **full jitter, capped** -- a random share of ``min(CAP, BASE * 2**attempt)``: the spread grows with
  every failed attempt, and the cap stops a long outage from turning into hour-long sleeps.
"""

from __future__ import annotations

import random

BASE = 0.5
"""Seconds: the ceiling of the first retry's jitter."""
CAP = 30.0
"""Seconds: the jitter's ceiling never grows past this."""

_rng = random.Random(2024)  # our own generator: nobody else's random.seed() changes our draws


def delay(attempt: int, hint: float | None) -> float:
    """Seconds to wait before retry ``attempt`` (0 = the first retry): the hint plus full jitter."""
    ceiling = min(CAP, BASE * 2**attempt)
    return (hint or 0.0) + _rng.uniform(0.0, ceiling)
