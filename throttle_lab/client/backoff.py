"""Backoff: how long to wait before retry number ``attempt`` when the server gave no (or little) hint.

Picture a crowd that was just turned away at a door.  If everyone comes back after exactly 1 s, then 2 s,
then 4 s, the crowd arrives as one wave each time and is turned away again: plain exponential backoff spaces
the *attempts* out but keeps the *clients* in lockstep.  Jitter scatters them.  The strategies here differ
only in how they scatter (see the AWS Architecture Blog post "Exponential Backoff And Jitter", 2015):

===================  ===================================================  ===============================
class                delay before retry n (0 = first retry)               character
===================  ===================================================  ===============================
ExponentialBackoff   ``min(cap, base·factorⁿ)``                           predictable; herds stay herds
FullJitter           ``uniform(0, min(cap, base·2ⁿ))``                    widest spread, some tiny waits
EqualJitter          ``t/2 + uniform(0, t/2)``, ``t = min(cap, base·2ⁿ)``  at least half the schedule
DecorrelatedJitter   ``min(cap, uniform(base, previous·3))``              grows from the previous wait
OpenAIBackoff        ``min(0.5·2ⁿ, 8) · (1 − uniform(0, 0.25))``          the openai SDK's default
===================  ===================================================  ===============================

Every strategy follows one rule on top: **never earlier than the server's hint**.  ``delay(n, hint)``
returns ``max(computed, hint)``, even when the hint is above ``cap``: ``cap`` limits *our* guesswork, but a
server that says "60 s" will answer a retry after 8 s with another 429, so waiting less only burns a request
and an attempt.  (The openai SDK differs: it uses a hint *instead of* its backoff, so a hint shorter than the
backoff shortens the wait; it ignores hints above 120 s.)  Read hints with
:func:`throttle_lab.client.retry_after.parse_retry_after`.

>>> backoff = FullJitter(base=0.5, cap=8.0, seed=42)
>>> [round(backoff.delay(n), 3) for n in range(5)]
[0.32, 0.025, 0.55, 0.893, 5.892]
>>> backoff.delay(0, hint=3.0)
3.0

``max`` has a catch in a crowd.  A server gives every client it refused at the same moment the *same* hint,
and once the hint is longer than the jitter, ``max`` turns every draw into the hint: the herd comes back as
one wave.  Waiting the hint *plus* the jitter keeps the spread::

    five clients, hint 2 s      0 s            2 s          3 s
    max(jitter, hint)           xxxxx   ...    xxxxx                 one wave, at the hint: 429s again
    hint + jitter               xxxxx   ...    x  x   x x  x         spread over [2, 2 + jitter)

A strategy on its own applies ``max``; :class:`~throttle_lab.RetryPolicy` lets you choose
(``hint_mode="max"``, ``"plus_jitter"`` or ``"ignore"``).

Seeds: each instance owns its own ``random.Random``.  By default (``seed=None``) it is seeded from the
operating system, so two clients -- two processes, two retry loops -- never share a jitter sequence: shared
draws would recreate the very herd jitter is meant to break up.  Pass ``seed=`` for a repeatable run (an
experiment, a test, a lesson), and give concurrent retry loops *different* seeds (``seed=base_seed + i``).
"""

from __future__ import annotations

import random
from typing import Protocol, runtime_checkable

from ..core.validation import check_positive, is_real

__all__ = [
    "Backoff",
    "DecorrelatedJitter",
    "EqualJitter",
    "ExponentialBackoff",
    "FullJitter",
    "OpenAIBackoff",
]


@runtime_checkable
class Backoff(Protocol):
    """What a retry loop needs from a backoff strategy.

    ``delay(attempt, hint)`` answers how many seconds to sleep before retry number ``attempt`` (0 for the
    first retry, i.e. after the first failed try), never less than ``hint`` when one is given.  ``reset()``
    forgets per-sequence state, for strategies that have any (:class:`DecorrelatedJitter`).
    """

    def delay(self, attempt: int, hint: float | None = None) -> float: ...

    def reset(self) -> None: ...


def _check_cap(base: float, cap: float) -> float:
    cap = check_positive("cap", cap, unit="seconds")
    if cap < base:
        raise ValueError(f"cap must be >= base ({base!r}), got {cap!r}")
    return cap


