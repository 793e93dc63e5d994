"""Lesson 00, reference solution: ask every question at once with ``asyncio.gather``.

``gather`` starts all the calls before it waits for any of them, and hands back their answers in the
order the calls were passed in -- not the order they finished.
"""

from __future__ import annotations

import asyncio

from throttle_lab.lab.exercises import lesson00


async def ask_all(delays: list[float]) -> list[str]:
    """One ``pretend_call`` per delay, all in flight together; the answers in the order of ``delays``."""
    return list(await asyncio.gather(*(lesson00.pretend_call(seconds) for seconds in delays)))
