"""What ``simulate`` and ``live`` share: the server's config, the design and its limits, the drive, the meta.

The two differ only in the transport under the design's stack and in whose clock runs::

    simulate:  ThrottledTransport ──> InProcessTransport(create_app(config))    virtual time, in-process
    live:      ThrottledTransport ──> httpx.AsyncHTTPTransport ──> 127.0.0.1    real time, a subprocess
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from .designs import Design, built_in, make_design
from .workload import WorkItem, Workload

if TYPE_CHECKING:
    from mock_server import ServerConfig

__all__ = ["describe", "drive", "resolve", "server_config"]


def server_config(server: ServerConfig | Mapping[str, Any] | None) -> ServerConfig:
    """A ``ServerConfig`` from one, from its fields as a dict, or the lessons' default (60 RPM)."""
    from mock_server import ServerConfig  # on first use: importing the lab need not load the server

    if server is None:
        return ServerConfig(rpm=60)
    if isinstance(server, ServerConfig):
        return server
    return ServerConfig(**dict(server))


def resolve(
    design: Design | str, server: ServerConfig, limits: Mapping[str, Any]
) -> tuple[Design, dict[str, Any] | None]:
    """The design to run, and the client limits it runs with (``None`` for a ready-made Design)."""
    if isinstance(design, Design):
        return design, None
    # By default the client is configured to the server's limits -- the point of most lessons.
    kwargs: dict[str, Any] = {"rpm": server.rpm, "tpm": server.tpm, "window": server.window}
    kwargs.update({k: v for k, v in limits.items() if v is not None})
    chosen = make_design(design, **kwargs)  # first: an unknown name or limit fails here, clearly
    max_concurrent = kwargs.get("max_concurrent")
    if max_concurrent is None:
        max_concurrent = built_in(design).default_concurrency
    client = {
        "rpm": kwargs["rpm"],
        "tpm": kwargs["tpm"],
        "window": kwargs["window"],
        "max_concurrent": max_concurrent,
    }
    return chosen, client


async def drive(
    design: Design,
    workload: Workload,
    transport: httpx.AsyncBaseTransport,
    base_url: str,
    default_max_tokens: int,
) -> None:
    """Send every work item at its arrival time through the design's stack on top of ``transport``."""
    from ...client.transport import ThrottledTransport

    stack = design.build()  # here, inside the run's loop: the stack's locks and timers belong to it
    throttled = ThrottledTransport(
        transport,
        limiter=stack.limiter,
        retry=stack.retry,
        aimd=stack.aimd,
        client_throttle=stack.client_throttle,
        default_max_tokens=default_max_tokens,
        name="client",
    )
    loop = asyncio.get_running_loop()
    start = loop.time()
    url = httpx.URL(base_url).join("/v1/chat/completions")
    # Requests go straight to the transport stack: an httpx.AsyncClient on top would add cookie, redirect
    # and URL handling that an experiment never needs and that costs more than the rest of a request.
    async with throttled:

        async def send(item: WorkItem) -> None:
            delay = start + item.at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            headers = {"x-request-id": item.request_id, "authorization": "Bearer sk-throttle-lab"}
            request = httpx.Request(
                "POST", url, json=item.body(workload.model, workload.stream), headers=headers
            )
            try:
                response = await throttled.handle_async_request(request)
                await response.aread()
                await response.aclose()
            except ValueError:
                pass  # refused locally (e.g. larger than the whole TPM budget); recorded as "rejected"

        await asyncio.gather(*(send(item) for item in workload.items()))


def describe(
    design: Design,
    workload: Workload,
    config: ServerConfig,
    mode: str,
    client: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a trace's ``meta`` says about the run: plots title themselves and draw limits from it."""
    meta: dict[str, Any] = {
        "design": design.name,
        "description": design.description,
        "mode": mode,
        "server": {
            "rpm": config.rpm,
            "tpm": config.tpm,
            "window": config.window,
            "max_concurrent": config.max_concurrent,
            "limit_schedule": [tuple(entry) for entry in config.limit_schedule],
        },
        "workload": {
            "requests": workload.requests,
            "arrival": workload.arrival,
            "per_minute": workload.per_minute,
            "seed": workload.seed,
        },
    }
    if client is not None:
        meta["client"] = dict(client)
    return meta
