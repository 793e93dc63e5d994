"""The limiters: one algorithm per module, one waiting room (``_base``) for all of them."""

from ._base import Limiter, LimiterStatistics
from .concurrency import ConcurrencyLimiter, ConcurrencyStatistics
from .fixed_window import FixedWindow, FixedWindowStatistics
from .gcra import GCRA, GCRAStatistics
from .sliding_counter import SlidingWindowCounter, SlidingWindowCounterStatistics
from .sliding_log import SlidingWindowLog, SlidingWindowLogStatistics
from .token_bucket import TokenBucket, TokenBucketStatistics

__all__ = [
    "GCRA",
    "ConcurrencyLimiter",
    "ConcurrencyStatistics",
    "FixedWindow",
    "FixedWindowStatistics",
    "GCRAStatistics",
    "Limiter",
    "LimiterStatistics",
    "SlidingWindowCounter",
    "SlidingWindowCounterStatistics",
    "SlidingWindowLog",
    "SlidingWindowLogStatistics",
    "TokenBucket",
    "TokenBucketStatistics",
]
