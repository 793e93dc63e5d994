"""How long a reply takes: a seeded model of time-to-first-token plus time per output token.

An LLM answers in two phases: it reads the prompt and produces the first token (``ttft``), then emits
output tokens one after another (``per_token`` each). So the latency of one reply is roughly::

    total = (ttft + per_token * completion_tokens) * spread * load

where ``spread`` is drawn from ``uniform(1 - jitter, 1 + jitter)`` (seeded per request) and
``load = 1 + load_slowdown * other_requests_in_flight`` models a provider that slows down when busy —
the reason long queues of concurrent requests do not buy you throughput for free.

Non-streaming replies arrive in one piece after ``total``; streams send their first chunk after ``ttft``
and spread the rest over the generation time. The plan is a set of deadlines on loop time, counted from
admission; :func:`sleep_until` waits for each.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .config import ServerConfig
from .dice import Rng

__all__ = ["Latency", "plan_latency", "sleep_until"]


@dataclass(frozen=True, slots=True)
class Latency:
    """Seconds until the first token, and from the first token to the last."""

    ttft: float
    generation: float

    @property
    def total(self) -> float:
        """Seconds from admission to the complete reply."""
        return self.ttft + self.generation


def plan_latency(config: ServerConfig, rng: Rng, completion_tokens: int, others: int) -> Latency:
    """Draw one request's latency; ``others`` is how many other requests are in flight.

    Always draws exactly one number from ``rng``, so changing latency settings never shifts the other
    seeded choices of the same request.
    """
    spread = rng.uniform(1.0 - config.jitter, 1.0 + config.jitter)
    factor = spread * (1.0 + config.load_slowdown * others)
    return Latency(config.ttft * factor, config.per_token * completion_tokens * factor)


async def sleep_until(loop: asyncio.AbstractEventLoop, deadline: float) -> None:
    """Sleep until loop time ``deadline`` (at once if it has passed)."""
    # One sleep per deadline: we never loop on "is it time yet?", so float rounding cannot make us spin.
    delay = deadline - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)
