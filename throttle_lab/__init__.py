"""throttle_lab: learn to call rate-limited LLM APIs well, by watching it happen.

Everything here runs on the loop's clock, so the same code runs in real time or on virtual time
(:func:`run` with ``virtual=True``), where an hour-long experiment replays in a fraction of a second.

The package is layered; each layer imports only from the ones above it in this list:

* ``throttle_lab.core`` -- the virtual-time runtime, events and traces, the limiters, the throttler;
* ``throttle_lab.client`` -- Retry-After, backoff, retry policy, adaptive control, token estimates and the
  httpx transport;
* ``throttle_lab.shared`` -- the same limiter surface decided in Redis (needs the ``redis`` extra);
* ``throttle_lab.lab`` -- the teaching lab: experiments, plots, widgets, grading, the lessons' exercises,
  the article's naive designs and the command line (what the ``lessons`` extra brings).

This module re-exports the library's public names; see ``DESIGN.md`` for the map.
"""

from . import _moved
from .client.adaptive import AIMD, AIMDStatistics, ClientSideThrottle, ClientSideThrottleStatistics
from .client.backoff import (
    Backoff,
    DecorrelatedJitter,
    EqualJitter,
    ExponentialBackoff,
    FullJitter,
    OpenAIBackoff,
)
from .client.retry import RETRYABLE_STATUSES, RetryError, RetryPolicy
from .client.retry_after import RetryHint, parse_duration, parse_retry_after, retry_hint
from .client.tokens import estimate_prompt_tokens, estimate_request_tokens, estimate_text_tokens
from .client.transport import ThrottledTransport, server_charge
from .core.events import Event, Kind, current_request, emit, is_recording, observe, record, request_scope
from .core.limiters import (
    GCRA,
    ConcurrencyLimiter,
    ConcurrencyStatistics,
    FixedWindow,
    FixedWindowStatistics,
    GCRAStatistics,
    Limiter,
    LimiterStatistics,
    SlidingWindowCounter,
    SlidingWindowCounterStatistics,
    SlidingWindowLog,
    SlidingWindowLogStatistics,
    TokenBucket,
    TokenBucketStatistics,
)
from .core.runtime import (
    VirtualTimeDeadlock,
    VirtualTimeError,
    VirtualTimeLivelock,
    VirtualTimeLoop,
    now,
    run,
)
from .core.throttler import KeyedThrottler, Permit, Throttler, ThrottlerStatistics
from .core.trace import Span, Summary, Trace, percentile

__all__ = [
    "AIMD",
    "GCRA",
    "RETRYABLE_STATUSES",
    "AIMDStatistics",
    "Backoff",
    "ClientSideThrottle",
    "ClientSideThrottleStatistics",
    "ConcurrencyLimiter",
    "ConcurrencyStatistics",
    "DecorrelatedJitter",
    "EqualJitter",
    "Event",
    "ExponentialBackoff",
    "FixedWindow",
    "FixedWindowStatistics",
    "FullJitter",
    "GCRAStatistics",
    "KeyedThrottler",
    "Kind",
    "Limiter",
    "LimiterStatistics",
    "OpenAIBackoff",
    "Permit",
    "RetryError",
    "RetryHint",
    "RetryPolicy",
    "SlidingWindowCounter",
    "SlidingWindowCounterStatistics",
    "SlidingWindowLog",
    "SlidingWindowLogStatistics",
    "Span",
    "Summary",
    "ThrottledTransport",
    "Throttler",
    "ThrottlerStatistics",
    "TokenBucket",
    "TokenBucketStatistics",
    "Trace",
    "VirtualTimeDeadlock",
    "VirtualTimeError",
    "VirtualTimeLivelock",
    "VirtualTimeLoop",
    "current_request",
    "emit",
    "estimate_prompt_tokens",
    "estimate_request_tokens",
    "estimate_text_tokens",
    "is_recording",
    "now",
    "observe",
    "parse_duration",
    "parse_retry_after",
    "percentile",
    "record",
    "request_scope",
    "retry_hint",
    "run",
    "server_charge",
]

_moved.install()  # the 0.1 import paths (throttle_lab.experiments, ...) keep working
