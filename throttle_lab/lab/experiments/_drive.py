"""What ``simulate`` and ``live`` share: the server's config, the design and its limits, the drive, the meta.

The two differ only in the transport under the design's stack and in whose clock runs::

    simulate:  ThrottledTransport ──> InProcessTransport(create_app(config))    virtual time, in-process
    live:      ThrottledTransport ──> httpx.AsyncHTTPTransport ──> 127.0.0.1    real time, a subprocess
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from .designs import Design, built_in, make_design
from .workload import WorkItem, Workload

if TYPE_CHECKING:
    from mock_server import ServerConfig

__all__ = ["describe", "drive", "json_request", "resolve", "server_config"]


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
            request = json_request(url, item.body(workload.model, workload.stream), item.request_id)
            try:
                response = await throttled.handle_async_request(request)
                await response.aread()
                await response.aclose()
            except ValueError:
                pass  # refused locally (e.g. larger than the whole TPM budget); recorded as "rejected"

        await asyncio.gather(*(send(item) for item in workload.items()))


def json_request(url: httpx.URL, body: Mapping[str, Any], request_id: str) -> httpx.Request:
    """``httpx.Request("POST", url, json=body, headers=...)``, byte for byte, for a fraction of its cost.

    The same body (httpx's own JSON encoding) and the same headers in the same order (``Host`` first,
    the given ones, then ``Content-Length`` and ``Content-Type``), already read, as httpx builds it.  Built
    from the parts, because httpx's generic merging of default headers costs a simulated request more
    than the limiter and the server's route together spend on it.
    """
    content = _encode_json(body).encode("utf-8")
    headers = [
        (b"Host", url.netloc),
        (b"x-request-id", request_id.encode("ascii")),
        (b"authorization", _AUTHORIZATION),
        (b"Content-Length", b"%d" % len(content)),
        (b"Content-Type", b"application/json"),
    ]
    request = httpx.Request("POST", url, headers=headers, stream=httpx.ByteStream(content))
    request.read()  # as httpx does for a body in memory: `request.content` is there from the start
    # Every header above is ASCII, which is what httpx would find on the first look-up by name -- by
    # decoding each one in turn.
    request.headers.encoding = "ascii"
    return request


# httpx's encoding of `json=` (httpx/_content.py): compact, UTF-8, no NaN.
_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_AUTHORIZATION = b"Bearer sk-throttle-lab"


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
