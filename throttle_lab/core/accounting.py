"""The bookkeeping every limiter keeps, in-process or decided in Redis: counters, statistics, weight checks.

Whatever the algorithm, a limiter answers the same questions about itself -- how many were granted, how
many had to wait and for how long, how many gave up, how many were refused because they could never fit --
and refuses an impossible request the same way::

    acquire(weight) ─┬─ not a positive finite number ──> ValueError ("weight must be ...")
                     ├─ more than max_weight ─────────> ValueError, counted as rejected, a "rejected" event
                     └─ fine ──> the algorithm decides ──> granted (waited w s) ──> counters and max wait

:class:`Accounting` is that part, written once; :class:`~throttle_lab.core.limiters._base.Limiter`, the
:class:`~throttle_lab.Throttler` and the shared (Redis) limiters all build on it.  Each limiter's own
statistics class extends :class:`LimiterStatistics` with its live state.
"""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from .events import Kind, _observers, emit

__all__ = ["Accounting", "LimiterStatistics", "oversize_message"]

_NUMBER = (int, float)  # a tuple: isinstance(x, int | float) would build a union object on every call


@dataclass(frozen=True, slots=True)
class LimiterStatistics:
    """A snapshot of a limiter; every limiter's own statistics class adds its live state.

    Attributes:
        name: the limiter's name (the ``source`` of its events).
        waiting: tasks waiting right now.
        granted: grants so far (each ``acquire`` that returned, each ``try_acquire`` that said yes).
        queued: grants and cancellations that had to wait first.
        cancelled: waiters that gave up, plus granted ones cancelled before they could run.
        rejected: requests refused at once because they could never fit.
        total_waited: seconds spent waiting, summed over granted requests.
        max_waited: the longest single wait.
    """

    name: str
    waiting: int
    granted: int
    queued: int
    cancelled: int
    rejected: int
    total_waited: float
    max_waited: float


def oversize_message(owner: str, weight: float, most: float, *, tokens: bool = False) -> str:
    """Why a request heavier than a limiter can ever grant fails at once, and what to do instead."""
    if tokens:
        return (
            f"a request of {weight:g} tokens can never fit {owner}'s token budget ({most:g} at most); "
            "waiting for it would never end. Lower max_tokens or split the request."
        )
    return (
        f"weight {weight:g} exceeds what {owner} can ever grant ({most:g}); waiting for it would never "
        "end. Split the request or raise the limit."
    )


class Accounting(ABC):
    """Counters, statistics and weight checks, shared by every limiter (see the module docstring).

    Subclasses call :meth:`_init_accounting` from ``__init__``, say how heavy a request may be
    (:attr:`max_weight`), and update ``_granted``, ``_queued``, ``_cancelled``, ``_n_waiting`` and the wait
    totals as requests come and go (:meth:`_note_wait` for the waits).  The counters are plain attributes,
    not an object of their own: they are touched on every grant, and an attribute is the cheapest thing
    there is to touch.
    """

    name: str
    #: Which unit a request's weight is in, for error messages: tokens for a throttler, else units.
    weighs_in_tokens: bool = False

    def _init_accounting(self, name: str) -> None:
        self.name = name
        self._n_waiting = 0
        self._granted = 0
        self._queued = 0
        self._cancelled = 0
        self._rejected = 0
        self._total_waited = 0.0
        self._max_waited = 0.0

    @property
    @abstractmethod
    def max_weight(self) -> float:
        """The largest weight this limiter can ever grant; heavier requests fail at once."""

    def _note_wait(self, waited: float) -> None:
        self._total_waited += waited
        if waited > self._max_waited:
            self._max_waited = waited

    def _common_statistics(self) -> dict[str, Any]:
        """The :class:`LimiterStatistics` fields, as keyword arguments for a statistics class."""
        return {
            "name": self.name,
            "waiting": self._n_waiting,
            "granted": self._granted,
            "queued": self._queued,
            "cancelled": self._cancelled,
            "rejected": self._rejected,
            "total_waited": self._total_waited,
            "max_waited": self._max_waited,
        }

    def _check_weight(self, weight: float, *, zero_ok: bool = False) -> None:
        """Raise ``ValueError`` for a weight that is not a number, not positive (or zero, where
        ``zero_ok``), or larger than :attr:`max_weight` -- the last counted and reported as ``rejected``."""
        valid = (
            not isinstance(weight, bool)
            and isinstance(weight, _NUMBER)
            and weight < math.inf
            and (weight >= 0 if zero_ok else weight > 0)  # also False for NaN
        )
        if not valid:
            what = "tokens" if self.weighs_in_tokens else "weight"
            sign = "non-negative" if zero_ok else "positive"
            raise ValueError(f"{what} must be a {sign} finite number, got {weight!r}")
        if weight > self.max_weight:
            self._reject_oversize(weight)

    def _reject_oversize(self, weight: float) -> None:
        self._rejected += 1
        if _observers():
            try:
                now = asyncio.get_running_loop().time()
            except RuntimeError:  # checked outside a loop (try_acquire's caller's bug): nothing to stamp
                now = None
            if now is not None:
                emit(now, Kind.REJECTED, self.name, None, weight, {"reason": "oversize"})
        raise ValueError(oversize_message(self.name, weight, self.max_weight, tokens=self.weighs_in_tokens))
