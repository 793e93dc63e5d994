"""In flight: how many requests are out at once, against the concurrency caps, and the queue behind them."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.ticker import MaxNLocator

from .drawing import (
    IN_FLIGHT,
    LIMITED,
    WAITING,
    limit_line,
    new_axes,
    outside_legend,
    panel_title,
    set_title,
    show_empty,
)
from .model import client_cap, format_number, read_run, server_limit
from .ticks import ticks_in_view

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from numpy.typing import NDArray

    from ...core.trace import Trace


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
    or backing off) -- the queue that builds up when the limits bind.  The legend lists the line, the caps
    and the queue; a legend that would hold the line alone, named as the axis is, is left out.
    """
    ax = new_axes(ax, (10, 3.5))
    set_title(ax, panel_title(trace, "In flight", title))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("in flight")
    run = read_run(trace)
    if not run.requests:
        show_empty(ax, "no requests in this trace")
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
            grid, queued, step="post", color=WAITING, alpha=0.35, lw=0, label="waiting (right)"
        )
        handles.append(area)
        twin.set_ylabel("waiting", color="#666666")
        twin.tick_params(axis="y", colors="#666666")
        twin.set_ylim(0, float(queued.max()) * 1.12 or 1.0)
        twin.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_zorder(twin.get_zorder() + 1)  # the in-flight line above the grey area
        ax.patch.set_visible(False)
    label = "in flight" if run.has_client else "held"
    (line,) = ax.step(grid, flying, where="post", color=IN_FLIGHT, lw=1.8, label=label)
    handles.append(line)
    top = float(flying.max()) if flying.size else 0.0
    cap = cap if cap is not None else client_cap(trace)
    server_cap = server_limit(trace, "max_concurrent")
    # Caps above the data and labelled: a client that fills its slots runs exactly along its cap.
    if cap is not None:
        handles.append(limit_line(ax, cap, f"cap {format_number(cap)}"))
        top = max(top, cap)
    if server_cap is not None and server_cap != cap:
        label = f"server cap {format_number(server_cap)}"
        handles.append(limit_line(ax, server_cap, label, color=LIMITED, ls=":", side="right"))
        top = max(top, server_cap)
    ax.set_ylim(0, top * 1.12 or 1.0)
    ax.set_xlim(t0, t1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ticks_in_view(ax, twin)
    # A legend that would only repeat the axis label ("in flight", no cap, no queue) tells nothing.
    alone = len(handles) == 1 and handles[0].get_label() == ax.get_ylabel()
    outside_legend(ax, handles, legend and not alone, twin=twin)
    return ax


def _count(
    starts: NDArray[np.float64], ends: NDArray[np.float64], grid: NDArray[np.float64]
) -> NDArray[np.float64]:
    """How many intervals ``[start, end)`` contain each grid time."""
    begun = np.searchsorted(np.sort(starts), grid, side="right")
    over = np.searchsorted(np.sort(ends), grid, side="right")
    return (begun - over).astype(float)
