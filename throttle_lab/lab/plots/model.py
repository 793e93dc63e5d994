"""What a trace says, per request: the model every picture stands on.

A :class:`~throttle_lab.Trace` is a flat list of events from several voices (the client, its limiters, the
server), in time order.  The pictures want the opposite cut: one *row* per request, holding its whole life.
An event changes one field of its request's row (:func:`read_run`, one pass over the trace)::

    event                          what it does to r1's row
    t=0.0  sent      client  r1    opens attempt 1
    t=0.1  response  client  r1    closes it           attempts    [[0.0, 0.1]]
    t=0.1  429       client  r1    a 429 answer        limited     [0.1]
    t=0.1  retry     client  r1    starts a retry wait
    t=2.1  sent      client  r1    ends the wait       retry_waits [(0.1, 2.1)]
                                   and opens attempt 2
    t=3.0  response  client  r1    closes it           attempts    [[0.0, 0.1], [2.1, 3.0]]
    t=3.0  done      client  r1    the last word       end 3.0, outcome "done"

:func:`~throttle_lab.lab.plots.timeline` draws that row as a short blue bar with a red ``x``, an orange
dotted wait and a longer blue bar.  The same in code::

    >>> from throttle_lab import Event, Trace
    >>> trace = Trace([
    ...     Event(0.0, "sent", "client", "r1"),
    ...     Event(0.1, "response", "client", "r1", detail={"status": 429}),
    ...     Event(0.1, "429", "client", "r1"),
    ...     Event(0.1, "retry", "client", "r1", detail={"delay": 2.0}),
    ...     Event(2.1, "sent", "client", "r1"),
    ...     Event(3.0, "response", "client", "r1", detail={"status": 200}),
    ...     Event(3.0, "done", "client", "r1"),
    ... ])
    >>> (row,) = read_run(trace).requests
    >>> row.attempts, row.retry_waits, row.limited, row.end, row.outcome
    ([[0.0, 0.1], [2.1, 3.0]], [(0.1, 2.1)], [0.1], 3.0, 'done')

What an "attempt" is depends on who is in the trace: a client's sends when there is a client, else a bare
limiter's grants (held until released, or instants for a bucket that never releases), else the server's
admissions.  Server events always add their own ticks (arrived, limited) to a row.

The rest reads the trace's ``meta``: the server's limits and schedule, the client's cap, and one line saying
what was run, for titles.  Nothing here draws (no matplotlib), and it is internal to the plots: their public
surface is :mod:`throttle_lab.lab.plots`.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...core.trace import Trace

__all__ = [
    "RequestRow",
    "Run",
    "client_cap",
    "describe",
    "format_number",
    "read_run",
    "schedule_steps",
    "server_limit",
]

# The client's (or a limiter's) last word on a request.
_END_KINDS = ("done", "failed", "cancelled", "rejected")


@dataclass
class RequestRow:
    """One request's life, as the pictures need it (a richer cousin of :class:`~throttle_lab.Span`)."""

    request: Hashable
    start: float
    first_sent: float | None = None
    attempts: list[list[float]] = field(default_factory=list)  # [sent, back] per attempt
    retry_waits: list[tuple[float, float]] = field(default_factory=list)  # (retry scheduled, next sent)
    limited: list[float] = field(default_factory=list)  # client saw 429
    end: float | None = None
    outcome: str = "open"
    server_arrived: list[float] = field(default_factory=list)
    server_limited: list[float] = field(default_factory=list)
    pending_retry: float | None = None


@dataclass
class Run:
    """A trace as rows: every request in order of first appearance, and the span of time they cover."""

    requests: list[RequestRow]
    start: float
    end: float
    has_client: bool  # attempts are client sends (else limiter grants, or server admissions)
    has_server: bool


#: The last trace read, as (the trace, its length, what was read): a dashboard's timeline and in-flight
#: panels read the same trace one after the other, and a busy run is thousands of events.
_last_read: tuple[weakref.ref[Trace], int, Run] | None = None


def read_run(trace: Trace) -> Run:
    """One pass over the trace: every request's waits, attempts, 429s and end, in order of appearance.

    The trace read last is remembered (while it lives and keeps its length), so the panels of one figure
    read a trace once.  The plots only read what this returns; anyone else gets a fresh reading by passing
    another trace.
    """
    global _last_read
    if _last_read is not None:
        last, length, reading = _last_read
        if last() is trace and length == len(trace):
            return reading
    reading = _read_run(trace)
    _last_read = (weakref.ref(trace), len(trace), reading)
    return reading


