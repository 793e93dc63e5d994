"""Adaptive throttling: let the server's answers set the pace when you do not know (or trust) its limits.

A fixed limiter needs the right number up front.  When the limit is unknown, shared with other clients, or
drops during a brownout, a client can *learn* it from the responses instead.  Two classic controllers:

* :class:`AIMD` (additive increase, multiplicative decrease, the rule behind TCP congestion control) steers a
  *rate*: creep up by a constant after each success, halve after a 429.  Feed its rate to a limiter and the
  request rate saws up and down just under the real limit.
* :class:`ClientSideThrottle` (Google SRE book, chapter "Handling Overload", section "Client-Side
  Throttling") does not set a rate; it *refuses requests locally* with a probability that grows as the
  backend's acceptance ratio falls, so a struggling server stops receiving traffic it would reject anyway.

AIMD shapes how fast you send; the SRE throttle decides whether to send at all.  They combine: AIMD in front
of a limiter for steady state, the SRE throttle as a cheap circuit breaker when the server is in trouble.

Both read time from the running event loop (``asyncio.get_running_loop().time()``) so they run unchanged on
throttle_lab's virtual clock; every method that needs the time also takes ``now=`` for use and tests outside
a loop.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..core.validation import check_finite, check_positive

__all__ = ["AIMD", "AIMDStatistics", "ClientSideThrottle", "ClientSideThrottleStatistics"]


def _loop_time(now: float | None, who: str) -> float:
    """``now`` if given (checked), else the running loop's clock, with an error that says what to do."""
    if now is not None:
        return check_finite("now", now, unit="loop-time seconds")
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        raise RuntimeError(
            f"{who} reads the time from the running event loop; call it inside a coroutine or pass now="
        ) from None


def _finite(name: str, value: float, *, positive: bool = False) -> float:
    return check_positive(name, value) if positive else check_finite(name, value)


# ----------------------------------------------------------------------------------------------------------
# AIMD
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AIMDStatistics:
    """A snapshot of an :class:`AIMD` controller.

    ``rate_limited`` counts every 429 reported; ``cuts`` those that lowered the rate (or would have, had it
    not been at the floor); ``ignored`` those that fell inside the cool-down after a cut.
    """

    rate: float
    floor: float
    ceiling: float
    successes: int
    increases: int
    rate_limited: int
    cuts: int
    ignored: int
    last_cut_at: float | None


