"""Lesson 05, a reference solution: the send step of a client that uses a Throttler correctly.

    from throttle_lab.lab.solutions.lesson05 import send
    lesson05.check(send)

Four things make it right:

1. **Charge tokens, not just requests.**  The server charges prompt + ``max_tokens`` at admission, so the
   permit asks for exactly that (``estimate_request_tokens`` counts the prompt the way the server does).
2. **Reserve at send time, all at once.**  ``throttler.slot(tokens=...)`` waits in line until a concurrency
   slot, a request and the tokens are *all* there, takes them together, and the request goes out at once.
3. **A 429 pauses everyone.**  ``throttler.pause(hint)`` holds the whole throttler for the server's
   ``retry-after``; then the same request goes back in line.
4. **Reconcile.**  When the answer comes, ``permit.reconcile(...)`` replaces the estimate by what the server
   really charged (its ``usage.prompt_tokens`` + ``max_tokens``), so the books never drift.
"""

from __future__ import annotations

from typing import Any

import httpx

from throttle_lab import Throttler, estimate_request_tokens, parse_retry_after
from throttle_lab.lab.experiments import WorkItem


async def send(throttler: Throttler, client: httpx.AsyncClient, item: WorkItem) -> dict[str, Any]:
    """Send one chat request through ``throttler``; return the response's JSON."""
    body = item.body()
    estimate = estimate_request_tokens(body)
    while True:
        async with throttler.slot(tokens=estimate) as permit:
            response = await client.post("/v1/chat/completions", json=body)
            if response.status_code == 429:
                hint = parse_retry_after(response.headers)
                throttler.pause(hint if hint is not None else 1.0)
                continue  # leaving the `async with` releases the slot; then we queue again
            response.raise_for_status()
            answer: dict[str, Any] = response.json()
            permit.reconcile(answer["usage"]["prompt_tokens"] + item.max_tokens)
            return answer
