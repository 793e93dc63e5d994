"""Plots: look at a run.  Every function takes a :class:`~throttle_lab.Trace` and draws one picture of it.

A rate limit is a rule about *time*, so the pictures are all against time::

    from throttle_lab.lab.experiments import simulate, Workload
    from throttle_lab.lab import plots

    trace = simulate("article", Workload(requests=60), {"rpm": 30, "window": 10})
    plots.timeline(trace)      # one row per request: waiting, in flight, 429s, retries
    plots.rates(trace)         # requests (and tokens) per minute against the server's limit
    plots.in_flight(trace)     # how many at once, against the concurrency cap
    plots.level(trace)         # the limiter's bucket / window, read at every grant
    plots.waits(trace)         # how long requests waited before they were sent
    plots.dashboard(trace)     # timeline + rates + in flight, one figure
    plots.race(compare(["article", "throttler"], ...))   # designs side by side on the same traffic

Each single-panel function takes an optional matplotlib ``ax`` and returns the Axes it drew on (a new
figure is made when ``ax`` is None); :func:`dashboard` and :func:`race` return a Figure.  Nothing here calls
``show()``: in a notebook with ``%matplotlib inline`` the figure appears at the end of the cell.

Titles say what was run (design, server limits, workload) when the trace's ``meta`` knows it, and colours
come from the Okabe–Ito palette, which stays distinguishable for colour-blind readers.  Everything is drawn
with a handful of vectorised artists (line collections, step lines, one scatter per marker kind), so a few
thousand requests draw in well under a second.

``python -m throttle_lab.lab.plots [DIRECTORY]`` writes one example PNG per plot (default: ``docs/``).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.transforms import ScaledTranslation

from ..core.trace import Summary, Trace, percentile

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import NDArray

    from .experiments import Comparison

__all__ = ["OKABE_ITO", "dashboard", "in_flight", "level", "race", "rates", "timeline", "waits"]

#: The Okabe–Ito palette: eight colours that colour-blind readers can tell apart.
OKABE_ITO: Mapping[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

# What each thing is drawn in, everywhere (so a learner learns the code once).
_IN_FLIGHT = OKABE_ITO["blue"]
_WAITING = "#9a9a9a"
_RETRY_WAIT = OKABE_ITO["orange"]
_LIMITED = OKABE_ITO["vermillion"]
_REJECTED = OKABE_ITO["reddish_purple"]
_SERVER = OKABE_ITO["sky_blue"]
_ACCEPTED = OKABE_ITO["bluish_green"]
_TOKENS = OKABE_ITO["orange"]
_LIMIT = OKABE_ITO["black"]

_END_KINDS = ("done", "failed", "cancelled", "rejected")
_LEVEL_LABELS = {
    "tokens": "tokens in bucket",
    "in_window": "in window",
    "estimate": "window estimate",
    "in_use": "in use",
    "in_flight": "in flight",
    "requests_left": "requests left in bucket",
    "tokens_left": "tokens left in bucket",
    "level": "level",
}


# ---------------------------------------------------------------------------------------------- reading
@dataclass
class _Request:
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
class _Run:
    requests: list[_Request]
    start: float
    end: float
    has_client: bool  # attempts are client sends (else limiter grants, or server admissions)
    has_server: bool


def _read(trace: Trace) -> _Run:
    """One pass over the trace: every request's waits, attempts, 429s and end, in order of appearance."""
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
    by_id: dict[Hashable, _Request] = {}
    for event in trace:
        if event.request is None:
            continue
        req = by_id.get(event.request)
        if req is None:
            req = by_id[event.request] = _Request(event.request, event.t)
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
    return _Run(list(by_id.values()), start, end, has_client, has_server)


def _meta_limit(trace: Trace, key: str) -> float | None:
    server = trace.meta.get("server") or {}
    value = server.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _client_cap(trace: Trace) -> float | None:
    client = trace.meta.get("client") or {}
    value = client.get("max_concurrent")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _schedule_steps(trace: Trace, key: str, t_end: float) -> tuple[list[float], list[float]] | None:
    """The server's limit over time as step points, if meta has a schedule (``None`` entries: no limit)."""
    server = trace.meta.get("server") or {}
    schedule = server.get("limit_schedule") or []
    if not schedule:
        return None
    index = 1 if key == "rpm" else 2
    base = _meta_limit(trace, key)
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


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.3g}"


def _describe(trace: Trace) -> str:
    """One line saying what was run: ``server 60 rpm, 20,000 tpm, 10 s window · 100 requests, burst``."""
    parts = []
    server = trace.meta.get("server")
    if server:
        limits = []
        for key in ("rpm", "tpm"):
            value = _meta_limit(trace, key)
            if value is not None:
                limits.append(f"{_fmt(value)} {key}")
        window = _meta_limit(trace, "window")
        if limits and window is not None:
            limits.append(f"{window:g} s window")
        concurrent = _meta_limit(trace, "max_concurrent")
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


