"""The public surface every limiter shares, over the waiting room (``throttle_lab/core/waiting_room.py``).

A limiter hands out *units*: ``await acquire(weight)``, ``async with slot(weight)``, ``try_acquire(weight)``,
``release(weight)`` where it holds capacity (concurrency), ``statistics()``, and ``admit(tokens)`` for the
transport and the experiments (one request).  Each algorithm -- when a request of a given weight could go,
and what taking it means -- lives in its own module beside this one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar

from ..accounting import LimiterStatistics
from ..events import _OBSERVERS, Kind, emit
from ..gate import UNMETERED, Admission
from ..validation import check_positive, resolve_rate
from ..waiting_room import _MUST_WAIT, WaitingRoom

__all__ = ["Limiter", "LimiterStatistics", "check_positive", "resolve_rate"]


class Limiter(WaitingRoom):
    """Base class of the limiters: FIFO waiting, one timer, cancellation safety, statistics and events.

    Subclasses implement the algorithm in four small methods (``_ready_at``, ``_take``, ``_refund``,
    ``_level``) plus ``max_weight`` and ``_restart``.  See any limiter module for a complete example.
    """

    #: Does a grant hold capacity until ``release()`` (a concurrency slot) rather than spend it?
    holds_capacity: ClassVar[bool] = False

    @property
    def holds(self) -> bool:
        """The 0.1 name of :attr:`holds_capacity`."""
        return self.holds_capacity

    # ------------------------------------------------------------------ public surface
    async def acquire(self, weight: float = 1) -> None:
        """Wait, in arrival order, until ``weight`` units can be taken, then take them.

        Raises ``ValueError`` at once if ``weight`` is not positive or exceeds :attr:`max_weight`
        (such a request could never be granted; waiting for it would hang forever).
        """
        if self._grant_now(weight) is _MUST_WAIT:
            loop = self._loop
            assert loop is not None
            await self._wait(loop, weight, loop.time())

    def try_acquire(self, weight: float = 1) -> bool:
        """Take ``weight`` now if that is possible without jumping the queue; never waits.

        Returns ``False`` when others are waiting or the capacity is not there.  Must be called with a
        running event loop (the limiter reads the loop's clock).
        """
        self._check_weight(weight)
        loop = self._bind()
        now = loop.time()
        if self._n_waiting or self._ready_at(weight, now) > now:
            return False
        self._take(weight, now)
        self._granted += 1
        if _OBSERVERS.get():
            emit(now, Kind.GRANTED, self.name, None, weight, self._grant_detail(0.0, now))
        return True

    @asynccontextmanager
    async def slot(self, weight: float = 1) -> AsyncIterator[None]:
        """``async with limiter.slot():`` -- acquire on entry; a limiter that holds capacity (concurrency)
        releases it on exit, even when the body raises."""
        await self.acquire(weight)
        try:
            yield
        finally:
            if self.holds_capacity:
                self.release(weight)

    @asynccontextmanager
    async def admit(self, tokens: float = 0) -> AsyncIterator[Admission]:
        """Room for one request (:class:`~throttle_lab.core.gate.RequestGate`): one unit, whatever its
        ``tokens`` -- a plain limiter counts requests.  (To charge a limiter the tokens instead, wrap it:
        :class:`~throttle_lab.core.gate.ChargeTokens`.)"""
        async with self.slot(1):
            yield UNMETERED

    def release(self, weight: float = 1) -> None:
        """Give back held capacity.  Only limiters that hold capacity (``holds_capacity``) have any."""
        raise TypeError(f"{self.name} spends capacity on each grant; there is nothing to release")

    def statistics(self) -> LimiterStatistics:
        """A frozen snapshot (see :class:`LimiterStatistics`)."""
        return LimiterStatistics(**self._common_statistics())
