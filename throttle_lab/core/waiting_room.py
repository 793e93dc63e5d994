"""The waiting room every limiter and the throttler share: a FIFO queue, one timer, no polling.

A limiter answers two questions, and only those differ from one algorithm to the next:

1. *When could a request of this weight go?*  (``_ready_at``: now, a moment in the future, or "when
   someone releases" -- infinity)
2. *Take it.*  (``_take``, and ``_refund`` to give it back when a granted waiter is cancelled)

Everything else -- who goes next, when to wake up, cancellation, statistics, events -- lives here, once::

    arrivals ──> [ w=1 | w=5 | w=1 | w=2 ] ──head──> _ready_at(head) <= now ? ── grant ──> caller runs
                   queue, in arrival order          │ no
                                                    └─> one call_at(_ready_at(head)) timer, then look again

Why a queue and one timer instead of ``while True: sleep(a little)``?

* **Order.** Waiters are served strictly first-come-first-served.  A heavy request at the head (a big TPM
  charge) is not overtaken by lighter ones behind it, so it cannot starve.
* **CPU.** Nobody polls.  With 5,000 tasks waiting, a polling limiter wakes all of them again and again;
  this one wakes exactly the task it grants to.
* **Exact timing.** The timer fires at the instant the head can go, computed with the same expression
  that the readiness check uses, so a grant happens at that instant and not one rounding error later.

A grant counts from when its caller *runs*, not from when the timer granted it.  On a real loop the two
differ: the timer hands capacity to 100 waiters in one go, and they resume one after another -- later still
if one of them spends a few milliseconds of CPU.  A window stamped at grant time would then let ~150 callers
*start* within one second of a 100-per-second window.  So a grant to a waiter is booked *pending*
(``_take_pending``: it occupies capacity, but its clock has not started) and *settled* (``_settle``) in the
caller's own task, the moment ``acquire`` returns to it::

    timer: grant ─ pending (counts, never expires, never refills) ─ caller resumes: settle (clock starts)

Settling can only make a booking later, never earlier, so every promise a limiter makes ("never more than
N in any window", "at most capacity + rate x T in any span T") holds at the callers.  The cost is tiny
(a grant whose caller is slow to resume delays the next grant by as much); on virtual time both moments are
the same instant and nothing changes.

**Resolution: one wake-up for several grants.**  On a real loop most of a queued grant's CPU is the loop
going to sleep and waking for its timer (a system call each time), not the limiter's arithmetic.  With
``resolution=r`` the timer is set for the head's ready time rounded *up* to a multiple of ``r``: everyone
who becomes ready within one slot is granted by one wake-up.  A grant is then up to ``r`` late and never
early (the readiness check is unchanged), so every promise still holds at the callers::

    resolution 0 (default): ready 1.0 1.1 1.2 1.3 ms -> four wake-ups, each grant on the dot
    resolution 5 ms:        ready 1.0 1.1 1.2 1.3 ms -> one wake-up at 5 ms, four grants

The default is 0, exact: on virtual time that is what keeps every timestamp exact, on a real loop it is the
lowest latency, and a late grant is not free everywhere -- a bucket that fills up while its head waits for
the wake-up loses what it cannot hold (keep ``r`` at most ``burst / rate``; a throttler's minute-sized
buckets hold far more than ``rate x r``).  Choose it where many waiters queue at a high rate and a few
milliseconds of lateness do not matter.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import threading
import weakref
from abc import abstractmethod
from collections import deque
from collections.abc import Hashable
from typing import Any, ClassVar, TypeVar

from .accounting import Accounting
from .events import Kind, _observers, current_request, emit
from .validation import check_non_negative

__all__ = ["WaitingRoom"]

T = TypeVar("T")

INF = math.inf
_MUST_WAIT: Any = object()  # what _grant_now answers when the request has to queue
_PLAIN = frozenset({int, float})  # weights the fast path checks with two comparisons (bool is not here)
_TINY = sys.float_info.min  # the smallest positive float: 0 and NaN fail `_TINY <= weight`
_thread_ident = threading.get_ident
_EARLY = 1e-6  # a timer that fires more than this before its instant came from a coarse clock
_COARSE_TICK = 0.001  # the coarsest loop clock we know of ticks in milliseconds (uvloop, libuv)


# Every room bound to a loop, so that a forked child can make each of them look again (below).
_BOUND: weakref.WeakSet[WaitingRoom] = weakref.WeakSet()


def _look_again_after_fork() -> None:
    # A child forked while a loop ran inherits that loop object, still marked running, in the same thread:
    # the fast paths' check would take it for the child's own.  Make each room ask
    # `asyncio.get_running_loop()` once more -- it does notice the fork.
    for room in list(_BOUND):
        room._thread = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_look_again_after_fork)


def finished(loop: asyncio.AbstractEventLoop, value: T) -> asyncio.Future[T]:
    """An already finished future holding ``value``: awaiting it hands ``value`` back at once.

    What an uncontended ``async with`` awaits instead of a coroutine: ``__aenter__`` then does its work
    as a plain call and returns this, and ``await`` on a done future (in C) costs less than creating and
    running a coroutine -- about a tenth of an uncontended ``async with``.  One is made per loop and
    shared by every grant: a done future never changes, and awaiting it suspends nothing.
    """
    future: asyncio.Future[T] = loop.create_future()
    future.set_result(value)
    return future


class _Waiter:
    __slots__ = ("enqueued", "future", "request", "weight")

    def __init__(self, weight: float, future: asyncio.Future[Any], enqueued: float, request: Hashable | None):
        self.weight = weight
        self.future = future
        self.enqueued = enqueued
        self.request = request


class WaitingRoom(Accounting):
    """FIFO waiting, one timer, pending grants settled at the callers, cancellation safety, events.

    The machinery every limiter shares, with no public ``acquire`` of its own: a
    :class:`~throttle_lab.core.limiters._base.Limiter` hands out units (``acquire(weight) -> None``), the
    :class:`~throttle_lab.Throttler` hands out permits (``acquire(tokens) -> Permit``), each on top of this.

    Subclasses implement the algorithm in a few small methods (``_ready_at``, ``_take``, ``_refund``,
    ``_level``, ``_restart``, and ``_take_pending`` / ``_settle`` where a grant's age matters) plus
    ``max_weight``.  See any limiter module for a complete example.
    """

    #: What ``_level`` measures, for events and plots ("tokens", "in_window", "in_use"...).
    level_name: ClassVar[str] = "level"

    def __init__(self, *, name: str | None = None, resolution: float = 0.0) -> None:
        self._init_accounting(name if name is not None else type(self).__name__)
        #: Seconds a queued grant may come late so that one wake-up grants several (see the module
        #: docstring); 0 grants each at the instant it is due.
        self.resolution = check_non_negative("resolution", resolution, unit="seconds")
        self._waiters: deque[_Waiter] = deque()
        self._n_abandoned = 0  # cancelled waiters still in the deque (removed lazily, compacted in bulk)
        #: The throttler this limiter meters for, if any (a meter serves one throttler: see Throttler).
        self._owner: weakref.ref[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0  # the thread `_loop` was running in when last bound (see `_bind`)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = INF
        self._fired_early_for = INF  # the instant a timer last fired too early for (see `_arm`)
        self._armed_at = -INF  # the loop's clock when the timer was last set
        # Until the first bind, no weight passes the fast path unchecked (an empty range).
        self._lightest = INF
        self._heaviest = -INF

    # ------------------------------------------------------------------ the algorithm (subclasses)
    @abstractmethod
    def _ready_at(self, weight: float, now: float) -> float:
        """The earliest loop time at which ``weight`` could be taken, if nothing else changes.

        ``<= now`` means "right now"; ``math.inf`` means "only after a release".  It must use the very
        expression that ``_take`` relies on, so the timer and the check agree to the last bit.
        """

    @abstractmethod
    def _take(self, weight: float, now: float) -> Any:
        """Consume ``weight`` (only called when ``_ready_at(weight, now) <= now``); return a receipt."""

    @abstractmethod
    def _refund(self, weight: float, receipt: Any, now: float) -> None:
        """Give back what ``_take`` took (a granted waiter was cancelled before it could run)."""

    def _take_now(self, weight: float, now: float) -> Any:
        """Take ``weight`` if it could go right now (a receipt), else answer ``_MUST_WAIT``: ``_ready_at``
        and ``_take`` in one call.  Every uncontended request takes this path, so a limiter may answer in
        one step, with the same expressions as those two; the default just asks them."""
        if self._ready_at(weight, now) > now:
            return _MUST_WAIT
        return self._take(weight, now)

    def _take_pending(self, weight: float, now: float) -> Any:
        """Take ``weight`` for a queued waiter whose caller has not resumed yet; return a receipt.

        The booking must occupy its capacity from now on but must not start to *age* (expire, refill)
        before :meth:`_settle` says the caller runs.  Limiters whose promise does not depend on when a grant
        was made (concurrency) keep the default: an ordinary take.
        """
        return self._take(weight, now)

    def _settle(self, weight: float, receipt: Any, now: float) -> None:
        """The caller of a pending grant runs now: start the booking's clock from ``now``."""
        return None  # an ordinary take has no clock to start

    def _drain(self, now: float) -> None:
        """The server says the budget is spent: behave as if the whole limit had just been used at its own
        pace (a bucket empties, a window fills).  Called by :meth:`Throttler.pause` on a 429."""
        return None  # nothing spent by time (concurrency): nothing to drain

    def _at_rest(self, now: float) -> bool:
        """True when this limiter would behave exactly like a fresh one (nothing booked, held or waiting):
        only then may an owner forget it without breaking a promise."""
        return False

    def _adjust(self, receipt: Any, delta: float, now: float) -> None:
        """Correct a past grant by ``delta`` units (negative: give some back; positive: charge more, even
        into debt -- the units were already used).  The combined throttler reconciles token estimates
        with this."""
        if delta < 0:
            self._refund(-delta, receipt, now)
        elif delta > 0:
            self._take(delta, now)
        self._wake()

    @abstractmethod
    def _level(self, now: float) -> float:
        """The live quantity worth plotting: tokens left, requests in the window, slots in use..."""

    @abstractmethod
    def _restart(self) -> None:
        """Forget time-dependent state: the limiter is being used on a new event loop."""

    # ------------------------------------------------------------------ granting
    def _grant_now(self, weight: float) -> Any:
        """The fast path of every ``acquire``: a receipt if ``weight`` fits now and nobody waits, else
        ``_MUST_WAIT`` (then ``await self._wait(...)``).  Validates first; binds to the running loop.

        Each public ``acquire`` (and ``slot``) calls this and ``_wait`` itself rather than through a shared
        coroutine: one ``await`` less on the path every request takes.  For the same reason the two checks
        every request passes are inlined here, each with a cheap test that sends anything unusual to the
        full version: a plain ``int``/``float`` weight in range (``_check_weight`` otherwise), and the loop
        this room is bound to (``_bind`` otherwise)."""
        if not (weight.__class__ in _PLAIN and self._lightest <= weight <= self._heaviest):
            self._check_weight(weight, zero_ok=self.weighs_in_tokens)
        loop = self._loop
        if loop is None or self._thread != _thread_ident() or not loop.is_running():
            loop = self._bind()
        now = loop.time()
        if self._n_waiting:
            return _MUST_WAIT
        receipt = self._take_now(weight, now)
        if receipt is _MUST_WAIT:
            return receipt
        self._granted += 1
        if _observers():
            emit(now, Kind.GRANTED, self.name, None, weight, self._grant_detail(0.0, now))
        return receipt

    @property
    def waiting(self) -> int:
        """How many tasks are waiting right now."""
        return self._n_waiting

    # ------------------------------------------------------------------ shared machinery
    def _grant_detail(self, waited: float, now: float) -> dict[str, Any]:
        """What a ``granted`` event says besides the basics: the wait, and the level after the grant."""
        return {"waited": waited, self.level_name: self._level(now)}

    def _bind(self) -> asyncio.AbstractEventLoop:
        """Bind to the running loop (a new loop: start afresh) and return it.

        The fast paths do not ask ``asyncio.get_running_loop()`` on every request: in CPython 3.11 it makes
        a ``getpid()`` system call each time (to notice a fork), a fifth of an uncontended ``async with``.
        They ask instead whether the bound loop is running *in this thread* -- a thread runs one loop at
        a time, so then it is the running loop -- and come here only when it is not::

            loop is not None and self._thread == threading.get_ident() and loop.is_running()

        (A forked child would pass that check with its parent's loop: after a fork every room's
        ``_thread`` is reset, so each comes here once.)
        """
        loop = asyncio.get_running_loop()
        self._thread = _thread_ident()
        if loop is not self._loop:
            if self._n_waiting:
                raise RuntimeError(
                    f"{self.name} has tasks waiting on another event loop; create a limiter inside the "
                    "coroutine that uses it (one limiter per run)."
                )
            # A new loop has a new clock (each throttle_lab.run starts at 0): start afresh.
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._timer_when = INF
            self._waiters.clear()
            self._n_abandoned = 0
            self._loop = loop
            self._restart()
            self._bound_to(loop)
            _BOUND.add(self)
            # The weights the fast path may pass unchecked (see `_grant_now`), fixed once the limits are:
            # 0 only where zero is allowed (0 and NaN fail `_TINY <= weight`), never infinity.
            self._lightest = 0.0 if self.weighs_in_tokens else _TINY
            self._heaviest = min(self.max_weight, sys.float_info.max)
        return loop

    def _bound_to(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bound to a new loop (after ``_restart``): make what this room hands out on that loop."""
        return None

    async def _wait(self, loop: asyncio.AbstractEventLoop, weight: float, now: float) -> Any:
        """Queue up, sleep until ``_wake`` grants to us, and return the grant's receipt."""
        waiter = _Waiter(weight, loop.create_future(), now, current_request())
        self._waiters.append(waiter)
        self._n_waiting += 1
        if _observers():
            emit(now, Kind.QUEUED, self.name, waiter.request, weight, {"ahead": self._n_waiting - 1})
        if self._n_waiting == 1:
            self._wake()  # we are the head: arm the timer for us
        try:
            receipt = await waiter.future
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise
        # We run in the caller's task now: this, not the timer's grant, is when the caller proceeds.
        self._settle(weight, receipt, loop.time())
        if self._n_waiting and self._timer_when == INF:
            self._wake()  # the head may have been waiting for this booking's clock to start
        return receipt

    def _abandon(self, waiter: _Waiter) -> None:
        """A waiter's task was cancelled: leave the queue, or give back what was granted a moment ago."""
        now = self._loop.time() if self._loop is not None else 0.0
        future = waiter.future
        granted = future.done() and not future.cancelled()
        self._cancelled += 1
        if granted:
            receipt = future.result()
            self._settle(waiter.weight, receipt, now)
            self._refund(waiter.weight, receipt, now)
        else:
            # Lazy removal: the entry stays in the deque and is skipped when it reaches the head.  Behind a
            # live head it could stay for ever (100,000 timed-out waiters ~ 23 MB), so once abandoned
            # entries are the majority, sweep them out in one pass: amortised O(1) per cancellation.
            future.cancel()
            self._n_waiting -= 1
            self._queued += 1
            self._n_abandoned += 1
            if self._n_abandoned > 32 and self._n_abandoned > self._n_waiting:
                self._waiters = deque(w for w in self._waiters if not w.future.done())
                self._n_abandoned = 0
        if _observers():
            emit(now, Kind.CANCELLED, self.name, waiter.request, waiter.weight, {"after_grant": granted})
        # Either capacity came back, or the head may have left: whoever is next may be able to go now.
        self._wake()

    def _wake(self) -> None:
        """Grant to the head of the queue while it fits; then sleep until the head can go."""
        loop = self._loop
        if loop is None:
            return
        now = loop.time()
        waiters = self._waiters
        while waiters:
            head = waiters[0]
            if head.future.done():  # cancelled while waiting
                waiters.popleft()
                self._n_abandoned -= 1
                continue
            ready = self._ready_at(head.weight, now)
            if ready > now:
                self._arm(loop, self._wake_time(ready) if self.resolution else ready)
                return
            waiters.popleft()
            self._n_waiting -= 1
            receipt = self._take_pending(head.weight, now)
            head.future.set_result(receipt)
            waited = now - head.enqueued
            self._granted += 1
            self._queued += 1
            self._note_wait(waited)
            if _observers():
                emit(now, Kind.GRANTED, self.name, head.request, head.weight, self._grant_detail(waited, now))
        self._arm(loop, INF)

    def _wake_time(self, ready: float) -> float:
        """When to wake for a head ready at ``ready``: rounded up to a multiple of ``resolution``, so that
        the heads ready within one slot share one wake-up -- never before ``ready``."""
        if ready == INF:
            return ready
        slot = math.ceil(ready / self.resolution) * self.resolution
        return slot if slot >= ready else ready  # the product can round a hair below `ready`

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        """Keep exactly one timer, set for ``when`` (infinity: none, a release will wake us)."""
        if when == self._timer_when and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_when = when
        if when != INF:
            # Asked again for the instant the loop just fired early: its clock cannot tell that instant
            # apart from now, and the same timer would fire at once, again and again, until the clock
            # ticks over.  Wait out one tick instead (later, never earlier).
            late = _COARSE_TICK if when == self._fired_early_for else 0.0
            self._armed_at = loop.time()
            self._timer = loop.call_at(when + late, self._on_timer)

    def _on_timer(self) -> None:
        fired_for = self._timer_when
        self._timer = None
        self._timer_when = INF
        loop = self._loop
        # uvloop's clock counts whole milliseconds (libuv's): a timer fires when the tick it falls in
        # begins, up to a millisecond before the instant it was set for -- and for an instant a rounding
        # residue after now, it fires on the very tick it was set on, with the clock unmoved.  (asyncio's
        # loop fires up to its clock's resolution early, a nanosecond, and its clock moves on; virtual
        # time fires on the dot.)
        now = loop.time() if loop is not None else INF
        early = now < fired_for and (fired_for - now > _EARLY or now == self._armed_at)
        self._fired_early_for = fired_for if early else INF
        self._wake()

    def _now_for_repr(self) -> float | None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return None
        return loop.time()
