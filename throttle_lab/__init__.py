"""throttle_lab: learn to call rate-limited LLM APIs well, by watching it happen.

Everything here runs on the loop's clock, so the same code runs in real time or on virtual time
(:func:`run` with ``virtual=True``), where an hour-long experiment replays in a fraction of a second.
"""

from .adaptive import AIMD, AIMDStatistics, ClientSideThrottle, ClientSideThrottleStatistics
from .backoff import Backoff, DecorrelatedJitter, EqualJitter, ExponentialBackoff, FullJitter, OpenAIBackoff
from .events import Event, Kind, current_request, emit, is_recording, observe, record, request_scope
from .limiters import (
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
from .retry import RETRYABLE_STATUSES, RetryError, RetryPolicy
from .retry_after import RetryHint, parse_duration, parse_retry_after, retry_hint
from .runtime import (
    VirtualTimeDeadlock,
    VirtualTimeError,
    VirtualTimeLivelock,
    VirtualTimeLoop,
    now,
    run,
)
from .throttler import KeyedThrottler, Permit, Throttler, ThrottlerStatistics
from .tokens import estimate_prompt_tokens, estimate_request_tokens, estimate_text_tokens
from .trace import Span, Summary, Trace, percentile
from .transport import ThrottledTransport, server_charge

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