def _title(trace: Trace, what: str, title: str | None) -> str:
    if title is not None:
        return title
    design = trace.meta.get("design")
    head = f"{what} — {design}" if design else what
    config = _describe(trace)
    return f"{head}\n{config}" if config else head


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    _, new = plt.subplots(figsize=figsize, layout="constrained")
    return new


def _nothing(ax: Axes, message: str) -> None:
    ax.text(
        0.5,
        0.5,
        message,
        transform=ax.transAxes,
        ha="center",
        va="center",
        color="#555555",
        fontsize="medium",
        style="italic",
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _legend(ax: Axes, handles: Sequence[Artist], legend: bool, *, twin: Axes | None = None) -> None:
    """The legend outside the plot, to the right: it never hides a bar or a line.

    With a right-hand ``twin`` axis the legend moves further right, past the twin's tick labels.
    """
    if not (legend and handles):
        return
    shift = 0.0
    if twin is not None:
        top = max(abs(v) for v in twin.get_ylim())
        digits = len(f"{top:.0f}") if math.isfinite(top) else 6
        shift = 0.45 + 0.085 * digits  # inches: tick labels plus the axis label
    fig = ax.get_figure(root=True)
    transform = ax.transAxes
    if shift and fig is not None:
        transform = transform + ScaledTranslation(shift, 0.0, fig.dpi_scale_trans)
    ax.legend(
        handles=list(handles),
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        bbox_transform=transform,
        borderaxespad=0.0,
    )


def _row_points(ax: Axes, rows: int) -> float:
    """About how many points tall one timeline row is (line widths and markers scale with it)."""
    fig_height = ax.get_figure(root=True).get_size_inches()[1]  # type: ignore[union-attr]
    height = ax.get_position().height * fig_height * 72.0
    return float(height / max(rows, 1))


def _rug(ax: Axes, times: Sequence[float], label: str) -> Artist:
    """429s as a row of crosses along the bottom edge of the axes (x in data, y in axes units)."""
    (markers,) = ax.plot(
        times,
        [0.025] * len(times),
        ls="none",
        marker="x",
        ms=6,
        mew=1.5,
        color=_LIMITED,
        transform=ax.get_xaxis_transform(),
        clip_on=False,
        zorder=5,
        label=label,
    )
    return markers


# ---------------------------------------------------------------------------------------------- timeline
def timeline(
    trace: Trace,
    ax: Axes | None = None,
    *,
    max_rows: int = 200,
    server: bool = True,
    legend: bool = True,
    title: str | None = None,
) -> Axes:
    """One row per request: grey while it waits, a thick bar while it is in flight.

    Marks show what happened: ``x`` a 429 answer, an orange dotted line the wait before a retry, a black
    ``X`` a request that gave up, a purple square one refused locally.  Where the trace holds the server's
    events (``server=True``), small ticks above each row show when the server saw it arrive (blue) and
    refused it (red ``v``).

    Rows are in order of first appearance, the first at the top.  With more than ``max_rows`` requests an
    evenly spaced subset is drawn (every k-th request), so thousands of requests stay readable and fast.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows!r}")
    ax = _new_axes(ax, (10, 5.5))
    ax.set_title(_title(trace, "Request timeline", title), fontsize="medium")
    ax.set_xlabel("time (s)")
    run = _read(trace)
    n = len(run.requests)
    if n == 0:
        ax.set_ylabel("request")
        _nothing(ax, "no requests in this trace")
        return ax
    if n > max_rows:
        picked = sorted(set(np.linspace(0, n - 1, max_rows).round().astype(int).tolist()))
        ax.set_ylabel(f"request ({len(picked)} of {n} shown, in order of arrival)")
    else:
        picked = list(range(n))
        ax.set_ylabel("request (in order of arrival)")
    row_pt = _row_points(ax, len(picked))
    bar_lw = min(8.0, max(0.8, 0.7 * row_pt))
    thin_lw = min(1.6, max(0.4, 0.2 * row_pt))
    mark = min(7.0, max(2.5, 0.8 * row_pt))

    waiting: list[list[tuple[float, float]]] = []
    retry_waits: list[list[tuple[float, float]]] = []
    flying: list[list[tuple[float, float]]] = []
    limited: tuple[list[float], list[float]] = ([], [])
    failed: tuple[list[float], list[float]] = ([], [])
    rejected: tuple[list[float], list[float]] = ([], [])
    arrived: tuple[list[float], list[float]] = ([], [])
    refused: tuple[list[float], list[float]] = ([], [])
    for y in picked:
        req = run.requests[y]
        through = req.first_sent if req.first_sent is not None else req.end
        if through is not None and through > req.start:
            waiting.append([(req.start, y), (through, y)])
        elif through is None:  # still waiting when the trace ends
            waiting.append([(req.start, y), (run.end, y)])
        for begin, back in req.retry_waits:
            retry_waits.append([(begin, y), (back, y)])
        for sent, back in req.attempts:
            back = run.end if math.isnan(back) else back
            # A zero-length attempt (an instant 429) still gets a sliver so it can be seen.
            flying.append([(sent, y), (max(back, sent + 1e-9), y)])
        for t in req.limited:
            limited[0].append(t)
            limited[1].append(y)
        if req.outcome == "failed" and req.end is not None:
            failed[0].append(req.end)
            failed[1].append(y)
        elif req.outcome == "rejected" and req.end is not None:
            rejected[0].append(req.end)
            rejected[1].append(y)
        if server:
            arrived[0].extend(req.server_arrived)
            arrived[1].extend([y - 0.42] * len(req.server_arrived))
            refused[0].extend(req.server_limited)
            refused[1].extend([y - 0.42] * len(req.server_limited))

    handles: list[Artist] = []
    if waiting:
        ax.add_collection(LineCollection(waiting, colors=_WAITING, linewidths=thin_lw, zorder=1))
        handles.append(Line2D([], [], color=_WAITING, lw=1.5, label="waiting (queued)"))
    if retry_waits:
        ax.add_collection(
            LineCollection(
                retry_waits, colors=_RETRY_WAIT, linewidths=thin_lw * 1.3, linestyles=":", zorder=1
            )
        )
        handles.append(Line2D([], [], color=_RETRY_WAIT, lw=1.8, ls=":", label="waiting to retry"))
    if flying:
        ax.add_collection(
            LineCollection(flying, colors=_IN_FLIGHT, linewidths=bar_lw, capstyle="butt", zorder=2)
        )
        handles.append(
            Line2D([], [], color=_IN_FLIGHT, lw=5, label="in flight" if run.has_client else "held")
        )
    if arrived[0]:
        ax.scatter(*arrived, marker="|", s=mark**2 * 0.5, color=_SERVER, linewidths=1, zorder=3)
        handles.append(Line2D([], [], color=_SERVER, marker="|", ls="none", ms=7, label="server: arrived"))
    if refused[0]:
        ax.scatter(*refused, marker="v", s=mark**2 * 0.35, color=_LIMITED, linewidths=0, zorder=3)
        handles.append(Line2D([], [], color=_LIMITED, marker="v", ls="none", ms=5, label="server: limited"))
    if limited[0]:
        ax.scatter(*limited, marker="x", s=mark**2, color=_LIMITED, linewidths=1.3, zorder=4)
        handles.append(
            Line2D([], [], color=_LIMITED, marker="x", ls="none", ms=7, mew=1.5, label="429 answer")
        )
    if failed[0]:
        ax.scatter(*failed, marker="X", s=mark**2 * 1.2, color=OKABE_ITO["black"], linewidths=0, zorder=4)
        handles.append(Line2D([], [], color="black", marker="X", ls="none", ms=7, label="gave up"))
    if rejected[0]:
        ax.scatter(*rejected, marker="s", s=mark**2 * 0.8, color=_REJECTED, linewidths=0, zorder=4)
        handles.append(Line2D([], [], color=_REJECTED, marker="s", ls="none", ms=6, label="refused locally"))

    span = max(run.end - run.start, 1e-3)
    ax.set_xlim(run.start - 0.01 * span, run.end + 0.02 * span)
    ax.set_ylim(n - 0.5, -0.9)  # first request at the top; room above it for the server's ticks
    if n <= 25:
        ax.set_yticks(range(n), [str(r.request) for r in run.requests], fontsize="small")
    else:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{int(v) + 1}"))
    ax.grid(axis="x", alpha=0.3)
    _legend(ax, handles, legend)
    return ax


# ---------------------------------------------------------------------------------------------- rates
def _rolling(
    times: NDArray[np.float64], weights: NDArray[np.float64], window: float, t0: float, t1: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The exact amount in ``(t - window, t]`` as a step function (right-continuous) over ``[t0, t1]``.

    It only changes when an event enters (at ``t_i``) or leaves (at ``t_i + window``), so evaluating it at
    those instants draws it exactly -- no sampling that could miss a peak.  Leaving is tested as
    ``t_i + window <= t``, the same expression the limiters use, so a boundary is never off by a rounding.
    """
    order = np.argsort(times, kind="stable")
    times, weights = times[order], weights[order]
    leave = times + window
    grid = np.unique(np.concatenate([times, leave, [t0, t1]]))
    grid = grid[(grid >= t0) & (grid <= t1)]
    cumulative = np.concatenate([[0.0], np.cumsum(weights)])
    entered = cumulative[np.searchsorted(times, grid, side="right")]
    left = cumulative[np.searchsorted(leave, grid, side="right")]
    return grid, entered - left


def rates(
    trace: Trace,
    ax: Axes | None = None,
    *,
    window: float = 60.0,
    rpm: float | None = None,
    tpm: float | None = None,
    tokens: bool | None = None,
    legend: bool = True,
    title: str | None = None,
) -> Axes:
    """Requests per minute over a rolling ``window`` (and tokens per minute) against the limit lines.

    Blue: every attempt the client sent (retries included -- the server counts them).  Green dashed:
    what the server accepted, where the trace has its events.  Purple dotted: requests a client-side
    throttle refused at home (they never reached the server).  Black dashed: the request limit, from
    ``rpm`` or the trace's ``meta`` (a step line when the server's limits change on a schedule).  Red
    crosses along the bottom: 429 answers.

    Orange, on the right-hand axis: tokens per minute the server charged, against the ``tpm`` limit.
    ``tokens=None`` draws them when the trace carries token weights *and* a tokens limit is known;
    ``tokens=True`` whenever it carries weights.  When both limits are known the two axes are scaled so
    the two limit lines coincide: whichever line gets closer to it is the limit that binds.

    The rolling amount at ``t`` is what was sent in ``(t - window, t]``, scaled to a minute; it is drawn
    exactly (as a step line), so a burst above the limit is never smoothed away.
    """
    if not window > 0:
        raise ValueError(f"window must be positive, got {window!r}")
    ax = _new_axes(ax, (10, 4))
    ax.set_title(_title(trace, "Rates", title), fontsize="medium")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("requests / min" + (f" (rolling {window:g} s)" if window != 60 else ""))
    sent = [e for e in trace if e.kind == "sent" and e.source != "server"]
    if not sent:
        sent = [e for e in trace if e.kind == "arrived" and e.source == "server"]
    if not sent:
        _nothing(ax, "no requests in this trace")
        return ax
    t0, t1 = trace.start, trace.end
    if t1 <= t0:
        t1 = t0 + 1.0
    scale = 60.0 / window
    handles: list[Artist] = []

    times = np.array([e.t for e in sent], dtype=float)
    xs, ys = _rolling(times, np.ones_like(times), window, t0, t1)
    (line,) = ax.step(xs, ys * scale, where="post", color=_IN_FLIGHT, lw=1.8, label="sent (all attempts)")
    handles.append(line)
    peak = float(ys.max() * scale)
    accepted = [e for e in trace if e.kind == "accepted" and e.source == "server"]
    if accepted and any(e.source != "server" for e in sent):
        a_times = np.array([e.t for e in accepted], dtype=float)
        xs, ys = _rolling(a_times, np.ones_like(a_times), window, t0, t1)
        (line,) = ax.step(
            xs, ys * scale, where="post", color=_ACCEPTED, lw=1.6, ls="--", label="accepted by server"
        )
        handles.append(line)
    # Requests a client-side throttle refused at home never reach the wire: without their own line, a
    # throttle that sheds load would look exactly like no throttle at all.
    refused = [e.t for e in trace if e.kind == "rejected" and e.detail.get("reason") == "client_throttle"]
    if refused:
        r_times = np.array(refused, dtype=float)
        xs, ys = _rolling(r_times, np.ones_like(r_times), window, t0, t1)
        (line,) = ax.step(
            xs,
            ys * scale,
            where="post",
            color=_REJECTED,
            lw=1.4,
            ls=":",
            label=f"refused at home ({len(refused)})",
        )
        handles.append(line)
        peak = max(peak, float(ys.max() * scale))

    rpm = rpm if rpm is not None else _meta_limit(trace, "rpm")
    steps = _schedule_steps(trace, "rpm", t1)
    if steps is not None:
        (line,) = ax.step(*steps, where="post", color=_LIMIT, lw=1.3, ls="--", label="server rpm limit")
        handles.append(line)
        peak = max(peak, float(np.nanmax([*steps[1], 0.0])))
    elif rpm is not None:
        handles.append(ax.axhline(rpm, color=_LIMIT, lw=1.3, ls="--", label=f"limit {_fmt(rpm)} rpm"))
        peak = max(peak, rpm)

    rate_limited = [e.t for e in trace if e.kind == "429" and e.source != "server"]
    if not rate_limited:
        rate_limited = [e.t for e in trace if e.kind == "limited" and e.source == "server"]
    if rate_limited:
        handles.append(_rug(ax, rate_limited, f"429 ({len(rate_limited)})"))

    # Tokens: what the server charged if it reported it, else the client's estimates.
    weighted = [e for e in accepted if e.weight > 1] or [e for e in sent if e.weight > 1]
    tpm = tpm if tpm is not None else _meta_limit(trace, "tpm")
    t_steps = _schedule_steps(trace, "tpm", t1)
    if tokens is None:
        tokens = tpm is not None or (t_steps is not None and not all(map(math.isnan, t_steps[1])))
    twin: Axes | None = None
    if tokens and weighted:
        twin = ax.twinx()
        w_times = np.array([e.t for e in weighted], dtype=float)
        w = np.array([float(e.weight) for e in weighted], dtype=float)
        xs, ys = _rolling(w_times, w, window, t0, t1)
        (line,) = twin.step(xs, ys * scale, where="post", color=_TOKENS, lw=1.2, label="tokens / min (right)")
        handles.append(line)
        t_peak = float(ys.max() * scale)
        if t_steps is not None:
            (line,) = twin.step(
                *t_steps, where="post", color=_TOKENS, lw=3, alpha=0.5, label="server tpm limit (right)"
            )
            handles.append(line)
            t_peak = max(t_peak, float(np.nanmax([*t_steps[1], 0.0])))
        elif tpm is not None:
            handles.append(
                twin.axhline(tpm, color=_TOKENS, lw=3, alpha=0.5, label=f"limit {_fmt(tpm)} tpm (right)")
            )
            t_peak = max(t_peak, tpm)
        twin.set_ylabel("tokens / min", color=_TOKENS)
        twin.tick_params(axis="y", colors=_TOKENS)
        if rpm and tpm:
            # One scale for both: the limit lines coincide, so the closer line is the binding limit.
            ratio = tpm / rpm
            top = max(peak, t_peak / ratio) * 1.15
            ax.set_ylim(0, top)
            twin.set_ylim(0, top * ratio)
        else:
            ax.set_ylim(0, peak * 1.15 or 1.0)
            twin.set_ylim(0, t_peak * 1.15 or 1.0)
        # Keep the request lines above the token line.
        ax.set_zorder(twin.get_zorder() + 1)
        ax.patch.set_visible(False)
    else:
        ax.set_ylim(0, peak * 1.15 or 1.0)
    ax.set_xlim(t0, t1)
    ax.grid(alpha=0.3)
    _legend(ax, handles, legend, twin=twin)
    return ax


# ---------------------------------------------------------------------------------------------- in flight
def _count(
    starts: NDArray[np.float64], ends: NDArray[np.float64], grid: NDArray[np.float64]
) -> NDArray[np.float64]:
    """How many intervals ``[start, end)`` contain each grid time."""
    begun = np.searchsorted(np.sort(starts), grid, side="right")
    over = np.searchsorted(np.sort(ends), grid, side="right")
    return (begun - over).astype(float)


def in_flight(
    trace: Trace,
    ax: Axes | None = None,
    *,
    cap: float | None = None,
    waiting: bool = True,
    legend: bool = True,
    title: str | None = None,
) -> Axes:
    """How many requests are in flight at each moment, against the concurrency cap.

    ``cap`` defaults to the client's cap from the trace's ``meta`` (``meta["client"]["max_concurrent"]``);
    the server's cap (``meta["server"]["max_concurrent"]``) is drawn too when there is one.  With
    ``waiting=True`` a grey area on a right-hand axis shows how many had arrived and were waiting (queued
    or backing off) -- the queue that builds up when the limits bind.
    """
    ax = _new_axes(ax, (10, 3.5))
    ax.set_title(_title(trace, "In flight", title), fontsize="medium")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("in flight")
    run = _read(trace)
    if not run.requests:
        _nothing(ax, "no requests in this trace")
        return ax
    spans = [(s, b) for r in run.requests for s, b in r.attempts]
    t0, t1 = run.start, max(run.end, run.start + 1e-3)
    starts = np.array([s for s, _ in spans], dtype=float)
    ends = np.array([t1 + 1.0 if math.isnan(b) else b for _, b in spans], dtype=float)
    alive_starts = np.array([r.start for r in run.requests], dtype=float)
    alive_ends = np.array([r.end if r.end is not None else t1 + 1.0 for r in run.requests], dtype=float)
    grid = np.unique(np.concatenate([starts, ends, alive_starts, alive_ends, [t0, t1]]))
    grid = grid[(grid >= t0) & (grid <= t1)]
    flying = _count(starts, ends, grid)
    handles: list[Artist] = []
    twin: Axes | None = None
    if waiting:
        queued = np.maximum(_count(alive_starts, alive_ends, grid) - flying, 0.0)
        twin = ax.twinx()
        area = twin.fill_between(
            grid, queued, step="post", color=_WAITING, alpha=0.35, lw=0, label="waiting (right)"
        )
        handles.append(area)
        twin.set_ylabel("waiting", color="#666666")
        twin.tick_params(axis="y", colors="#666666")
        twin.set_ylim(0, float(queued.max()) * 1.12 or 1.0)
        twin.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_zorder(twin.get_zorder() + 1)  # the in-flight line above the grey area
        ax.patch.set_visible(False)
    label = "in flight" if run.has_client else "held"
    (line,) = ax.step(grid, flying, where="post", color=_IN_FLIGHT, lw=1.8, label=label)
    handles.append(line)
    top = float(flying.max()) if flying.size else 0.0
    cap = cap if cap is not None else _client_cap(trace)
    server_cap = _meta_limit(trace, "max_concurrent")
    if cap is not None:
        handles.append(ax.axhline(cap, color=_LIMIT, lw=1.3, ls="--", label=f"cap {_fmt(cap)}"))
        top = max(top, cap)
    if server_cap is not None and server_cap != cap:
        handles.append(
            ax.axhline(server_cap, color=_LIMITED, lw=1.3, ls=":", label=f"server cap {_fmt(server_cap)}")
        )
        top = max(top, server_cap)
    ax.set_ylim(0, top * 1.12 or 1.0)
    ax.set_xlim(t0, t1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    _legend(ax, handles, legend, twin=twin)
    return ax


# ---------------------------------------------------------------------------------------------- level
def _level_series(
    trace: Trace, source: str | None
) -> tuple[str | None, dict[str, list[tuple[float, float]]]]:
    """The numeric details of one limiter's grants (its level), by key, as ``(t, value)`` pairs."""
    by_source: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for event in trace:
        if event.kind != "granted" or (source is not None and event.source != source):
            continue
        series = by_source.setdefault(event.source, {})
        for key, value in event.detail.items():
            if key == "waited" or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            series.setdefault(key, []).append((event.t, float(value)))
    for name, series in by_source.items():
        if series:
            return name, series
    return source, {}


def level(
    trace: Trace, source: str | None = None, ax: Axes | None = None, *, title: str | None = None
) -> Axes:
    """A limiter's level read at every grant: bucket tokens, window occupancy, slots in use.

    Limiters report their level with each ``granted`` event (``tokens``, ``in_window``, ``estimate``,
    ``in_use``; the Throttler ``requests_left`` and ``tokens_left``).  ``source`` picks the limiter
    (default: the first one in the trace that reports a level).  Tokens go on a right-hand axis, so a
    requests bucket and a tokens bucket are both readable.  Each point is the level just after a grant;
    between grants a bucket refills (or a window slides), so read the line as its low points.
    """
    ax = _new_axes(ax, (10, 3.5))
    name, series = _level_series(trace, source)
    design = trace.meta.get("design")
    what = "Limiter level" + (f" ({name})" if name and name != design else "")
    ax.set_title(_title(trace, what, title), fontsize="medium")
    ax.set_xlabel("time (s)")
    if not series:
        ax.set_ylabel("level")
        hint = f" for {source!r}" if source else ""
        _nothing(ax, f"no limiter level recorded{hint}\n(no granted events with a level)")
        return ax
    # A key that is zero throughout says nothing (in_flight without a cap); in-flight counts have their
    # own plot, so they are shown here only when nothing else is.
    shown = {k: v for k, v in series.items() if any(value != 0 for _, value in v)} or series
    if len(shown) > 1:
        shown.pop("in_flight", None)
    colours = [
        OKABE_ITO["blue"],
        OKABE_ITO["bluish_green"],
        OKABE_ITO["reddish_purple"],
        OKABE_ITO["sky_blue"],
    ]
    handles: list[Artist] = []
    left_keys = [k for k in shown if k != "tokens_left"]
    for i, key in enumerate(left_keys):
        points = shown[key]
        (line,) = ax.plot(
            [t for t, _ in points],
            [v for _, v in points],
            color=colours[i % len(colours)],
            lw=1.4,
            marker="o",
            ms=2.5,
            label=_LEVEL_LABELS.get(key, key),
        )
        handles.append(line)
    if len(left_keys) == 1:
        ax.set_ylabel(_LEVEL_LABELS.get(left_keys[0], left_keys[0]))
    elif left_keys:
        ax.set_ylabel("requests")
    twin: Axes | None = None
    if "tokens_left" in shown:
        target = twin = ax.twinx() if left_keys else ax
        points = shown["tokens_left"]
        (line,) = target.plot(
            [t for t, _ in points],
            [v for _, v in points],
            color=_TOKENS,
            lw=1.4,
            marker="o",
            ms=2.5,
            label=_LEVEL_LABELS["tokens_left"] + (" (right)" if left_keys else ""),
        )
        handles.append(line)
        target.set_ylabel("tokens left in bucket", color=_TOKENS)
        target.tick_params(axis="y", colors=_TOKENS)
        target.set_ylim(min(0.0, *(v for _, v in points)), max(v for _, v in points) * 1.1 or 1.0)
        if twin is ax:
            twin = None
    if left_keys:
        values = [v for k in left_keys for _, v in shown[k]]
        ax.set_ylim(min(0.0, *values), max(values) * 1.1 or 1.0)
    ax.set_xlim(trace.start, max(trace.end, trace.start + 1e-3))
    ax.grid(alpha=0.3)
    _legend(ax, handles, True, twin=twin)
    return ax


# ---------------------------------------------------------------------------------------------- waits
def waits(trace: Trace, ax: Axes | None = None, *, bins: int = 30, title: str | None = None) -> Axes:
    """How long requests waited before they were first sent: a histogram with the p50 and p99 marked.

    For a client trace a request's wait runs from its arrival to its first send (see
    :attr:`Span.wait <throttle_lab.Span.wait>`); for a bare limiter it is each grant's ``waited``.
    """
    ax = _new_axes(ax, (7, 3.5))
    ax.set_title(_title(trace, "Wait before sending", title), fontsize="medium")
    ax.set_xlabel("wait (s)")
    ax.set_ylabel("requests")
    values = [w for span in trace.spans() if (w := span.wait) is not None]
    if not values:
        values = [float(e.detail["waited"]) for e in trace if e.kind == "granted" and "waited" in e.detail]
    if not values:
        _nothing(ax, "no requests in this trace")
        return ax
    p50, p99 = percentile(values, 50), percentile(values, 99)
    top = max(values)
    edges = np.linspace(0.0, top if top > 0 else 1.0, bins + 1).tolist()
    ax.hist(values, bins=edges, color=_IN_FLIGHT, alpha=0.85, edgecolor="white", lw=0.5, label="requests")
    ax.axvline(p50, color=_LIMIT, lw=1.5, ls="--", label=f"p50 {p50:.2f} s")
    ax.axvline(p99, color=_LIMITED, lw=1.5, ls=":", label=f"p99 {p99:.2f} s")
    ax.set_xlim(left=0)
    ax.grid(axis="y", alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    _legend(ax, handles, True)
    return ax


# ---------------------------------------------------------------------------------------------- figures
def dashboard(
    trace: Trace,
    *,
    window: float = 60.0,
    max_rows: int = 200,
    cap: float | None = None,
    waiting: bool = False,
    figsize: tuple[float, float] = (11.0, 8.0),
    layout: Literal["constrained", "fixed"] = "constrained",
) -> Figure:
    """Timeline, rates and in-flight count of one run, stacked on a shared time axis.

    ``waiting=True`` adds the queue length to the in-flight panel (the timeline shows it already).
    ``layout="fixed"`` uses fixed margins instead of matplotlib's constrained layout: about a third
    faster to draw, which the slider labs use to stay responsive.
    """
    fig, axes = plt.subplots(
        3,
        1,
        figsize=figsize,
        sharex=True,
        height_ratios=[3.0, 1.5, 1.2],
        layout="constrained" if layout == "constrained" else None,
    )
    heading = trace.meta.get("design")
    config = _describe(trace)
    fig.suptitle(" — ".join(str(p) for p in (heading, config) if p) or "Run", fontsize="large")
    timeline(trace, axes[0], max_rows=max_rows, title="Requests")
    rates(trace, axes[1], window=window, title="Rates")
    in_flight(trace, axes[2], cap=cap, waiting=waiting, title="In flight")
    for ax in axes[:-1]:
        ax.set_xlabel("")
    if layout == "fixed":
        width, height = fig.get_size_inches()
        twins = len(fig.axes) > len(axes)  # a right-hand axis pushes the legends further out
        right = 2.0 + (0.9 if twins else 0.0)
        fig.subplots_adjust(
            left=0.95 / width,
            right=1 - right / width,
            top=1 - 0.75 / height,
            bottom=0.6 / height,
            hspace=0.45,
        )
    return fig


def _named_traces(
    runs: Comparison | Mapping[str, Trace] | Sequence[Trace],
) -> tuple[dict[str, Trace], dict[str, Summary], float | None]:
    if hasattr(runs, "traces") and hasattr(runs, "summaries"):
        return dict(runs.traces), dict(runs.summaries), getattr(runs, "limit_per_minute", None)
    if isinstance(runs, Mapping):
        traces = dict(runs)
    else:
        traces = {}
        for i, trace in enumerate(runs):
            name = str(trace.meta.get("design") or f"run {i + 1}")
            while name in traces:
                name += "'"
            traces[name] = trace
    first = next(iter(traces.values()), None)
    limit = _meta_limit(first, "rpm") if first is not None else None
    return traces, {name: t.summary(limit) for name, t in traces.items()}, limit


def race(
    runs: Comparison | Mapping[str, Trace] | Sequence[Trace],
    *,
    window: float = 60.0,
    max_rows: int = 100,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Several designs on the same traffic, one row each (timeline | rates), on one time axis.

    ``runs`` is a :class:`~throttle_lab.lab.experiments.Comparison` (from ``compare``), a mapping of names to
    traces, or a list of traces (named by their ``meta["design"]``).  Every panel shares the time axis and
    the rates panels share their scale, so the rows compare at a glance.  A table underneath holds each
    design's summary: completed, failed, 429s, retries, makespan, achieved rate and waits.
    """
    traces, summaries, _ = _named_traces(runs)
    n = max(len(traces), 1)
    table_height = 0.3 * (n + 1) + 0.3
    fig = plt.figure(figsize=figsize or (14.0, 2.8 * n + table_height + 0.8), layout="constrained")
    grid = fig.add_gridspec(n + 1, 2, width_ratios=[1.3, 1.0], height_ratios=[2.8] * n + [table_height])
    first = next(iter(traces.values()), Trace())
    fig.suptitle(
        title or "Race on the same traffic — " + (_describe(first) or "designs compared"), fontsize="large"
    )
    if not traces:
        _nothing(fig.add_subplot(grid[:, :]), "no runs to compare")
        return fig
    shared: Axes | None = None
    rate_axes: list[Axes] = []
    tops: list[float] = []
    legends: tuple[dict[str, Artist], dict[str, Artist]] = ({}, {})
    for row, (name, trace) in enumerate(traces.items()):
        ax_t = fig.add_subplot(grid[row, 0], sharex=shared)
        shared = shared or ax_t
        ax_r = fig.add_subplot(grid[row, 1], sharex=shared, sharey=rate_axes[0] if rate_axes else None)
        timeline(trace, ax_t, max_rows=max_rows, title=f"{name}: requests")
        rates(trace, ax_r, window=window, title=f"{name}: rates")
        tops.append(ax_r.get_ylim()[1])
        rate_axes.append(ax_r)
        # One legend per column, holding every mark any row used.
        for ax, seen in ((ax_t, legends[0]), (ax_r, legends[1])):
            legend = ax.get_legend()
            if legend is None:
                continue
            for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=False):
                label = re.sub(r" \(\d+\)$", "", text.get_text())
                if handle is not None and label not in seen:
                    handle.set_label(label)
                    seen[label] = handle
            legend.remove()
        if row < n - 1:
            ax_t.set_xlabel("")
            ax_r.set_xlabel("")
    assert shared is not None  # there was at least one run
    for ax, seen in zip((shared, rate_axes[0]), legends, strict=True):
        _legend(ax, list(seen.values()), True)
    rate_axes[0].set_ylim(0, max(tops))
    start = min((t.start for t in traces.values() if len(t)), default=0.0)
    end = max((t.end for t in traces.values() if len(t)), default=1.0)
    span = max(end - start, 1e-3)
    shared.set_xlim(start - 0.01 * span, end + 0.02 * span)

    table_ax = fig.add_subplot(grid[n, :])
    table_ax.axis("off")
    columns = ["design", "completed", "failed", "429s", "retries", "makespan (s)", "per min"]
    columns += ["p50 wait (s)", "p99 wait (s)"]
    cells = [
        [
            name,
            f"{s.completed}/{s.requests}",
            str(s.failed + s.rejected),
            str(s.rate_limited),
            str(s.retries),
            f"{s.makespan:.1f}",
            f"{s.achieved_per_minute:.1f}",
            f"{s.wait_p50:.2f}",
            f"{s.wait_p99:.2f}",
        ]
        for name, s in summaries.items()
    ]
    table = table_ax.table(cellText=cells, colLabels=columns, loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1.0, 1.2)
    for (r, _), cell in table.get_celld().items():
        if r == 0:
            cell.set_text_props(weight="bold")
            cell.set_facecolor("#eeeeee")
    return fig


# ---------------------------------------------------------------------------------------------- examples
def save_examples(directory: str | Path = "docs", *, dpi: int = 100) -> list[Path]:
    """Write one example PNG per plot into ``directory`` (what the README shows); returns the paths."""
    from .experiments import Workload, compare, simulate

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    brownout = {
        "rpm": 120,
        "tpm": 24_000,
        "window": 10,
        "limit_schedule": ((60.0, 40, 8_000), (120.0, 120, 24_000)),
    }
    article = simulate("article", Workload(requests=60, seed=1), {"rpm": 30, "window": 10})
    throttler = simulate(
        "throttler",
        Workload(requests=400, arrival="poisson", per_minute=150, seed=2),
        {"rpm": 100, "tpm": 30_000, "window": 10},
        max_concurrent=8,
    )
    adaptive = simulate(
        "adaptive", Workload(requests=300, arrival="steady", per_minute=150, seed=3), brownout
    )
    semaphore = simulate(
        "semaphore",
        Workload(requests=120, arrival="bursts", per_minute=120, burst_size=30, seed=4),
        {"rpm": 120, "window": 10, "max_concurrent": 6, "ttft": 1.0},
        max_concurrent=5,
    )
    races = compare(
        ["unthrottled", "article", "throttler", "adaptive"],
        Workload(requests=80, seed=5),
        {"rpm": 40, "window": 10},
    )
    drawings: list[tuple[str, Any]] = [
        ("timeline.png", lambda: timeline(article).figure),
        ("rates.png", lambda: rates(adaptive, window=10).figure),
        ("in_flight.png", lambda: in_flight(semaphore, cap=5).figure),
        ("level.png", lambda: level(throttler).figure),
        ("race.png", lambda: race(races)),
        ("waits.png", lambda: waits(throttler).figure),
        ("dashboard.png", lambda: dashboard(throttler, cap=8)),
    ]
    paths = []
    for name, draw in drawings:
        fig = draw()
        path = out / name
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        paths.append(path)
    return paths


def _main(argv: Iterable[str]) -> int:
    args = list(argv)
    plt.switch_backend("agg")
    for path in save_examples(args[0] if args else "docs"):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
