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
"""

from __future__ import annotations

import asyncio
import math
import weakref
from abc import abstractmethod
from collections import deque
from collections.abc import Hashable
from typing import Any, ClassVar

from .accounting import Accounting
from .events import _OBSERVERS, Kind, current_request, emit

__all__ = ["WaitingRoom"]

INF = math.inf
_MUST_WAIT: Any = object()  # what _grant_now answers when the request has to queue


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

    def __init__(self, *, name: str | None = None) -> None:
        self._init_accounting(name if name is not None else type(self).__name__)
        self._waiters: deque[_Waiter] = deque()
        self._n_abandoned = 0  # cancelled waiters still in the deque (removed lazily, compacted in bulk)
        #: The throttler this limiter meters for, if any (a meter serves one throttler: see Throttler).
        self._owner: weakref.ref[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = INF

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

        Each public ``acquire`` calls this and ``_wait`` itself rather than through a shared coroutine: one
        ``await`` less on the path every request takes."""
        self._check_weight(weight, zero_ok=self.weighs_in_tokens)
        loop = self._bind()
        now = loop.time()
        if self._n_waiting or self._ready_at(weight, now) > now:
            return _MUST_WAIT
        receipt = self._take(weight, now)
        self._granted += 1
        if _OBSERVERS.get():
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
        loop = asyncio.get_running_loop()
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
        return loop

    async def _wait(self, loop: asyncio.AbstractEventLoop, weight: float, now: float) -> Any:
        """Queue up, sleep until ``_wake`` grants to us, and return the grant's receipt."""
        waiter = _Waiter(weight, loop.create_future(), now, current_request())
        self._waiters.append(waiter)
        self._n_waiting += 1
        if _OBSERVERS.get():
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
        if _OBSERVERS.get():
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
                self._arm(loop, ready)
                return
            waiters.popleft()
            self._n_waiting -= 1
            receipt = self._take_pending(head.weight, now)
            head.future.set_result(receipt)
            waited = now - head.enqueued
            self._granted += 1
            self._queued += 1
            self._note_wait(waited)
            if _OBSERVERS.get():
                emit(now, Kind.GRANTED, self.name, head.request, head.weight, self._grant_detail(waited, now))
        self._arm(loop, INF)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        """Keep exactly one timer, set for ``when`` (infinity: none, a release will wake us)."""
        if when == self._timer_when and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_when = when
        if when != INF:
            self._timer = loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_when = INF
        self._wake()

    def _now_for_repr(self) -> float | None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return None
        return loop.time()
