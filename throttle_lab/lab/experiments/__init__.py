"""Experiments: send a seeded workload through a client design to the mock server, get a Trace back.

Every lesson asks the same question -- *what happens if I send this traffic this way?* -- so it is one call::

    trace = simulate("throttler", Workload(requests=300), ServerConfig(rpm=60))
    print(trace.summary(limit_per_minute=60))

One run, from left to right (the top line says where each piece lives)::

    workload.py          designs.py              client/transport.py    mock_server        core/trace.py
    Workload ─items()─>  Design.build() ──────>  ThrottledTransport ─>  the server ─────>  Trace
    what is sent, when   ClientStack: limiter,   waits, sends, backs    limits, answers    client and server
    (seeded)             retry, AIMD, throttle   off, records           429s, records      events, merged
                                                        │ on top of
                               simulation.py:  InProcessTransport, in-process, virtual time
                               live_run.py:    httpx.AsyncHTTPTransport to 127.0.0.1, real time

* :class:`Workload` (``workload.py``): how many requests, when they arrive (all at once, steady, Poisson,
  in bursts), how big their prompts and ``max_tokens`` are -- all from a seed.
* :class:`Design` (``designs.py``): how the client behaves -- which limiter, which retry policy, adaptive
  or not.  The built-in designs (:data:`DESIGNS`) range from "no limits at all" and the article's naive
  throttler to ours; a design can be built from any limiter::

      Design("mine", lambda: ClientStack(MyLimiter(...), RetryPolicy()), "my limiter")

* :func:`simulate` (``simulation.py``) runs one design on **virtual time** against an in-process mock server
  (an ASGI app reached through :class:`~.inprocess.InProcessTransport`, a leaner
  ``httpx.ASGITransport``): hours of traffic in a fraction of a second,
  identical on every run.  The trace holds the client's events and the server's (``source == "server"``).
* :func:`compare` races several designs on the *same* traffic and tabulates the results.
* :func:`live` (``live_run.py``) runs the same experiment in real time against the real HTTP server on
  127.0.0.1.

``DesignParts`` is the older name of :class:`ClientStack` (the same class).
"""

from __future__ import annotations

from .designs import DESIGNS, ClientStack, Design, DesignParts, make_design, seeded_retry
from .live_run import live
from .simulation import Comparison, compare, simulate
from .workload import WorkItem, Workload

__all__ = [
    "DESIGNS",
    "ClientStack",
    "Comparison",
    "Design",
    "DesignParts",
    "WorkItem",
    "Workload",
    "compare",
    "live",
    "make_design",
    "seeded_retry",
    "simulate",
]
