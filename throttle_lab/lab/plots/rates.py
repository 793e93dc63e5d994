"""Rates: requests (and tokens) per minute over a rolling window, against the server's limit lines."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.ticker import MaxNLocator

from .drawing import (
    ACCEPTED,
    IN_FLIGHT,
    OKABE_ITO,
    REJECTED,
    TOKENS,
    axes_size_points,
    count_rug,
    limit_line,
    new_axes,
    outside_legend,
    panel_title,
    set_title,
    show_empty,
)
from .model import format_number, schedule_steps, server_limit
from .ticks import ticks_in_view

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from numpy.typing import NDArray

    from ...core.trace import Trace

# Colours for extra curves (a controller's rate, ...): none of them means anything else in the rates panel.
_CURVE_COLOURS = (OKABE_ITO["reddish_purple"], OKABE_ITO["sky_blue"], OKABE_ITO["yellow"])


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
    curves: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    align_limits: bool = False,
) -> Axes:
    """Requests per minute over a rolling ``window`` (and tokens per minute) against the limit lines.

    Blue: every attempt the client sent (retries included -- the server counts them).  Green dashed:
    what the server accepted, where the trace has its events.  Purple dotted: requests a client-side
    throttle refused at home (they never reached the server).  Black dashed: the request limit, from
    ``rpm`` or the trace's ``meta`` (a step line when the server's limits change on a schedule), drawn
    above the data on a pale band and labelled where it is, so a curve running exactly at the limit (a
    sliding log) never hides it.  Red crosses along the bottom: 429 answers; crosses that would overlap are
    merged into one, and the number above a cross says how many 429s it stands for.

    Orange, on the right-hand axis: tokens per minute the server charged, against the ``tpm`` limit
    (orange dotted, labelled at the right end, next to its axis).  ``tokens=None`` draws them when the
    trace carries token weights *and* a tokens limit is known; ``tokens=True`` whenever it carries weights.
    Read each curve against its own limit line -- blue against black, orange against orange: the one that
    runs along its line is the limit that binds.  When both limits are known the tokens axis is scaled so
    the two limit lines sit at least an eighth of the panel apart: two limits on one pixel row cannot be
    told apart.  ``align_limits=True`` does the opposite on purpose, one scale for both (``tpm / rpm``
    tokens per request) so the two lines coincide and whichever curve gets closer to that one line binds;
    their labels (requests on the left, tokens on the right) then say which number is which.

    ``curves`` adds step curves in requests per minute, by legend label: ``(time, value)`` points, each
    value held until the next point and to the end of the trace -- an adaptive controller's rate, say
    (``{"AIMD rate": [(t, r * 60) for t, r in aimd.history]}``).  The y-limits always include them.

    The rolling amount at ``t`` is what was sent in ``(t - window, t]``, scaled to a minute; it is drawn
    exactly (as a step line), so a burst above the limit is never smoothed away.
    """
    if not window > 0:
        raise ValueError(f"window must be positive, got {window!r}")
    ax = new_axes(ax, (10, 4))
    set_title(ax, panel_title(trace, "Rates", title))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("requests / min" + (f" (rolling {window:g} s)" if window != 60 else ""))
    sent = [e for e in trace if e.kind == "sent" and e.source != "server"]
    if not sent:
        sent = [e for e in trace if e.kind == "arrived" and e.source == "server"]
    if not sent:
        show_empty(ax, "no requests in this trace")
        return ax
    t0, t1 = trace.start, trace.end
    if t1 <= t0:
        t1 = t0 + 1.0
    scale = 60.0 / window
    handles: list[Artist] = []

    times = np.array([e.t for e in sent], dtype=float)
    xs, ys = _rolling(times, np.ones_like(times), window, t0, t1)
    (line,) = ax.step(xs, ys * scale, where="post", color=IN_FLIGHT, lw=1.8, label="sent (all attempts)")
    handles.append(line)
    peak = float(ys.max() * scale)
    accepted = [e for e in trace if e.kind == "accepted" and e.source == "server"]
    if accepted and any(e.source != "server" for e in sent):
        a_times = np.array([e.t for e in accepted], dtype=float)
        xs, ys = _rolling(a_times, np.ones_like(a_times), window, t0, t1)
        (line,) = ax.step(
            xs, ys * scale, where="post", color=ACCEPTED, lw=1.6, ls="--", label="accepted by server"
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
            color=REJECTED,
            lw=1.4,
            ls=":",
            label=f"refused at home ({len(refused)})",
        )
        handles.append(line)
        peak = max(peak, float(ys.max() * scale))

    for i, (name, points) in enumerate((curves or {}).items()):
        if not points:
            continue
        c_times = [float(t) for t, _ in points] + [max(t1, float(points[-1][0]))]
        values = [float(v) for _, v in points]
        (line,) = ax.step(
            c_times, [*values, values[-1]], where="post", color=_CURVE_COLOURS[i % 3], lw=2.0, label=name
        )
        handles.append(line)
        peak = max(peak, float(np.nanmax([*values, 0.0])))
        t1 = max(t1, c_times[-2])

    rpm = rpm if rpm is not None else server_limit(trace, "rpm")
    steps = schedule_steps(trace, "rpm", t1)
    if steps is not None:
        first = next((v for v in steps[1] if math.isfinite(v)), math.nan)
        handles.append(limit_line(ax, first, "server rpm limit", steps=steps))
        peak = max(peak, float(np.nanmax([*steps[1], 0.0])))
    elif rpm is not None:
        handles.append(limit_line(ax, rpm, f"limit {format_number(rpm)} rpm"))
        peak = max(peak, rpm)

    rate_limited = [e.t for e in trace if e.kind == "429" and e.source != "server"]
    if not rate_limited:
        rate_limited = [e.t for e in trace if e.kind == "limited" and e.source == "server"]
    rug_at = len(handles)  # drawn once the x-limits are set (it groups crosses at the plot's resolution)

    # Tokens: what the server charged if it reported it, else the client's estimates.
    weighted = [e for e in accepted if e.weight > 1] or [e for e in sent if e.weight > 1]
    tpm = tpm if tpm is not None else server_limit(trace, "tpm")
    t_steps = schedule_steps(trace, "tpm", t1)
    if tokens is None:
        tokens = tpm is not None or (t_steps is not None and not all(map(math.isnan, t_steps[1])))
    twin: Axes | None = None
    if tokens and weighted:
        twin = ax.twinx()
        w_times = np.array([e.t for e in weighted], dtype=float)
        w = np.array([float(e.weight) for e in weighted], dtype=float)
        xs, ys = _rolling(w_times, w, window, t0, t1)
        (line,) = twin.step(xs, ys * scale, where="post", color=TOKENS, lw=1.2, label="tokens / min (right)")
        handles.append(line)
        t_peak = float(ys.max() * scale)
        # Dotted and orange, labelled at the right end, next to its axis: told apart from the request limit
        # by style, colour and side, even with ``align_limits`` where the two share one height.
        if t_steps is not None:
            first = next((v for v in t_steps[1] if math.isfinite(v)), math.nan)
            handles.append(
                limit_line(
                    twin,
                    first,
                    "server tpm limit (right)",
                    color=TOKENS,
                    ls=":",
                    lw=2.2,
                    steps=t_steps,
                    text="server tpm limit",
                    side="right",
                )
            )
            t_peak = max(t_peak, float(np.nanmax([*t_steps[1], 0.0])))
        elif tpm is not None:
            label = f"limit {format_number(tpm)} tpm"
            handles.append(
                limit_line(
                    twin, tpm, label + " (right)", color=TOKENS, ls=":", lw=2.2, text=label, side="right"
                )
            )
            t_peak = max(t_peak, tpm)
        twin.set_ylabel("tokens / min", color=TOKENS)
        twin.tick_params(axis="y", colors=TOKENS)
        # A few round numbers are enough on the secondary axis, about one per 45 points of height (each tick
        # also costs time at every redraw).
        nbins = max(2, min(5, int(axes_size_points(twin)[1] // 45)))
        twin.yaxis.set_major_locator(MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]))
        if align_limits and rpm and tpm:
            # One scale for both: the limit lines coincide, so the closer curve is the binding limit.
            ratio = tpm / rpm
            top = max(peak, t_peak / ratio) * 1.15
            ax.set_ylim(0, top)
            twin.set_ylim(0, top * ratio)
        else:
            ax.set_ylim(0, peak * 1.15 or 1.0)
            twin.set_ylim(0, t_peak * 1.15 or 1.0)
            if rpm and tpm:
                keep_limits_apart(ax, twin, rpm, tpm)
        # Keep the request lines above the token line.
        ax.set_zorder(twin.get_zorder() + 1)
        ax.patch.set_visible(False)
    else:
        ax.set_ylim(0, peak * 1.15 or 1.0)
    ax.set_xlim(t0, t1)
    if rate_limited:
        handles.insert(rug_at, count_rug(ax, rate_limited, f"429 ({len(rate_limited)})"))
    ax.grid(alpha=0.3)
    ticks_in_view(ax, twin)
    outside_legend(ax, handles, legend, twin=twin)
    return ax


def keep_limits_apart(ax: Axes, twin: Axes, rpm: float, tpm: float, *, gap: float = 0.12) -> None:
    """Rescale the tokens axis so its limit line sits at least ``gap`` of the panel from the request limit.

    Each axis is scaled to its own data, so the two limits can land on the same pixel row by chance -- and
    then neither can be read.  The tokens axis is stretched (its limit line moves down) or, when the request
    limit is already low, shrunk (the line moves up) as long as every token curve still fits.  Call it again
    after changing either axis' limits (a race gives all its rows one request scale).
    """
    top, t_top = ax.get_ylim()[1], twin.get_ylim()[1]
    if not (top > 0 and t_top > 0):
        return
    here, there = rpm / top, tpm / t_top
    if abs(here - there) >= gap:
        return
    highest = max(
        (float(np.nanmax(np.asarray(line.get_ydata(), dtype=float))) for line in twin.get_lines()),
        default=tpm,
    )
    for target in (here - gap, here + gap):
        if 0.08 <= target <= 0.92 and tpm / target >= highest * 1.03:
            twin.set_ylim(0, tpm / target)
            return


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