def _grown(base: float, factor: float, attempt: int, cap: float) -> float:
    """``min(cap, base·factor**attempt)`` without overflowing for attempt 10_000 (2.0**10_000 raises)."""
    try:
        return min(cap, base * factor**attempt)
    except OverflowError:
        return cap


class _BackoffBase:
    """What every strategy shares: argument checks, its own random generator and the "never earlier than
    the hint" rule.

    Subclasses implement ``_compute(attempt)``; the rule lives here once, so no strategy can forget it.
    """

    def __init__(self, base: float, cap: float, seed: int | None) -> None:
        self._base = check_positive("base", base, unit="seconds")
        self._cap = _check_cap(self._base, cap)
        self._seed = seed
        # Own generator, never the module-level one: another library calling random.seed() or drawing
        # numbers must not change our sequence.
        self._rng = random.Random(seed)

    @property
    def base(self) -> float:
        return self._base

    @property
    def cap(self) -> float:
        return self._cap

    def delay(self, attempt: int, hint: float | None = None) -> float:
        """Seconds to wait before retry ``attempt`` (0 = the first retry): ``max(computed, hint)``."""
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
            raise ValueError(f"attempt must be an int >= 0 (0 = first retry), got {attempt!r}")
        if hint is not None and (not is_real(hint) or hint < 0):
            # parse_retry_after never produces such a value; getting one means a bug upstream, so say so
            # instead of sleeping forever or not at all.
            raise ValueError(f"hint must be None or a finite number of seconds >= 0, got {hint!r}")
        computed = self._compute(attempt)
        return computed if hint is None else max(computed, float(hint))

    def reset(self) -> None:
        """Nothing to forget for a stateless strategy; the generator is deliberately *not* re-seeded, so the
        next retry sequence gets fresh jitter rather than a replay of the last one."""

    def _compute(self, attempt: int) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base={self._base!r}, cap={self._cap!r}, seed={self._seed!r})"


class ExponentialBackoff(_BackoffBase):
    """Wait ``base·factorⁿ`` seconds before retry ``n``, at most ``cap``; no randomness at all.

    >>> backoff = ExponentialBackoff(base=0.5, factor=2.0, cap=8.0)
    >>> [backoff.delay(n) for n in range(6)]
    [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]

    The baseline the jittered strategies improve on: easy to reason about and to test, but every client
    that failed together retries together.  Use it alone only when a single client is retrying.
    """

    def __init__(self, base: float = 0.5, factor: float = 2.0, cap: float = 8.0) -> None:
        super().__init__(base, cap, seed=None)
        if not is_real(factor) or factor < 1:
            raise ValueError(f"factor must be a finite number >= 1, got {factor!r}")
        self._factor = float(factor)

    @property
    def factor(self) -> float:
        return self._factor

    def _compute(self, attempt: int) -> float:
        return _grown(self._base, self._factor, attempt, self._cap)

    def __repr__(self) -> str:
        return f"ExponentialBackoff(base={self._base!r}, factor={self._factor!r}, cap={self._cap!r})"


class FullJitter(_BackoffBase):
    """Wait a uniform random time in ``[0, min(cap, base·2ⁿ))``: the exponential schedule is only the ceiling.

    >>> backoff = FullJitter(base=1.0, cap=10.0, seed=7)
    >>> all(0 <= backoff.delay(n) <= min(10.0, 2**n) for n in range(20))
    True

    Spreads a herd the most and does the least total work (the AWS post's winner), at the price of
    occasional near-zero waits.  :class:`EqualJitter` trades some of that spread for a guaranteed minimum.
    """

    def __init__(self, base: float = 0.5, cap: float = 8.0, seed: int | None = None) -> None:
        super().__init__(base, cap, seed)

    def _compute(self, attempt: int) -> float:
        return self._rng.uniform(0.0, _grown(self._base, 2.0, attempt, self._cap))


