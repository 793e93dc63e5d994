"""Lesson 02, reference solution: Little's law picks the cap.

``in flight = rate x latency``.  At 60 requests per minute (one per second) and 2 s per request, that is
``1/s x 2 s = 2`` requests in flight.  One would use half the limit; three would send 90 a minute and be
refused as soon as the server's 10-request bucket runs dry.

This only works because the latency is fixed and known.  When it changes, the rate changes with it: that is
why a requests-per-minute limit needs a rate limiter, not a semaphore.
"""

from __future__ import annotations

import math


def max_concurrent_for(limit_rpm: float, latency: float) -> int:
    """Requests in flight that send ``limit_rpm`` per minute when each takes ``latency`` seconds.

    Rounded down (never over the limit), and at least 1.  The tiny slack absorbs float noise such as
    ``1.9999999999999998`` for an exact 2.
    """
    per_second = limit_rpm / 60.0
    return max(1, math.floor(per_second * latency + 1e-9))


#: The answer for the exercise's numbers: 60 requests per minute, 2 s per request.
MAX_CONCURRENT = max_concurrent_for(60, 2.0)
