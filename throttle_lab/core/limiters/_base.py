"""The public surface every limiter shares, over the waiting room (``throttle_lab/core/waiting_room.py``).

A limiter hands out *units*: ``await acquire(weight)``, ``async with slot(weight)``, ``try_acquire(weight)``,
``release(weight)`` where it holds capacity (concurrency), ``statistics()``, and ``admit(tokens)`` for the
transport and the experiments (one request).  Each algorithm -- when a request of a given weight could go,
and what taking it means -- lives in its own module beside this one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from types import TracebackType
from typing import ClassVar, Generic, TypeVar

from ..accounting import LimiterStatistics
from ..events import Kind, _observers, emit
from ..gate import UNMETERED, Admission
from ..validation import check_positive, resolve_rate
from ..waiting_room import _MUST_WAIT, _PLAIN, WaitingRoom, _thread_ident, finished

T = TypeVar("T")
_ONE = 1  # the default weight (see `slot`)

__all__ = ["Limiter", "LimiterStatistics", "check_positive", "resolve_rate"]


class _Ready(Generic[T]):
    """What an uncontended ``async with`` awaits: a finished future handing out ``value``, remade each time
    the limiter binds to a loop (see ``waiting_room.finished``)."""

    __slots__ = ("future", "value")
    future: asyncio.Future[T]  # set by `Limiter._bound_to`, before any slot is entered

    def __init__(self, value: T) -> None:
        self.value = value


class _Slot(Generic[T]):
    """What ``slot()`` and ``admit()`` return: acquire on entry (and, for a limiter that holds capacity,
    :class:`_HeldSlot`, release on exit).

    A small class rather than ``@asynccontextmanager``: the generator version builds a generator and its
    wrapper for every request and steps it twice, about half of what an uncontended ``slot()`` cost.
    ``__aenter__`` and ``__aexit__`` are plain methods that return something to await (``async with``
    asks no more): when the capacity is there, the grant is made in the call and what they return is
    already finished -- no coroutine is created at all; when it is not, ``__aenter__`` returns the
    coroutine that waits in line.
    """

    __slots__ = ("_limiter", "_ready", "_weight")

    def __init__(self, limiter: Limiter, weight: float, ready: _Ready[T]) -> None:
        self._limiter = limiter
        self._weight = weight
        self._ready = ready  # what `as` binds: nothing for slot(), UNMETERED for admit()

    def __aenter__(self) -> Awaitable[T]:
        # `WaitingRoom._grant_now`, inlined: this is the path of every uncontended `async with`, and the
        # call itself was a twentieth of it.  Keep the two the same.
        limiter, weight = self._limiter, self._weight
        if not (weight.__class__ in _PLAIN and limiter._lightest <= weight <= limiter._heaviest):
            limiter._check_weight(weight, zero_ok=limiter.weighs_in_tokens)
        loop = limiter._loop
        if loop is None or limiter._thread != _thread_ident() or not loop.is_running():
            loop = limiter._bind()
        now = loop.time()
        if limiter._n_waiting or limiter._take_now(weight, now) is _MUST_WAIT:
            return self._wait_in_line(loop, now)
        limiter._granted += 1
        if _observers():
            emit(now, Kind.GRANTED, limiter.name, None, weight, limiter._grant_detail(0.0, now))
        return self._ready.future

    async def _wait_in_line(self, loop: asyncio.AbstractEventLoop, now: float) -> T:
        await self._limiter._wait(loop, self._weight, now)
        return self._ready.value

    def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> Awaitable[None]:
        return self._limiter._nothing.future  # a spent rate is not given back


class _HeldSlot(_Slot[T]):
    """A slot of a limiter that holds capacity (concurrency): released on exit, even when the body raises."""

    __slots__ = ()

    def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> Awaitable[None]:
        limiter = self._limiter
        limiter.release(self._weight)
        return limiter._nothing.future


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
        if _observers():
            emit(now, Kind.GRANTED, self.name, None, weight, self._grant_detail(0.0, now))
        return True

    def __init__(self, *, name: str | None = None, resolution: float = 0.0) -> None:
        super().__init__(name=name, resolution=resolution)
        # A slot is immutable (limiter, weight, what `as` binds), so the common ones are made once and
        # shared by every request: building one costs about a third of an uncontended `async with`.
        self._slot_kind = _HeldSlot if self.holds_capacity else _Slot
        self._nothing: _Ready[None] = _Ready(None)  # what `slot()` hands out, and every exit awaits
        self._admitted: _Ready[Admission] = _Ready(UNMETERED)  # what `admit()` hands out
        self._slot_of_one = self._slot_kind(self, 1, self._nothing)
        self._admit_one: _Slot[Admission] = self._slot_kind(self, 1, self._admitted)

    def _bound_to(self, loop: asyncio.AbstractEventLoop) -> None:
        self._nothing.future = finished(loop, None)
        self._admitted.future = finished(loop, UNMETERED)

    def slot(self, weight: float = 1) -> _Slot[None]:
        """``async with limiter.slot():`` -- acquire on entry; a limiter that holds capacity (concurrency)
        releases it on exit, even when the body raises."""
        # `is`, not `==`: True == 1 must still be refused, and 1.0 may take the general way.  (CPython keeps
        # one int 1; where it did not, a weight of 1 would merely build its own slot.)
        if weight is _ONE:
            return self._slot_of_one
        return self._slot_kind(self, weight, self._nothing)

    def admit(self, tokens: float = 0) -> _Slot[Admission]:
        """Room for one request (:class:`~throttle_lab.core.gate.RequestGate`): one unit, whatever its
        ``tokens`` -- a plain limiter counts requests.  (To charge a limiter the tokens instead, wrap it:
        :class:`~throttle_lab.core.gate.ChargeTokens`.)"""
        return self._admit_one

    def release(self, weight: float = 1) -> None:
        """Give back held capacity.  Only limiters that hold capacity (``holds_capacity``) have any."""
        raise TypeError(f"{self.name} spends capacity on each grant; there is nothing to release")

    def statistics(self) -> LimiterStatistics:
        """A frozen snapshot (see :class:`LimiterStatistics`)."""
        return LimiterStatistics(**self._common_statistics())
