"""Simulation on virtual time: the same runner, the in-process mock server, the same limits."""

from __future__ import annotations

import json

from throttle_lab.batch import BatchLimits, parse_requests, simulate_batch
from throttle_lab.batch.simulate import server_config

from .helpers import chat_line


def test_the_simulation_runs_every_request_and_is_repeatable() -> None:
    batch = parse_requests([json.dumps(chat_line(str(i))) for i in range(200)])
    limits = BatchLimits(rpm=1200, tpm=600_000, burst_seconds=1)
    first = simulate_batch(batch, limits=limits)
    assert (first.succeeded, first.rate_limited, first.exit_code) == (200, 0, 0)
    # 200 requests at 20 a second, 20 at once: about 9 s of sending plus the last answers' latency.
    assert 9.0 <= first.elapsed <= 11.0
    again = simulate_batch(batch, limits=limits)
    assert again.elapsed == first.elapsed


def test_the_server_enforces_the_same_limits() -> None:
    config = server_config(BatchLimits(rpm=600, tpm=90_000, itpm=1000, burst_seconds=1), seed=4)
    assert (config.rpm, config.tpm, config.window, config.itpm, config.seed) == (600, 90_000, 1.0, 1000, 4)
