"""The request timeline: one row per request, waiting and in flight, with every 429, retry and give-up."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator

from .drawing import (
    IN_FLIGHT,
    LIMITED,
    OKABE_ITO,
    REJECTED,
    RETRY_WAIT,
    SERVER,
    WAITING,
    axes_size_points,
    font_points,
    new_axes,
    outside_legend,
    panel_title,
    set_title,
    show_empty,
)
from .model import read_run
from .ticks import ticks_in_view

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes

    from ...core.trace import Trace


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

    Something that takes no time has no bar to draw: a bucket's grant (it holds nothing), or an answer that
    came back at once.  Those are a blue dot at their instant instead -- a request granted without waiting
    is a row with just a dot, never an empty row.  (An attempt answered at once *with a 429* already has
    its ``x``.)  The legend lists only what the picture shows.

    Rows are in order of first appearance, the first at the top.  With more than ``max_rows`` requests an
    evenly spaced subset is drawn (every k-th request), so thousands of requests stay readable and fast.
    Requests are named on the axis while their names fit one per row, else numbered.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows!r}")
    ax = new_axes(ax, (10, 5.5))
    set_title(ax, panel_title(trace, "Request timeline", title))
    ax.set_xlabel("time (s)")
    run = read_run(trace)
    n = len(run.requests)
    if n == 0:
        ax.set_ylabel("request")
        show_empty(ax, "no requests in this trace")
        return ax
    if n > max_rows:
        picked = sorted(set(np.linspace(0, n - 1, max_rows).round().astype(int).tolist()))
        shown = f"{len(picked)} of {n} shown"
        _fit_ylabel(ax, [f"request ({shown}, in order of arrival)", f"request\n({shown})", "request"])
    else:
        picked = list(range(n))
        _fit_ylabel(ax, ["request (in order of arrival)", "request\n(in order of arrival)", "request"])
    width_pt, height_pt = axes_size_points(ax)
    row_pt = height_pt / max(len(picked), 1)
    bar_lw = min(8.0, max(0.8, 0.7 * row_pt))
    thin_lw = min(1.6, max(0.4, 0.2 * row_pt))
    mark = min(7.0, max(2.5, 0.8 * row_pt))
    span = max(run.end - run.start, 1e-3)
    # An attempt shorter than half a point would be an invisible sliver: it becomes a dot instead.
    too_short = 0.5 * span / max(width_pt, 1.0)

    waiting: list[list[tuple[float, float]]] = []
    retry_waits: list[list[tuple[float, float]]] = []
    flying: list[list[tuple[float, float]]] = []
    instants: tuple[list[float], list[float]] = ([], [])
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
            if back - sent >= too_short:
                flying.append([(sent, y), (back, y)])
            elif not any(abs(t - back) < too_short for t in req.limited):  # a 429's x marks it already
                instants[0].append(sent)
                instants[1].append(y)
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
        ax.add_collection(LineCollection(waiting, colors=WAITING, linewidths=thin_lw, zorder=1))
        handles.append(Line2D([], [], color=WAITING, lw=1.5, label="waiting (queued)"))
    if retry_waits:
        ax.add_collection(
            LineCollection(retry_waits, colors=RETRY_WAIT, linewidths=thin_lw * 1.3, linestyles=":", zorder=1)
        )
        handles.append(Line2D([], [], color=RETRY_WAIT, lw=1.8, ls=":", label="waiting to retry"))
    if flying:
        ax.add_collection(
            LineCollection(flying, colors=IN_FLIGHT, linewidths=bar_lw, capstyle="butt", zorder=2)
        )
        handles.append(Line2D([], [], color=IN_FLIGHT, lw=5, label="in flight" if run.has_client else "held"))
    if instants[0]:
        at_once = "answered at once" if run.has_client else "granted (holds nothing)"
        ax.scatter(*_arrays(instants), marker="o", s=mark**2 * 0.6, color=IN_FLIGHT, linewidths=0, zorder=3)
        handles.append(Line2D([], [], color=IN_FLIGHT, marker="o", ls="none", ms=5, label=at_once))
    if arrived[0]:
        ax.scatter(*_arrays(arrived), marker="|", s=mark**2 * 0.5, color=SERVER, linewidths=1, zorder=3)
        handles.append(Line2D([], [], color=SERVER, marker="|", ls="none", ms=7, label="server: arrived"))
    if refused[0]:
        ax.scatter(*_arrays(refused), marker="v", s=mark**2 * 0.35, color=LIMITED, linewidths=0, zorder=3)
        handles.append(Line2D([], [], color=LIMITED, marker="v", ls="none", ms=5, label="server: limited"))
    if limited[0]:
        ax.scatter(*_arrays(limited), marker="x", s=mark**2, color=LIMITED, linewidths=1.3, zorder=4)
        handles.append(
            Line2D([], [], color=LIMITED, marker="x", ls="none", ms=7, mew=1.5, label="429 answer")
        )
    if failed[0]:
        ax.scatter(
            *_arrays(failed), marker="X", s=mark**2 * 1.2, color=OKABE_ITO["black"], linewidths=0, zorder=4
        )
        handles.append(Line2D([], [], color="black", marker="X", ls="none", ms=7, label="gave up"))
    if rejected[0]:
        ax.scatter(*_arrays(rejected), marker="s", s=mark**2 * 0.8, color=REJECTED, linewidths=0, zorder=4)
        handles.append(Line2D([], [], color=REJECTED, marker="s", ls="none", ms=6, label="refused locally"))

    ax.set_xlim(run.start - 0.01 * span, run.end + 0.02 * span)
    ax.set_ylim(n - 0.5, -0.9)  # first request at the top; room above it for the server's ticks
    # Names only while one fits per row (with a margin: the layout engine may still shrink the axes),
    # else neighbouring names overlap into an unreadable column.
    if n <= 25 and row_pt * 0.85 >= 1.1 * font_points("small"):
        ax.set_yticks(range(n), [str(r.request) for r in run.requests], fontsize="small")
    else:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{int(v) + 1}"))
    ax.grid(axis="x", alpha=0.3)
    ticks_in_view(ax)
    outside_legend(ax, handles, legend)
    return ax


def _fit_ylabel(ax: Axes, candidates: list[str]) -> None:
    """The longest of ``candidates`` (most to least detailed) whose lines fit the axes' height.

    A vertical label taller than its axes runs into the next panel's label (a race stacks several
    timelines).  Text widths are estimated (0.6 em a character) against 85 % of the height the
    axes has now, since a layout engine may still shrink it.
    """
    _, height = axes_size_points(ax)
    size = font_points(ax.yaxis.label.get_fontsize())
    for text in candidates:
        if max(len(line) for line in text.splitlines()) * 0.6 * size <= 0.85 * height:
            ax.set_ylabel(text)
            return
    ax.set_ylabel(candidates[-1])


def _arrays(points: tuple[list[float], list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """The marks' coordinates as arrays: ``scatter`` given plain lists checks every element for a mask
    (``numpy.ma``), which cost more than drawing the marks."""
    return np.asarray(points[0], dtype=float), np.asarray(points[1], dtype=float)