class EqualJitter(_BackoffBase):
    """Wait half the exponential schedule for sure, plus a random share of the other half.

    With ``t = min(cap, base·2ⁿ)`` the delay is ``t/2 + uniform(0, t/2)``, so it always lies in ``[t/2, t]``.

    >>> backoff = EqualJitter(base=1.0, cap=8.0, seed=3)
    >>> 4.0 <= backoff.delay(3) <= 8.0
    True

    Compared with :class:`FullJitter` it never retries almost at once, which matters when each failed
    retry costs something (a 429 counts against your limit too); it spreads the herd half as widely.
    """

    def __init__(self, base: float = 0.5, cap: float = 8.0, seed: int | None = None) -> None:
        super().__init__(base, cap, seed)

    def _compute(self, attempt: int) -> float:
        half = _grown(self._base, 2.0, attempt, self._cap) / 2.0
        return half + self._rng.uniform(0.0, half)


class DecorrelatedJitter(_BackoffBase):
    """Each wait is drawn from ``[base, 3 × the previous wait]``, capped: ``min(cap, uniform(base, prev·3))``.

    Stateful: the next delay depends on the last one rather than on ``attempt``, so waits grow on average
    but can also shrink, and clients drift apart quickly.  A sequence starts again (``prev = base``) on
    ``reset()`` and whenever ``attempt == 0`` is asked for, so one instance can serve one retry loop after
    another.  Do not share one instance between *concurrent* retry loops: their chains would interleave
    (still bounded by ``[base, cap]``, but no longer decorrelated per loop).

    >>> backoff = DecorrelatedJitter(base=1.0, cap=20.0, seed=1)
    >>> [round(backoff.delay(n), 3) for n in range(6)]
    [1.269, 3.378, 7.976, 6.849, 10.684, 14.957]
    >>> backoff.reset()
    >>> 1.0 <= backoff.delay(0) <= 3.0
    True

    (Note the fourth wait is shorter than the third.  After ``reset()`` the chain restarts but the generator
    continues, so the numbers are fresh rather than a replay.)  Unlike :class:`FullJitter`, no wait is ever
    shorter than ``base``.
    """

    def __init__(self, base: float = 0.5, cap: float = 8.0, seed: int | None = None) -> None:
        super().__init__(base, cap, seed)
        self._previous = self._base

    def _compute(self, attempt: int) -> float:
        if attempt == 0:
            self._previous = self._base
        # The chain follows our own schedule, not the server's hint: a one-off 30 s hint should not make
        # every later wait start from 30 s.
        self._previous = min(self._cap, self._rng.uniform(self._base, self._previous * 3.0))
        return self._previous

    def reset(self) -> None:
        """Start a new sequence: the next delay is drawn from ``[base, 3·base]`` again."""
        self._previous = self._base


class OpenAIBackoff(_BackoffBase):
    """The official ``openai`` Python SDK's default backoff, so lessons can compare against it.

    ``min(0.5·2ⁿ, 8)`` seconds, shortened by a random 0-25 %: 0.375-0.5 s before the first retry,
    0.75-1 s before the second, ..., 6-8 s from the fifth on.  The SDK retries twice by default.

    >>> backoff = OpenAIBackoff(seed=0)
    >>> [0.375 < backoff.delay(0) <= 0.5, 6.0 < backoff.delay(10) <= 8.0]
    [True, True]

    Source: ``openai/_base_client.py``, ``BaseClient._calculate_retry_timeout``, with ``INITIAL_RETRY_DELAY``
    and ``MAX_RETRY_DELAY`` from ``openai/_constants.py`` (checked against openai 3.57).  Two deliberate
    differences: the SDK uses a server hint *instead of* this formula when ``0 < hint <= 120`` (here the hint
    is only a lower bound), and its jitter only ever shortens the wait, so clients that failed together
    still retry within 25 % of each other, a narrower spread than :class:`FullJitter`.
    """

    INITIAL_DELAY = 0.5
    MAX_DELAY = 8.0
    MAX_JITTER = 0.25

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(self.INITIAL_DELAY, self.MAX_DELAY, seed)

    def _compute(self, attempt: int) -> float:
        scheduled = _grown(self._base, 2.0, attempt, self._cap)
        # SDK: timeout = sleep_seconds * (1 - 0.25 * random()); random() is in [0, 1), so the wait lies in
        # (0.75·scheduled, scheduled].
        return scheduled * (1.0 - self.MAX_JITTER * self._rng.random())

    def __repr__(self) -> str:
        return f"OpenAIBackoff(seed={self._seed!r})"
