"""Simulate a batch: the same runner, the same job, on virtual time against the in-process mock server.

A dry run (:func:`~throttle_lab.batch.estimate_batch`) knows the limits; a simulation also knows the
latency, the concurrency cap and the 429s, because it *runs* the job -- through :func:`run_batch`, against
:mod:`mock_server` configured with the same limits, on a loop whose clock jumps to the next timer::

    run_batch(...)  ──ASGITransport──>  mock_server(rpm, tpm, window, latency)      virtual time:
                                                                                   an hour in seconds

The summary's ``elapsed`` is the predicted makespan.  Against the real mock server started with the same
configuration, the real run takes about as long (the notebook lesson compares them); against a real
provider, give its latency in ``server`` (``ttft``, ``per_token``) for a fair prediction.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.runtime import run
from .jsonl import BatchInput, read_requests
from .limits import BatchLimits
from .summary import BatchSummary

if TYPE_CHECKING:
    from mock_server import ServerConfig

__all__ = ["server_config", "simulate_batch"]


def server_config(limits: BatchLimits, **overrides: Any) -> ServerConfig:
    """A mock server config enforcing ``limits`` (over ``burst_seconds``, as a provider with that span)."""
    from mock_server import ServerConfig  # the batch layer needs the mock server only to simulate

    fields: dict[str, Any] = {
        "rpm": None if limits.rpm is None else int(limits.rpm),
        "tpm": None if limits.tpm is None else int(limits.tpm),
        "window": limits.burst_seconds if limits.burst_seconds is not None else 60.0,
    }
    names = {f.name for f in dataclasses.fields(ServerConfig)}
    for name in ("itpm", "otpm"):
        value = getattr(limits, name)
        if value is not None and name in names:
            fields[name] = int(value)
    fields.update(overrides)
    return ServerConfig(**fields)


def simulate_batch(
    input: str | Path | BatchInput,
    *,
    limits: BatchLimits,
    server: ServerConfig | None = None,
    seed: int = 0,
    **options: Any,
) -> BatchSummary:
    """Run the batch on virtual time against the in-process mock server; return its summary.

    ``limits`` are the client's (and, unless ``server`` is given, the server's: :func:`server_config`).
    ``options`` go to :func:`run_batch` (``max_attempts``, ``default_max_tokens``, ...).  Nothing is
    sent anywhere and the results go to a temporary file, deleted afterwards.

    >>> import json
    >>> from throttle_lab.batch import parse_requests
    >>> lines = [json.dumps({"custom_id": str(i), "method": "POST", "url": "/v1/chat/completions",
    ...          "body": {"model": "gpt-4o-mini", "max_tokens": 50,
    ...                   "messages": [{"role": "user", "content": "hi"}]}}) for i in range(120)]
    >>> summary = simulate_batch(parse_requests(lines), limits=BatchLimits(rpm=600, burst_seconds=1))
    >>> summary.succeeded, summary.rate_limited, round(summary.elapsed, 1)
    (120, 0, 12.3)
    """
    import httpx

    from mock_server import create_app

    batch = input if isinstance(input, BatchInput) else read_requests(input)
    config = server if server is not None else server_config(limits)
    given = {name: getattr(limits, f.name) for f in dataclasses.fields(limits) for name in [f.name]}

    async def job(output: Path) -> BatchSummary:
        from .runner import run_batch  # runner imports this package's modules; import it when used

        app = create_app(config)
        async with httpx.ASGITransport(app=app) as transport:
            return await run_batch(
                batch,
                output,
                base_url="http://mock",
                transport=transport,
                seed=seed,
                progress=options.pop("progress", False),
                **given,
                **options,
            )

    with tempfile.TemporaryDirectory(prefix="throttle-lab-sim-") as folder:
        return run(job(Path(folder) / "results.jsonl"), virtual=True)
