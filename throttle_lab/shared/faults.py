"""When Redis cannot be reached: what counts as an outage, and what a shared limiter does then.

Redis down, restarting, a timeout: ``on_error`` decides.

* ``"fail_closed"`` (default): raise :class:`SharedLimitUnavailable` at once -- nothing is sent without a
  booking, so the limit is never exceeded;
* ``"fail_open"``: proceed *unthrottled*; the grant's event says ``unthrottled: True`` and a warning is
  logged once per outage (logger ``throttle_lab.shared``).

For ``recheck`` seconds after a failure, calls apply the policy without waiting on Redis again; then the
next call tries again.  Nothing needs restarting: the client reconnects by itself, and scripts the server
forgot (a restart, ``SCRIPT FLUSH``) are loaded again on the ``NOSCRIPT`` answer
(:mod:`throttle_lab.shared.connection`).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Literal

from ..core.events import Kind, emit, is_recording
from ..core.validation import check_non_negative
from ._redis import redis_errors
from .connection import RedisConnection
from .reservation import Reservation

__all__ = ["FaultPolicy", "OnError", "SharedLimitUnavailable"]

OnError = Literal["fail_closed", "fail_open"]

logger = logging.getLogger("throttle_lab.shared")

# What "Redis cannot be reached" looks like.  Anything else (a script error, WRONGTYPE because the key is
# used by something else) is a bug to see, not an outage to ride out, and is raised as it is.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,  # refused, reset, closed; also BusyLoadingError (still loading its data)
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # we are talking to a replica (failover in progress)
    redis_errors.ClusterDownError,  # also MasterDownError
    OSError,  # includes the builtin TimeoutError
)

# What ends a clock check quietly (it is best effort): an outage, or any error Redis answers.
_CHECK_ERRORS: tuple[type[BaseException], ...] = (*_UNAVAILABLE, redis_errors.RedisError)

# A client's own pool running out of connections is not an outage: raise that as it is.
_NOT_AN_OUTAGE: tuple[type[BaseException], ...] = tuple(
    error for error in (getattr(redis_errors, "MaxConnectionsError", None),) if error is not None
)


class SharedLimitUnavailable(RuntimeError):
    """Redis could not be reached and the limiter fails closed: the request was refused, not sent."""


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class _Down(Exception):
    """Internal: Redis could not be reached for this call."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class FaultPolicy:
    """One limiter's calls to Redis under its ``on_error``, and what it knows of the outage now.

    Every script round trip goes through here (:meth:`call`): refused at once while a call failed less
    than ``recheck`` seconds ago, and a failure counted, logged once per outage (and once when it ends) and
    turned into ``_Down``.  A request that meets ``_Down`` then goes unthrottled (:meth:`let_through`) or
    is refused (:meth:`refusal`), as ``on_error`` says; the limiter counts it granted or rejected.

    Args:
        redis: the connection the calls go over.
        on_error: ``"fail_closed"`` or ``"fail_open"``.
        recheck: seconds after a failure during which calls don't try Redis.
    """

    __slots__ = (
        "_down_until",
        "_loop",
        "_redis",
        "errors",
        "last_error",
        "on_error",
        "outage",
        "recheck",
        "unthrottled",
    )

    def __init__(self, redis: RedisConnection, on_error: OnError, recheck: float) -> None:
        if on_error not in ("fail_closed", "fail_open"):
            raise ValueError(f"on_error must be 'fail_closed' or 'fail_open', got {on_error!r}")
        self.on_error: OnError = on_error
        self.recheck = check_non_negative("recheck", recheck)
        self._redis = redis
        self._loop: asyncio.AbstractEventLoop | None = None
        self.errors = 0  # calls that failed because Redis could not be reached
        self.unthrottled = 0  # requests let through without Redis (fail-open)
        self.outage = False  # logged as started, not yet as ended
        self.last_error: BaseException | None = None
        self._down_until = -math.inf  # loop time until which calls don't try Redis again

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """A new event loop, a new clock: the last failure's time means nothing on it."""
        self._loop = loop
        self._down_until = -math.inf

    async def call(self, owner: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """Make one round trip (``call()``); raise ``_Down`` if Redis failed moments ago or cannot be reached
        now."""
        assert self._loop is not None
        if self._loop.time() < self._down_until and self.last_error is not None:
            raise _Down(self.last_error)  # it failed moments ago: don't wait on it again yet
        try:
            reply = await call()
        except _UNAVAILABLE as exc:
            if isinstance(exc, _NOT_AN_OUTAGE):
                raise
            self._failed(owner, exc)
            await self._redis.drop_idle()
            raise _Down(exc) from exc
        if self.outage:
            self.outage = False
            logger.warning("%s: Redis at %s is reachable again", owner, self._redis.where())
        return reply

    async def call_if_up(self, owner: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """Make one round trip (``call()``) if Redis has not failed moments ago; ``None`` if it did, or
        fails now (best effort, for what can be left undone: a refund)."""
        assert self._loop is not None
        if self._loop.time() < self._down_until:
            return None
        try:
            return await call()
        except _UNAVAILABLE as exc:
            self._failed(owner, exc)
            return None

    def _failed(self, owner: str, error: BaseException) -> None:
        assert self._loop is not None
        self.errors += 1
        self.last_error = error
        self._down_until = self._loop.time() + self.recheck
        self._redis.forget_scripts()  # a server that comes back may have forgotten our scripts
        if not self.outage:
            self.outage = True
            action = (
                "proceeding UNTHROTTLED (on_error='fail_open')"
                if self.on_error == "fail_open"
                else "refusing requests (on_error='fail_closed')"
            )
            logger.warning("%s: Redis at %s unreachable (%s); %s", owner, self._redis.where(), error, action)

    def let_through(
        self, owner: str, error: BaseException, weight: float, start: float, request: Hashable | None
    ) -> Reservation:
        """Fail open: a request Redis could not decide goes unthrottled (the caller counts the grant)."""
        assert self._loop is not None
        now = self._loop.time()
        self.unthrottled += 1
        if is_recording():
            detail = {"waited": now - start, "unthrottled": True, "error": _reason(error)}
            emit(now, Kind.GRANTED, owner, request, weight, detail)
        return Reservation(weight, now - start, None, None, unthrottled=True)

    def refusal(
        self, owner: str, error: BaseException, weight: float, request: Hashable | None
    ) -> SharedLimitUnavailable:
        """Fail closed: report a request Redis could not decide as rejected, and the error to raise (the
        caller counts the rejection)."""
        assert self._loop is not None
        if is_recording():
            detail = {"reason": "redis_unavailable", "error": _reason(error)}
            emit(self._loop.time(), Kind.REJECTED, owner, request, weight, detail)
        return self.unavailable(owner, error)

    def unavailable(self, owner: str, error: BaseException) -> SharedLimitUnavailable:
        """The error a refused request raises: what failed, why refusing, and how to choose otherwise."""
        return SharedLimitUnavailable(
            f"{owner}: Redis at {self._redis.where()} is unreachable ({_reason(error)}). "
            "on_error='fail_closed' refuses requests while the shared limit cannot be checked, so the limit "
            f"is never exceeded; calls try Redis again {self.recheck:g} s after a failure. Pass "
            "on_error='fail_open' to proceed unthrottled instead."
        )
