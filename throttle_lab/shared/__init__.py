"""Shared limits: one limit across many worker processes and hosts, decided inside Redis.

An in-process limiter lets N workers send N times the limit.  These keep the same surface -- ``await
acquire(weight)``, ``async with slot(weight)``, ``try_acquire``, ``statistics()``, a live ``repr``, the same
events -- but each decision is one atomic Lua script in Redis, on Redis's clock::

    from throttle_lab.shared import SharedGCRA

    limiter = SharedGCRA("redis://127.0.0.1:6379", "api-key-1", per_minute=600, burst=10)
    async with limiter.slot():          # one round trip: book a slot, sleep until it
        await call_the_api()

* :class:`SharedGCRA` -- a token bucket (GCRA) shared by every worker;
* :class:`SharedSlidingWindowLog` -- never more than N in any window, counted over every worker;
* :class:`SharedThrottler` -- requests and tokens per minute, booked together, all or nothing.

The limiters need the ``redis`` package (``pip install 'throttle-lab[redis]'``) and a Redis server (>= 5
recommended; :mod:`throttle_lab.shared.server` starts a local one for tests and lessons).  ``import
throttle_lab`` never imports this package, and this package imports ``redis`` only when a limiter is first
used from it, so :mod:`~throttle_lab.shared.server` and the lesson helpers work without the client library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._base import DEFAULT_MARGIN, SharedLimiter
    from .clock import RedisClock
    from .faults import OnError, SharedLimitUnavailable
    from .gcra import SharedGCRA, SharedGCRAStatistics
    from .reservation import Reservation, SharedLimiterStatistics
    from .sliding_log import SharedSlidingWindowLog, SharedSlidingWindowLogStatistics
    from .throttler import SharedThrottler, SharedThrottlerStatistics

# name -> the submodule defining it (imported on first access: see the module docstring)
_HOME = {
    "DEFAULT_MARGIN": "_base",
    "OnError": "faults",
    "RedisClock": "clock",
    "Reservation": "reservation",
    "SharedLimitUnavailable": "faults",
    "SharedLimiter": "_base",
    "SharedLimiterStatistics": "reservation",
    "SharedGCRA": "gcra",
    "SharedGCRAStatistics": "gcra",
    "SharedSlidingWindowLog": "sliding_log",
    "SharedSlidingWindowLogStatistics": "sliding_log",
    "SharedThrottler": "throttler",
    "SharedThrottlerStatistics": "throttler",
}

__all__ = [
    "DEFAULT_MARGIN",
    "OnError",
    "RedisClock",
    "Reservation",
    "SharedGCRA",
    "SharedGCRAStatistics",
    "SharedLimitUnavailable",
    "SharedLimiter",
    "SharedLimiterStatistics",
    "SharedSlidingWindowLog",
    "SharedSlidingWindowLogStatistics",
    "SharedThrottler",
    "SharedThrottlerStatistics",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # next time, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
