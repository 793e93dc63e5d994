"""throttle_lab: learn to call rate-limited LLM APIs well, by watching it happen.

Everything here runs on the loop's clock, so the same code runs in real time or on virtual time
(:func:`run` with ``virtual=True``), where an hour-long experiment replays in a fraction of a second.

The package is layered; each layer imports only from the ones above it in this list:

* ``throttle_lab.core`` -- the virtual-time runtime, events and traces, the limiters, the throttler;
* ``throttle_lab.client`` -- Retry-After, backoff, retry policy, adaptive control, token estimates and the
  httpx transport;
* ``throttle_lab.shared`` -- the same limiter surface decided in Redis (needs the ``redis`` extra);
* ``throttle_lab.batch`` -- a whole JSONL file of requests under the provider's limits, resumably (core and
  client only; its names stay in ``throttle_lab.batch``, as the shared ones stay in ``throttle_lab.shared``);
* ``throttle_lab.lab`` -- the teaching lab: experiments, plots, widgets, grading, the lessons' exercises,
  the article's naive designs and the command line (what the ``lessons`` extra brings).

This module re-exports the library's public names; see ``DESIGN.md`` for the map.
"""

from . import _moved
from .client.adaptive import AIMD, ClientSideThrottle
from .client.backoff import (
    Backoff,
    DecorrelatedJitter,
    EqualJitter,
    ExponentialBackoff,
    FullJitter,
    OpenAIBackoff,
)
from .client.retry import RetryError, RetryPolicy
from .client.retry_after import parse_retry_after
from .client.tokens import estimate_request_tokens, estimate_tokens
from .client.transport import ThrottledTransport
from .core.events import Event, Kind, observe, record, request_scope
from .core.gate import RequestGate
from .core.keyed_throttler import KeyedThrottler
from .core.limiters import (
    GCRA,
    ConcurrencyLimiter,
    FixedWindow,
    Limiter,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)
from .core.runtime import (
    VirtualTimeDeadlock,
    VirtualTimeError,
    VirtualTimeLivelock,
    VirtualTimeLoop,
    now,
    run,
)
from .core.throttler import Permit, Throttler
from .core.tokens import Tokens
from .core.trace import Summary, Trace

__all__ = [
    "AIMD",
    "GCRA",
    "Backoff",
    "ClientSideThrottle",
    "ConcurrencyLimiter",
    "DecorrelatedJitter",
    "EqualJitter",
    "Event",
    "ExponentialBackoff",
    "FixedWindow",
    "FullJitter",
    "KeyedThrottler",
    "Kind",
    "Limiter",
    "OpenAIBackoff",
    "Permit",
    "RequestGate",
    "RetryError",
    "RetryPolicy",
    "SlidingWindowCounter",
    "SlidingWindowLog",
    "Summary",
    "ThrottledTransport",
    "Throttler",
    "TokenBucket",
    "Tokens",
    "Trace",
    "VirtualTimeDeadlock",
    "VirtualTimeError",
    "VirtualTimeLivelock",
    "VirtualTimeLoop",
    "estimate_request_tokens",
    "estimate_tokens",
    "now",
    "observe",
    "parse_retry_after",
    "record",
    "request_scope",
    "run",
]

_moved.install()  # the 0.1 import paths (throttle_lab.experiments, ...) keep working


def __getattr__(name: str) -> object:
    # 0.1 exported plumbing here too (emit, the statistics classes...): still found, with a warning.
    return _moved.plumbing(name)
