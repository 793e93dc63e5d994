"""Grant times of ``n`` waiters queued at once on a fresh limiter, on virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from throttle_lab import run


def grant_times(make: Callable[[], Any], n: int) -> list[float]:
    async def main() -> list[float]:
        limiter = make()
        loop = asyncio.get_running_loop()
        times: list[float] = []

        async def one() -> None:
            await limiter.acquire()
            times.append(loop.time())

        await asyncio.gather(*(one() for _ in range(n)))
        return times

    return run(main())
