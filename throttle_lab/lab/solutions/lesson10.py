"""Lesson 10, reference solution: split the key's limit -- rate *and* burst -- between the workers.

    from throttle_lab.lab.solutions.lesson10 import BURST_PER_WORKER, RPM_PER_WORKER
    check_split(RPM_PER_WORKER, BURST_PER_WORKER)

The server counts the key, not the process, so everything a worker may do adds up across the workers:

* **the rates** -- four workers at 600 per minute each send 2,400 per minute; each gets a quarter, 150;
* **the bursts** -- four workers allowed 3 at once send 12 at once at a server that holds 10; each gets at
  most 10 / 4 = 2.5, and a burst counts whole requests, so 2 (which also leaves the bucket some room);
* **nothing over** -- a split that adds up to a little more than the limit (155 each: 620 per minute) can
  pass a short run, the server's bucket soaking up the excess, and then gets 429s on a longer one.

The price, which is why shared limits exist: a worker on its own still gets only its 150 per minute.
"""

from __future__ import annotations

WORKERS = 4
"""Worker processes sharing the key."""
KEY_RPM = 600
"""The key's limit, in requests per minute."""
KEY_BUCKET = 10
"""How many requests the server takes at once (600 per minute over a 1-second window)."""

RPM_PER_WORKER: float = KEY_RPM / WORKERS
"""Each worker's share of the rate: 150 per minute."""
BURST_PER_WORKER: int = KEY_BUCKET // WORKERS
"""Each worker's share of the bucket, in whole requests: 2."""
