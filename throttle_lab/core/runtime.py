"""Virtual time, and one ``run()`` that works in scripts, notebooks and widget callbacks.

Rate limiting is about time, and real time is slow: an experiment that sends 10,000 requests at 60 per
minute takes almost three hours.  A *virtual-time* event loop makes it take a fraction of a second by
noticing when every task is waiting and jumping the clock straight to the next timer::

    real loop      |--sleep 60 s--------------------------------|--sleep 60 s---------------...
    virtual loop   |jump|jump|jump ...  (each jump costs microseconds)

Everything that takes its time from ``loop.time()`` -- every limiter, the mock server, the experiments --
runs unchanged on either loop.  Code that reads ``time.time()`` or ``time.monotonic()`` does not: that is
why throttle_lab's limiters, server and experiments never do.

>>> import asyncio
>>> from throttle_lab import run
>>> async def nap() -> float:
...     await asyncio.sleep(3600)       # one virtual hour
...     return asyncio.get_running_loop().time()
>>> run(nap())
3600.0

**The outside world is never jumped past.**  A jump is honest only while nothing outside the loop can act.
A thread, or a server at the other end of a socket, works on the real clock: jump past it and a
``wait_for(..., 30)`` times out while the answer is still on its way -- a timeout that never happened.  So
while the outside world has work pending, the loop stops jumping:

* while a thread started with ``loop.run_in_executor`` or ``asyncio.to_thread`` is at work, the clock
  **stands still** and the loop waits for it in real time: the work takes no virtual time at all, no timer
  fires meanwhile, and the timestamps stay the same on every run however long the thread really took (the
  openai SDK, for one, runs a platform check in a thread);
* while a real file descriptor is registered with the loop -- an open socket (a connection of
  ``httpx.AsyncHTTPTransport``, asyncio streams, a server listening in the loop) or a subprocess pipe -- or a
  thread that did not exist when the loop was created is alive (it may call ``loop.call_soon_threadsafe``
  at any moment), the clock **follows real time**: the far end keeps real time, so the loop waits for real
  (never past the next timer, on whose deadline it lands exactly, as a jump does) and moves the clock on by
  the real seconds it waited.  Idle workers of an executor the loop gave work to change nothing.

In-process work -- pure asyncio, ``httpx.ASGITransport``, ``httpx.MockTransport`` -- involves none of these,
so it stays fully virtual: as fast, and the same timestamps on every run.  Mixing in real sockets costs
speed, never truth: while a real connection is open (even idle in a client's pool) the program runs at real
speed.  For a program that talks to real servers, say so with ``run(..., virtual=False)``.

>>> import time
>>> async def slow_call() -> float:
...     await asyncio.wait_for(asyncio.to_thread(time.sleep, 0.1), timeout=5)  # no fake timeout
...     return asyncio.get_running_loop().time()
>>> run(slow_call())    # the thread's 0.1 real seconds took no virtual time
0.0

Two ways an all-virtual program can go wrong become loud errors instead of silent hangs:

* **deadlock** -- every task waits on something no timer will ever set, and nothing outside the loop
  has work pending (``VirtualTimeDeadlock``, naming the waiting tasks and where they wait);
* **livelock** -- a task spins (``await asyncio.sleep(0)`` in a loop) without the clock moving
  (``VirtualTimeLivelock`` after a bounded number of loop iterations).

While the outside world has work pending, a loop with nothing scheduled waits for it, as a real loop
would, instead of reporting a deadlock: a listening server, say, may be contacted at any moment.

The loop also gives every positive delay a floor of one microsecond.  Without it, code that sleeps for a
tiny rounding remainder (``now + 1e-17 == now``) schedules a timer for *now*, wakes at once, finds the same
remainder and spins forever.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import os
import selectors
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

__all__ = [
    "MIN_DELAY",
    "VirtualTimeDeadlock",
    "VirtualTimeError",
    "VirtualTimeLivelock",
    "VirtualTimeLoop",
    "now",
    "run",
]

T = TypeVar("T")

#: The smallest positive delay the virtual loop schedules (seconds).  See the module docstring.
MIN_DELAY = 1e-6
# While busy at one instant, poll real I/O on every this-many-th loop iteration only.
_BUSY_POLL_EVERY = 8
# Timers re-armed for "now" this many iterations in a row make the clock tick by MIN_DELAY (see _count_spin).
_TIMER_SPINS_BEFORE_TICK = 2
# What the outside world asks of the clock (see VirtualTimeLoop._outside_work_pending).
_FOLLOW = object()  # a real socket or a thread of the program's own: the clock follows real time
_HOLD = object()  # work handed to an executor: the clock stands still until it is done


class VirtualTimeError(RuntimeError):
    """Base class of the errors a virtual-time loop raises instead of hanging."""


class VirtualTimeDeadlock(VirtualTimeError):
    """Every task is waiting, no timer is set, and nothing outside the loop has work pending."""


class VirtualTimeLivelock(VirtualTimeError):
    """Tasks keep running, but none of them lets virtual time move forward."""


def now() -> float:
    """The running loop's clock: virtual seconds on a virtual loop, monotonic seconds otherwise."""
    return asyncio.get_running_loop().time()


