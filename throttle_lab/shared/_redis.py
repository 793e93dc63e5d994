"""The ``redis`` client library, imported in one place, so that its absence is explained the same way.

``redis`` is an optional extra.  Every shared module that talks to Redis imports it from here, so whichever
is imported first, a missing package fails with the same message: how to install it.
"""

from __future__ import annotations

try:
    import redis.asyncio as aioredis
    from redis import exceptions as redis_errors
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "throttle_lab's shared limiters need the redis package: pip install 'throttle-lab[redis]'"
    ) from exc

__all__ = ["NoBackoff", "Retry", "aioredis", "redis_errors"]