def _read_run(trace: Trace) -> Run:
    has_client = any(e.kind == "sent" and e.source != "server" for e in trace)
    has_grants = any(e.kind == "granted" for e in trace)
    has_server = any(e.source == "server" for e in trace)
    # What counts as "in flight": client attempts if the trace has a client, else a bare limiter's
    # grant-to-release, else the server's accepted-to-completed.
    # A bare limiter that never releases (a bucket, a window) holds nothing: its grants are instants.
    instant = not has_client and has_grants and not any(e.kind == "released" for e in trace)
    if has_client:
        opens, closes = {"sent"}, {"response"}
    elif has_grants:
        opens, closes = {"granted"}, {"released"}
    else:
        opens, closes = {"accepted"}, {"completed", "failed"}
    by_id: dict[Hashable, RequestRow] = {}
    for event in trace:
        if event.request is None:
            continue
        req = by_id.get(event.request)
        if req is None:
            req = by_id[event.request] = RequestRow(event.request, event.t)
        kind, t = event.kind, event.t
        server = event.source == "server"
        if server:
            if kind == "arrived":
                req.server_arrived.append(t)
            elif kind == "limited":
                req.server_limited.append(t)
        if server != (not has_client and not has_grants):
            # Client/limiter events drive the rows; server events only when there is nothing else.
            continue
        if kind in opens and (has_client or not req.attempts or not math.isnan(req.attempts[-1][1])):
            if req.pending_retry is not None:
                req.retry_waits.append((req.pending_retry, t))
                req.pending_retry = None
            req.attempts.append([t, t if instant else math.nan])
            if req.first_sent is None:
                req.first_sent = t
            if instant:
                req.end, req.outcome = t, "done"
        elif kind in closes and req.attempts and math.isnan(req.attempts[-1][1]):
            req.attempts[-1][1] = t
            if not has_client and has_grants:
                req.end, req.outcome = t, "done"
        elif kind == "429":
            req.limited.append(t)
        elif kind == "retry":
            req.pending_retry = t
        if server and kind in ("completed", "failed", "rejected"):
            req.end, req.outcome = t, "done" if kind == "completed" else "failed"
        elif not server and kind in _END_KINDS:
            req.end, req.outcome = t, kind
            if req.attempts and (math.isnan(req.attempts[-1][1]) or kind == "done"):
                # An exception ends the attempt; a stream is in flight until it is done.
                req.attempts[-1][1] = max(t, req.attempts[-1][0])
    start, end = (trace.start, trace.end) if len(trace) else (0.0, 0.0)
    return Run(list(by_id.values()), start, end, has_client, has_server)


def server_limit(trace: Trace, key: str) -> float | None:
    """A number from the server's settings in ``meta`` (``rpm``, ``tpm``, ``window``, ``max_concurrent``)."""
    server = trace.meta.get("server") or {}
    value = server.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def client_cap(trace: Trace) -> float | None:
    """The client's concurrency cap from ``meta``, if it had one."""
    client = trace.meta.get("client") or {}
    value = client.get("max_concurrent")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def schedule_steps(trace: Trace, key: str, t_end: float) -> tuple[list[float], list[float]] | None:
    """The server's limit over time as step points, if meta has a schedule (``None`` entries: no limit)."""
    server = trace.meta.get("server") or {}
    schedule = server.get("limit_schedule") or []
    if not schedule:
        return None
    index = 1 if key == "rpm" else 2
    base = server_limit(trace, key)
    # The server's schedule counts from its epoch: its first request, in an in-process run.
    arrivals = [e.t for e in trace if e.source == "server"]
    epoch = min(arrivals) if arrivals else (trace.start if len(trace) else 0.0)
    xs = [epoch]
    ys = [base if base is not None else math.nan]
    for entry in schedule:
        at, value = float(entry[0]), entry[index]
        xs.append(epoch + at)
        ys.append(float(value) if value is not None else math.nan)
    xs.append(max(t_end, xs[-1]))
    ys.append(ys[-1])
    return xs, ys


def format_number(value: float) -> str:
    """A limit as a label shows it: ``1,000`` for whole numbers, three significant digits otherwise."""
    return f"{value:,.0f}" if value == int(value) else f"{value:,.3g}"


def describe(trace: Trace) -> str:
    """One line saying what was run: ``server 60 rpm, 20,000 tpm, 10 s window · 100 requests, burst``."""
    parts = []
    server = trace.meta.get("server")
    if server:
        limits = []
        for key in ("rpm", "tpm"):
            value = server_limit(trace, key)
            if value is not None:
                limits.append(f"{format_number(value)} {key}")
        window = server_limit(trace, "window")
        if limits and window is not None:
            limits.append(f"{window:g} s window")
        concurrent = server_limit(trace, "max_concurrent")
        if concurrent is not None:
            limits.append(f"≤{concurrent:g} at once")
        if server.get("limit_schedule"):
            limits.append("scheduled changes")
        parts.append("server " + (", ".join(limits) if limits else "unlimited"))
    workload = trace.meta.get("workload")
    if workload:
        arrival = workload.get("arrival", "")
        text = f"{workload.get('requests', '?')} requests, {arrival}"
        if arrival and arrival != "burst" and workload.get("per_minute"):
            text += f" at {workload['per_minute']:g}/min"
        parts.append(text)
    return " · ".join(parts)