class AIMD:
    """Additive-increase / multiplicative-decrease rate controller.

    Think of a driver with no speed signs: speed up gently while nobody honks, brake hard at the first honk.
    Each :meth:`on_success` adds ``increase`` to the rate (up to ``ceiling``); each :meth:`on_rate_limited`
    multiplies it by ``decrease`` (down to ``floor``).  The result is a sawtooth that keeps probing just
    below the server's real limit and backs off fast when it is crossed.  Rates are in whatever unit the
    caller uses (requests per second, tokens per minute); ``on_change`` is called with the new rate every
    time it changes, e.g. a limiter's ``set_rate``.

    >>> aimd = AIMD(10.0, floor=1.0, ceiling=20.0, increase=1.0, decrease=0.5, cooldown=2.0)
    >>> aimd.on_success(now=0.0), aimd.on_success(now=0.1)
    (11.0, 12.0)
    >>> aimd.on_rate_limited(now=1.0), aimd.on_rate_limited(now=1.2)   # 2nd 429: same burst, ignored
    (6.0, 6.0)
    >>> aimd.on_rate_limited(now=3.0)                                  # cool-down over: a new signal
    3.0

    **Why a cool-down.**  When the limit is hit, every request already in flight was sent at the old, too
    high rate, so a whole burst of 429s comes back at once.  They all report the *same* congestion event;
    halving once per 429 would take a rate of 64 down to 1 after six of them.  ``cooldown`` (set it
    to about one response time, or the server's retry hint) makes all 429s within that many seconds of a
    cut count as one.  TCP does the same by cutting at most once per round trip.

    The increase is per *success*, so the faster you go, the faster the rate climbs (more successes per
    second); keep ``increase`` small relative to the rate you expect.  The SRE-style
    :class:`ClientSideThrottle` is the neighbour that refuses requests instead of slowing them.

    ``history`` holds ``(time, rate)`` for the starting rate (stamped at the first event) and for every
    change, ready to plot as a step line.
    """

    def __init__(
        self,
        initial: float,
        *,
        floor: float,
        ceiling: float,
        increase: float,
        decrease: float = 0.5,
        cooldown: float = 0.0,
        on_change: Callable[[float], object] | None = None,
    ) -> None:
        self._floor = _finite("floor", floor, positive=True)
        self._ceiling = _finite("ceiling", ceiling, positive=True)
        if self._ceiling < self._floor:
            raise ValueError(f"ceiling must be >= floor ({floor!r}), got {ceiling!r}")
        initial = _finite("initial", initial, positive=True)
        if not self._floor <= initial <= self._ceiling:
            raise ValueError(
                f"initial must lie between floor ({floor!r}) and ceiling ({ceiling!r}), got {initial!r}"
            )
        self._increase = _finite("increase", increase, positive=True)
        self._decrease = _finite("decrease", decrease, positive=True)
        if self._decrease >= 1:
            raise ValueError(f"decrease must be a factor between 0 and 1 (exclusive), got {decrease!r}")
        self._cooldown = _finite("cooldown", cooldown)
        if self._cooldown < 0:
            raise ValueError(f"cooldown must be >= 0 seconds, got {cooldown!r}")
        self._rate = initial
        #: Called with the new rate whenever it changes; assign it later to wire the controller up.
        self.on_change = on_change
        self._history: list[tuple[float, float]] = []
        self._successes = 0
        self._increases = 0
        self._rate_limited = 0
        self._cuts = 0
        self._ignored = 0
        self._last_cut_at: float | None = None
        # The starting rate is stamped at the first event, not here: a controller is often built outside
        # the loop it will run on (a notebook cell runs on the kernel's real-time loop, the experiment on a
        # virtual one), and reading a clock now could mix two clocks in one history.

    @property
    def rate(self) -> float:
        """The current rate."""
        return self._rate

    @property
    def floor(self) -> float:
        return self._floor

    @property
    def ceiling(self) -> float:
        return self._ceiling

    @property
    def history(self) -> list[tuple[float, float]]:
        """``(time, rate)`` pairs: the starting rate, then one pair per change (a copy)."""
        return list(self._history)

    def on_success(self, now: float | None = None) -> float:
        """A request succeeded: add ``increase`` (never above ``ceiling``).  Returns the new rate."""
        t = _loop_time(now, "AIMD.on_success()")
        self._successes += 1
        new = min(self._ceiling, self._rate + self._increase)
        if new != self._rate:
            self._increases += 1
            self._set(t, new)
        else:
            self._stamp_start(t)
        return self._rate

    def on_rate_limited(self, now: float | None = None) -> float:
        """The server said 429: multiply by ``decrease`` (never below ``floor``), unless a cut happened less
        than ``cooldown`` seconds ago.  Returns the new rate."""
        t = _loop_time(now, "AIMD.on_rate_limited()")
        self._rate_limited += 1
        self._stamp_start(t)
        # Compare a deadline with now (rather than now - last_cut < cooldown): the same expression a timer
        # would use, so float rounding cannot make "exactly at the deadline" ambiguous.
        if self._last_cut_at is not None and not self._last_cut_at + self._cooldown <= t:
            self._ignored += 1
            return self._rate
        self._cuts += 1
        self._last_cut_at = t
        new = max(self._floor, self._rate * self._decrease)
        if new != self._rate:
            self._set(t, new)
        return self._rate

    def statistics(self) -> AIMDStatistics:
        """A frozen snapshot of the counters (cheap; safe to call any time, with or without a loop)."""
        return AIMDStatistics(
            rate=self._rate,
            floor=self._floor,
            ceiling=self._ceiling,
            successes=self._successes,
            increases=self._increases,
            rate_limited=self._rate_limited,
            cuts=self._cuts,
            ignored=self._ignored,
            last_cut_at=self._last_cut_at,
        )

    def _stamp_start(self, t: float) -> None:
        if not self._history:
            self._history.append((t, self._rate))

    def _set(self, t: float, rate: float) -> None:
        self._stamp_start(t)
        self._rate = rate
        self._history.append((t, rate))
        if self.on_change is not None:
            self.on_change(rate)

    def __repr__(self) -> str:
        return (
            f"<AIMD rate={self._rate:g} floor={self._floor:g} ceiling={self._ceiling:g} "
            f"+{self._increase:g}/success ×{self._decrease:g}/429 successes={self._successes} "
            f"429s={self._rate_limited} cuts={self._cuts}>"
        )


