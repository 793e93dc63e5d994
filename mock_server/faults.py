"""Injected failures: server errors, overload and streams cut off mid-way.

Real providers fail in a few recognisable ways, and a client has to survive all of them:

=================  ======  ==================================================================
fault              status  what the client sees
=================  ======  ==================================================================
``error_500``      500     ``server_error``: something broke; retrying is reasonable
``error_503``      503     ``server_error`` / ``service_unavailable``: try again shortly
``overloaded``     503     ``server_error`` / ``overloaded``: the model is too busy right now
``stream_cut``     200     a stream that stops after some chunks, with no ``data: [DONE]``
=================  ======  ==================================================================

Faults hit only *admitted* requests, which have already been charged against the limits and are not
refunded — exactly like a provider, where a failed call still counts. Each request's dice come from its
own seeded generator, so the same seed and the same arrival order fail the same requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .config import ServerConfig
from .dice import Rng
from .errors import error_body

__all__ = ["Fault", "FaultKind", "draw_fault", "fault_response"]

FaultKind = Literal["error_500", "error_503", "overloaded", "stream_cut"]


@dataclass(frozen=True, slots=True)
class Fault:
    """What goes wrong with one request (``kind`` None: nothing)."""

    kind: FaultKind | None
    cut_fraction: float
    """For ``stream_cut``: the share of content chunks sent before the stream stops (0 ≤ x < 1)."""


def draw_fault(config: ServerConfig, rng: Rng, stream: bool) -> Fault:
    """Roll the dice for one admitted request.

    Always draws exactly two numbers from ``rng`` (whatever the rates), so changing a fault rate never
    shifts the content or latency drawn after it.
    """
    roll = rng.random()
    cut_roll = rng.random()
    edge = config.error_rate_500
    if roll < edge:
        return Fault("error_500", 0.0)
    edge += config.error_rate_503
    if roll < edge:
        return Fault("error_503", 0.0)
    edge += config.overloaded_rate
    if roll < edge:
        return Fault("overloaded", 0.0)
    # A separate roll for cutting, so a stream's cut does not depend on the error rates above. Given
    # that it fell below the rate, ``cut_roll / rate`` is again uniform in [0, 1): where to cut.
    if stream and cut_roll < config.stream_cut_rate:
        return Fault("stream_cut", cut_roll / config.stream_cut_rate)
    return _NO_FAULT


_NO_FAULT = Fault(None, 0.0)  # frozen, so every request without a fault can share one


_RESPONSES: dict[str, tuple[int, bytes]] = {
    "error_500": (
        500,
        error_body(
            "The server had an error while processing your request (injected by the mock server). "
            "You can retry your request.",
            "server_error",
        ),
    ),
    "error_503": (
        503,
        error_body(
            "The service is temporarily unavailable (injected by the mock server). Please retry shortly.",
            "server_error",
            code="service_unavailable",
        ),
    ),
    "overloaded": (
        503,
        error_body(
            "The model is currently overloaded with other requests (injected by the mock server). "
            "You can retry your request after a brief wait.",
            "server_error",
            code="overloaded",
        ),
    ),
}


def fault_response(kind: FaultKind) -> tuple[int, bytes]:
    """Status and body for an error fault (``stream_cut`` has none: it is a 200 that stops early)."""
    return _RESPONSES[kind]