class _VirtualSelector(selectors.BaseSelector):
    """Wraps a real selector: polls real I/O without blocking, and moves the clock instead of waiting."""

    def __init__(self, loop: VirtualTimeLoop, real: selectors.BaseSelector) -> None:
        self._loop = loop
        self._real = real

    # Registration is delegated unchanged: the loop's self-pipe (for call_soon_threadsafe) and every real
    # socket keep working.  The loop keeps count, to know whether a real socket is open.
    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        key = self._real.register(fileobj, events, data)
        self._loop._registered_fds += 1
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        key = self._real.unregister(fileobj)
        self._loop._registered_fds -= 1
        return key

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self._loop
        if timeout == 0:
            # Callbacks are ready: the loop is busy at this instant.  Polling real I/O on every such
            # iteration costs a system call each time; in-process work needs none (call_soon_threadsafe
            # puts callbacks on the ready queue itself), so poll only every few busy iterations.
            loop._busy_polls += 1
            if loop._busy_polls % _BUSY_POLL_EVERY == 0:
                ready = self._real.select(0)
                if ready:
                    loop._spins = 0
                    return ready
            loop._count_spin()
            return []
        # Ask about the outside world *before* polling.  A thread that calls back and then ends does so
        # before it dies: asked first, "no thread is alive" means its wake-up is already in the pipe, and
        # the poll below finds it.  Asked second, it could slip between the two and be jumped past.
        pending = loop._outside_work_pending()
        if pending is not None:
            return loop._wait_in_real_time(self._real, timeout, follow=pending is _FOLLOW)
        ready = self._real.select(0)
        if ready:
            loop._spins = 0
            return ready
        if timeout is None:
            raise loop._deadlock()
        loop._advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop whose clock jumps to the next timer whenever every task is waiting.

    ``asyncio.Semaphore``, ``Lock``, ``Event``, ``Queue``, ``wait_for``, ``timeout``, ``TaskGroup`` and
    ``call_at`` all work unchanged; only the clock is different.  Use it through :func:`run`, or directly
    as ``asyncio.Runner(loop_factory=VirtualTimeLoop)``.

    The clock jumps only while nothing outside the loop has work pending (the module docstring lists what
    counts: a thread from ``run_in_executor``/``to_thread`` at work, a real socket or pipe registered with
    the loop, a thread started since the loop was created).  Meanwhile it follows real time: the loop
    waits for real, never past the next timer, and moves the clock on by the real seconds it waited, so no
    timeout fires before its time has really passed.  Time the loop spends running callbacks is not
    counted, so the clock then runs at most as fast as a real one.  With no timer set, no callback ready
    and nothing outside pending, the loop raises :class:`VirtualTimeDeadlock`; with the outside world
    pending, it waits for it instead.

    Args:
        start: the clock's reading when the loop starts (0.0 makes traces easy to read).
        max_spins: callbacks allowed to run at one instant before a livelock is reported.  Legitimate work
            at a single instant (thousands of tasks handing a slot to each other) needs a few per task.
        thread_wait: while the clock follows real time, the longest real wait, in seconds, between two
            looks at the outside world.  A thread that ends without calling back wakes nobody: this bounds
            how long the loop takes to notice and start jumping again.
    """

    def __init__(self, *, start: float = 0.0, max_spins: int = 1_000_000, thread_wait: float = 0.05) -> None:
        self._now = float(start)
        self._spins = 0
        self._timer_spins = 0
        self._busy_polls = 0
        self._max_spins = max_spins
        self._thread_wait = thread_wait
        self._threads_in_flight = 0
        # Threads the loop need not watch: those that existed before it (a notebook kernel has several,
        # which will never call back into a loop they have never seen), the thread that runs it, and the
        # workers of executors it gave work to (their work is counted by _threads_in_flight instead).
        self._accounted: set[threading.Thread] = set(threading.enumerate())
        self._registered_fds = 0  # file descriptors registered with the selector, the self-pipe included
        super().__init__(_VirtualSelector(self, selectors.DefaultSelector()))
        if not (isinstance(max_spins, int) and max_spins >= 1):
            self.close()
            raise ValueError(f"max_spins must be a whole number of at least 1, got {max_spins!r}")
        if not thread_wait > 0:
            self.close()
            raise ValueError(f"thread_wait must be positive, got {thread_wait!r}")

    # -- the clock -------------------------------------------------------------------------------------
    def time(self) -> float:
        return self._now

    def call_later(  # type: ignore[override]
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        if 0 < delay < MIN_DELAY:
            delay = MIN_DELAY
        return super().call_later(delay, callback, *args, context=context)

    def call_at(  # type: ignore[override]
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        if self._now < when < self._now + MIN_DELAY:
            when = self._now + MIN_DELAY
        return super().call_at(when, callback, *args, context=context)

    def _advance(self, timeout: float) -> None:
        # Jump exactly onto the next timer's deadline rather than to ``now + timeout``: the two can differ
        # in the last bit, and a timer that is a hair in the future would never fire.
        target = self._now + timeout
        scheduled: list[asyncio.TimerHandle] = self._scheduled  # type: ignore[attr-defined]
        if scheduled:
            head = scheduled[0].when()
            if self._now < head <= target or head - self._now == timeout:
                target = head
        if target > self._now:
            self._now = target
            self._spins = 0
            self._timer_spins = 0
        else:  # pragma: no cover - only reachable through rounding at enormous clock values
            self._count_spin()

    def _count_spin(self) -> None:
        ready: Any = self._ready  # type: ignore[attr-defined]
        if not ready:
            # Nothing is ready; the loop is spinning only because a timer is due *now* -- code re-arming a
            # timer for the current instant (e.g. on a rounding residue: `now + 6e-15 == now`).  On a real
            # loop the clock would have moved on by the next check, so let it tick here too, rather than
            # call it a livelock.  Tasks spinning on `sleep(0)` keep the ready queue busy and are still
            # reported below.
            self._timer_spins += 1
            if self._timer_spins >= _TIMER_SPINS_BEFORE_TICK:
                self._timer_spins = 0
                self._now += MIN_DELAY
                self._spins = 0
                return
        else:
            self._timer_spins = 0
        # Count callbacks, not iterations: 400 tasks spinning together exhaust the budget 400 times faster
        # than one, so a crowd of busy-waiters is reported in seconds, not minutes.
        self._spins += max(1, len(ready))
        if self._spins > self._max_spins:
            self._spins = 0
            raise VirtualTimeLivelock(
                f"{self._max_spins:,} callbacks ran at virtual time {self._now:g} s without the clock "
                "moving: a task is probably busy-waiting (e.g. `await asyncio.sleep(0)` in a loop, or "
                "re-checking a condition that only time can change). Sleep until the moment the condition "
                "can change instead.\n" + _describe_tasks(self)
            )

    # -- the outside world -----------------------------------------------------------------------------
    def _outside_work_pending(self) -> object | None:
        """Can something outside the loop still act?  ``_FOLLOW`` for a real socket or a thread started
        during the run (the clock follows real time), ``_HOLD`` for work handed to an executor (the clock
        stands still until it is done), ``None`` when nothing outside can act (the clock may jump)."""
        # This runs before every jump, so cheapest first: in-process work answers "no" to all three.
        if self._registered_fds > 1:  # the loop's own self-pipe is always registered; anything else is real
            return _FOLLOW
        foreign = threading.active_count() > 1 and not self._accounted.issuperset(threading.enumerate())
        if foreign:
            return _FOLLOW
        return _HOLD if self._threads_in_flight else None

    def _wait_in_real_time(
        self, real: selectors.BaseSelector, timeout: float | None, *, follow: bool
    ) -> list[tuple[selectors.SelectorKey, int]]:
        """Wait for real I/O for real, at most until the next timer; the clock follows (``follow``) or stands
        still.

        Work handed to an executor (``to_thread``, the openai SDK's platform check) is waited for with the
        clock standing still: it finishes "instantly" in virtual time, so no timer fires early and the
        virtual timestamps stay the same on every run, however long the thread really took.  A real socket
        or a thread of the program's own is different: the far end keeps real time (a server's latency, a
        thread sleeping before it calls back), so the clock follows it.
        """
        if not follow:
            return real.select(self._thread_wait)
        wait = self._thread_wait if timeout is None else min(timeout, self._thread_wait)
        # The one place this module reads a real clock: to know how long the outside world really took.
        started = time.monotonic()
        ready = real.select(wait)
        waited = time.monotonic() - started
        # Compared as the clock would add them: a wait a hair short of the timer may still round onto it.
        if timeout is not None and self._now + waited >= self._now + timeout:
            self._advance(timeout)  # the next timer is due: land exactly on its deadline, as a jump does
        elif waited > 0:
            self._now += waited
            self._spins = 0
            self._timer_spins = 0
        return ready

    def _deadlock(self) -> VirtualTimeDeadlock:
        return VirtualTimeDeadlock(
            f"deadlock at virtual time {self._now:g} s: every task is waiting and nothing will wake them "
            "(no timer is scheduled, no thread is working). Something is waiting for a release, a "
            "response or an event that never comes.\n" + _describe_tasks(self)
        )

    def run_forever(self) -> None:
        # The thread that runs the loop never needs watching, even one started after the loop was made.
        self._accounted.add(threading.current_thread())
        super().run_forever()

    # -- threads ---------------------------------------------------------------------------------------
    def run_in_executor(  # type: ignore[override]
        self, executor: concurrent.futures.Executor | None, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        future = super().run_in_executor(executor, func, *args)
        self._threads_in_flight += 1
        # A pool starts its worker threads while taking the work and keeps them, idle, afterwards.  Their
        # work is counted right here, so the threads themselves need no watching: an idle pool must not
        # keep the clock on real time.
        pool = executor if executor is not None else self._default_executor  # type: ignore[attr-defined]
        if isinstance(pool, concurrent.futures.ThreadPoolExecutor):
            self._accounted.update(pool._threads)

        def _done(_: asyncio.Future[T]) -> None:
            self._threads_in_flight -= 1

        future.add_done_callback(_done)
        return future

    async def shutdown_default_executor(self, *args: Any, **kwargs: Any) -> None:
        # asyncio joins the executor's threads from a helper thread of its own and waits for it: count
        # that as a thread at work too, or closing the loop would look like a deadlock.
        self._threads_in_flight += 1
        try:
            await super().shutdown_default_executor(*args, **kwargs)
        finally:
            self._threads_in_flight -= 1


_ASYNCIO_DIR = os.path.dirname(asyncio.__file__)


def _describe_tasks(loop: asyncio.AbstractEventLoop) -> str:
    """One line per pending task: its name and the innermost line of *your* code it is suspended on."""
    lines = []
    for task in asyncio.all_tasks(loop):
        if task.done():
            continue
        coro: Any = task.get_coro()
        where = "?"
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            # asyncio's own frames (Event.wait, Queue.get...) say less than the line that called them.
            if frame is not None and not frame.f_code.co_filename.startswith(_ASYNCIO_DIR):
                where = f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        lines.append(f"  - task {task.get_name()!r} waiting at {where}")
    return "pending tasks:\n" + "\n".join(sorted(lines)) if lines else "no pending tasks"


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run(main: Coroutine[Any, Any, T], *, virtual: bool = True, debug: bool | None = None) -> T:
    """Run a coroutine to completion from synchronous code and return its result.

    * ``virtual=True`` (the default) runs it on a fresh :class:`VirtualTimeLoop`: sleeps cost nothing,
      and the same program gives the same timestamps every time.  ``virtual=False`` uses a normal loop.
    * On virtual time, the outside world is waited for in real time, so a timeout never fires before its
      time has really passed: while a thread from ``to_thread`` or ``run_in_executor`` works, the clock
      stands still; while a real socket is open or a thread started during the run is alive, it follows
      real time.  Such a program runs at real speed; for one that talks to real servers,
      ``virtual=False`` says so.
    * Called where no loop is running (a script, a test), it runs in this thread.
    * Called where a loop is already running (a Jupyter cell, an ipywidgets callback), it runs the
      coroutine on a fresh loop in a worker thread and blocks until it finishes.  Nothing global is
      patched, so it needs neither ``nest_asyncio`` nor any kernel setting.  Interrupted there
      (Ctrl-C, "Interrupt kernel"), it cancels the coroutine's tasks and re-raises ``KeyboardInterrupt``
      only once the worker has finished cleaning up and closed its loop; a second interrupt stops
      waiting for that.

    Create loop-bound objects (limiters, throttlers, httpx clients) *inside* the coroutine you pass,
    because a loop-bound object cannot move between loops.  Context variables (such as an active
    :func:`throttle_lab.record`) are carried into the worker thread.

    >>> import asyncio
    >>> async def answer() -> int:
    ...     await asyncio.sleep(10)
    ...     return 42
    >>> run(answer())
    42
    """
    if not asyncio.iscoroutine(main):
        raise TypeError(f"run() needs a coroutine object, e.g. run(main()), not {type(main).__name__}")
    if not _in_running_loop():
        return _run_here(main, virtual, debug)
    return _run_in_worker(main, virtual, debug)


def _run_here(main: Coroutine[Any, Any, T], virtual: bool, debug: bool | None) -> T:
    factory = VirtualTimeLoop if virtual else None
    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)


def _run_in_worker(main: Coroutine[Any, Any, T], virtual: bool, debug: bool | None) -> T:
    context = contextvars.copy_context()
    outcome: list[T] = []
    failure: list[BaseException] = []
    started = threading.Event()  # the worker's loop is running (or the worker has given up)
    finished = threading.Event()  # the worker is done, its loop closed: nothing of it is left to clean up
    loop_box: list[asyncio.AbstractEventLoop] = []

    async def wrapper() -> T:
        loop_box.append(asyncio.get_running_loop())
        started.set()
        return await main

    def target() -> None:
        # A thread starts with its creator's signal mask: give this one the mask from before the hold (it
        # would pass a blocked SIGINT on to every process it starts).
        _release_interrupts(held)
        try:
            outcome.append(_run_here(wrapper(), virtual, debug))
        except BaseException as exc:  # carried back to the caller's thread
            failure.append(exc)
        finally:
            started.set()
            finished.set()

    worker = threading.Thread(target=context.run, args=(target,), name="throttle_lab.run", daemon=True)
    # Ctrl-C is held back while the worker starts: one that landed inside `start()` -- the worker already
    # running `main`, this thread not yet back from waiting for it to start -- would leave without waiting
    # for the worker's cleanup.  Released inside the `try` below, a held Ctrl-C is handled there.
    held = _hold_interrupts()
    # Wait on an Event of our own rather than on worker.join(): on Python 3.11 and 3.12, a KeyboardInterrupt
    # that lands inside Thread.join() leaves the thread marked as finished while it still runs, and every
    # later join() returns at once.  An interrupted Event.wait() leaves the event as it was.
    try:
        try:
            worker.start()
        finally:
            _release_interrupts(held)
        _wait(finished)
    except KeyboardInterrupt:
        # "Interrupt kernel" in Jupyter lands here: stop the worker's work too, wait until it has cleaned
        # up, then re-raise.
        _wait(started)
        if loop_box:
            _cancel_all_threadsafe(loop_box[0])
        _wait(finished)
        worker.join()  # only the thread's own exit is left
        raise
    worker.join()
    if failure:
        raise failure[0]
    return outcome[0]


def _hold_interrupts() -> set[int | signal.Signals] | None:
    """Block SIGINT in this thread (POSIX): a Ctrl-C then waits, pending, until released."""
    if not hasattr(signal, "pthread_sigmask"):
        return None  # Windows: no signal masks; the narrow window stays
    return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def _release_interrupts(previous: set[int | signal.Signals] | None) -> None:
    """Restore the mask ``_hold_interrupts`` changed; a Ctrl-C held meanwhile is delivered now."""
    if previous is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _wait(event: threading.Event) -> None:
    # Short timeouts, so that an interrupt is noticed promptly wherever a blocking wait would not wake for
    # it (Windows, or `_thread.interrupt_main()`, which sends no real signal).
    while not event.wait(0.1):
        pass


def _cancel_all_threadsafe(loop: asyncio.AbstractEventLoop) -> None:
    def cancel_all() -> None:
        for task in asyncio.all_tasks(loop):
            task.cancel()

    with contextlib.suppress(RuntimeError):  # the loop may have closed already
        loop.call_soon_threadsafe(cancel_all)