# ----------------------------------------------------------------------------------------------------------
# SRE client-side throttle
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientSideThrottleStatistics:
    """A snapshot of a :class:`ClientSideThrottle`.

    ``requests`` / ``accepts`` are the counts inside the window (what the formula uses);
    ``total_*`` count since creation; ``rejected_locally`` is the lifetime number of local refusals.
    """

    requests: int
    accepts: int
    rejection_probability: float
    k: float
    window: float
    total_requests: int
    total_accepts: int
    rejected_locally: int


class _Bucket:
    """Counts for one slice of ``resolution`` seconds; ``index`` is ``floor(t / resolution)``."""

    __slots__ = ("accepts", "index", "requests")

    def __init__(self, index: int) -> None:
        self.index = index
        self.requests = 0
        self.accepts = 0


class ClientSideThrottle:
    """Google SRE adaptive throttling: refuse requests locally once the backend rejects too many.

    Over a rolling ``window`` (two minutes in the book) the client counts

    * ``requests``: requests the application *attempted*, including those this throttle refused locally, and
    * ``accepts``: requests the backend accepted,

    and refuses each new request with probability ``max(0, (requests − k·accepts) / (requests + 1))``.
    While everything succeeds that is 0.  When the backend starts answering 429, accepts fall behind until
    ``requests`` exceeds ``k·accepts``; from then on the client sends roughly ``k`` requests per accepted one
    and keeps the rest home.  ``k = 2`` tolerates one rejection per acceptance and notices recovery quickly;
    ``k`` nearer 1 protects the backend more but reacts to recovery more slowly.  ``k`` below 1 would refuse
    requests even when all succeed, so it is rejected.

    Counting local refusals as requests is what the book specifies: it keeps the probability high while the
    backend is down, and since the window forgets old refusals, traffic resumes once the backend accepts
    again.

    How to use it: ask :meth:`should_reject` before sending; if it says ``True``, fail fast (that request is
    already counted); otherwise send, then :meth:`record` whether the backend accepted it (count a 429 or an
    overload error as not accepted).  Each request is thus counted exactly once.

    >>> throttle = ClientSideThrottle(k=2.0, window=120.0, seed=0)
    >>> for t in range(10):
    ...     throttle.record(accepted=t < 2, now=float(t))      # 2 accepted, 8 rejected by the server
    >>> round(throttle.rejection_probability(now=10.0), 4)       # (10 - 2*2) / (10 + 1)
    0.5455
    >>> throttle.rejection_probability(now=200.0)               # all of that has left the window
    0.0

    Counting uses a deque of per-``resolution`` buckets with running totals: each event touches one bucket
    and each bucket is dropped once, so every call is O(1) amortised however busy the client is.  A bucket
    leaves when its *newest* possible event is ``window`` old, so events up to ``resolution`` seconds older
    than ``window`` may still count, but no younger event is ever forgotten.

    Compared with :class:`AIMD`, which slows requests down, this one drops them: use it where a fast
    failure is better than a slow success (interactive traffic, a fallback model to try instead).
    """

    def __init__(
        self, k: float = 2.0, window: float = 120.0, seed: int | None = 0, *, resolution: float = 1.0
    ) -> None:
        self._k = _finite("k", k)
        if self._k < 1:
            raise ValueError(
                f"k must be >= 1 (below 1 the throttle refuses requests that all succeed), got {k!r}"
            )
        self._window = _finite("window", window, positive=True)
        self._resolution = _finite("resolution", resolution, positive=True)
        if self._resolution > self._window:
            raise ValueError(f"resolution must be <= window ({window!r}), got {resolution!r}")
        self._seed = seed
        self._rng = random.Random(seed)  # own generator: the same seed gives the same refusals
        self._buckets: deque[_Bucket] = deque()
        self._requests = 0  # running totals over the buckets in the deque
        self._accepts = 0
        self._total_requests = 0
        self._total_accepts = 0
        self._rejected_locally = 0
        self._last_seen: float | None = None

    @property
    def k(self) -> float:
        return self._k

    @property
    def window(self) -> float:
        return self._window

    def rejection_probability(self, now: float | None = None) -> float:
        """``max(0, (requests − k·accepts) / (requests + 1))`` over the window ending at ``now``."""
        self._advance(_loop_time(now, "ClientSideThrottle.rejection_probability()"))
        return self._probability()

    def should_reject(self, now: float | None = None) -> bool:
        """Decide whether to refuse the next request locally.  A refusal is counted as a request; a request
        allowed through is counted later, by :meth:`record`."""
        t = _loop_time(now, "ClientSideThrottle.should_reject()")
        self._advance(t)
        probability = self._probability()
        # Draw only when refusal is possible: a healthy client then consumes no random numbers, so its
        # sequence of decisions does not depend on how long it was healthy.
        if probability > 0 and self._rng.random() < probability:
            self._add(t, accepted=False)
            self._rejected_locally += 1
            return True
        return False

    def record(self, accepted: bool, now: float | None = None) -> None:
        """Count a request that reached the backend, and whether the backend accepted it."""
        t = _loop_time(now, "ClientSideThrottle.record()")
        self._advance(t)
        self._add(t, accepted=bool(accepted))

    def statistics(self, now: float | None = None) -> ClientSideThrottleStatistics:
        """A frozen snapshot.  Without ``now`` it describes the window as of the last event seen, so it is
        safe to call after the loop is gone (e.g. in the notebook cell after ``run(...)``)."""
        if now is not None:
            self._advance(_loop_time(now, "ClientSideThrottle.statistics()"))
        return ClientSideThrottleStatistics(
            requests=self._requests,
            accepts=self._accepts,
            rejection_probability=self._probability(),
            k=self._k,
            window=self._window,
            total_requests=self._total_requests,
            total_accepts=self._total_accepts,
            rejected_locally=self._rejected_locally,
        )

    def _probability(self) -> float:
        return max(0.0, (self._requests - self._k * self._accepts) / (self._requests + 1))

    def _advance(self, now: float) -> None:
        """Drop buckets that are entirely older than the window."""
        self._last_seen = now if self._last_seen is None else max(self._last_seen, now)
        buckets = self._buckets
        # (index + 1)·resolution is the bucket's end; compare "deadline <= now" like a timer would.
        while buckets and (buckets[0].index + 1) * self._resolution + self._window <= now:
            old = buckets.popleft()
            self._requests -= old.requests
            self._accepts -= old.accepts

    def _add(self, now: float, *, accepted: bool) -> None:
        index = math.floor(now / self._resolution)
        buckets = self._buckets
        # A time earlier than the newest bucket (a caller passing now= out of order) joins that bucket
        # rather than being inserted mid-deque: order is what keeps expiry O(1).
        if not buckets or index > buckets[-1].index:
            buckets.append(_Bucket(index))
        bucket = buckets[-1]
        bucket.requests += 1
        self._requests += 1
        self._total_requests += 1
        if accepted:
            bucket.accepts += 1
            self._accepts += 1
            self._total_accepts += 1

    def __repr__(self) -> str:
        # As of the last event seen: reading a clock here could pick up the wrong loop (a notebook kernel's
        # real-time loop instead of the virtual one the throttle ran on).
        at = "" if self._last_seen is None else f" at t={self._last_seen:g}"
        return (
            f"<ClientSideThrottle k={self._k:g} window={self._window:g}s requests={self._requests} "
            f"accepts={self._accepts} p_reject={self._probability():.3f} "
            f"rejected_locally={self._rejected_locally}{at}>"
        )
