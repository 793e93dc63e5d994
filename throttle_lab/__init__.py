"""throttle_lab: learn to call rate-limited LLM APIs well, by watching it happen."""

from .events import Event, Kind, current_request, emit, is_recording, observe, record, request_scope
from .limiters import *  # noqa: F403
from .limiters import __all__ as _limiters_all
from .trace import Span, Summary, Trace, percentile
from .throttler import KeyedThrottler, Permit, Throttler, ThrottlerStatistics
from .runtime import (
    VirtualTimeDeadlock,
    VirtualTimeError,
    VirtualTimeLivelock,
    VirtualTimeLoop,
    now,
    run,
)

__all__ = [
    "Event",
    "Kind",
    "KeyedThrottler",
    "Permit",
    "Span",
    "Summary",
    "Trace",
    "percentile",
    "Throttler",
    "ThrottlerStatistics",
    "VirtualTimeDeadlock",
    "VirtualTimeError",
    "VirtualTimeLivelock",
    "VirtualTimeLoop",
    "current_request",
    "emit",
    "is_recording",
    "now",
    "observe",
    "record",
    "request_scope",
    "run",
    *_limiters_all,
]
