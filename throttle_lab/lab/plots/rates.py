"""Rates: requests (and tokens) per minute over a rolling window, against the server's limit lines."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .drawing import (
    ACCEPTED,
    IN_FLIGHT,
    LIMIT,
    LIMITED,
    REJECTED,
    TOKENS,
    new_axes,
    outside_legend,
    panel_title,
    show_empty,
)
from .model import format_number, schedule_steps, server_limit

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from numpy.typing import NDArray

    from ...core.trace import Trace


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
    ax = new_axes(ax, (10, 4))
    ax.set_title(panel_title(trace, "Rates", title), fontsize="medium")
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

    rpm = rpm if rpm is not None else server_limit(trace, "rpm")
    steps = schedule_steps(trace, "rpm", t1)
    if steps is not None:
        (line,) = ax.step(*steps, where="post", color=LIMIT, lw=1.3, ls="--", label="server rpm limit")
        handles.append(line)
        peak = max(peak, float(np.nanmax([*steps[1], 0.0])))
    elif rpm is not None:
        handles.append(ax.axhline(rpm, color=LIMIT, lw=1.3, ls="--", label=f"limit {format_number(rpm)} rpm"))
        peak = max(peak, rpm)

    rate_limited = [e.t for e in trace if e.kind == "429" and e.source != "server"]
    if not rate_limited:
        rate_limited = [e.t for e in trace if e.kind == "limited" and e.source == "server"]
    if rate_limited:
        handles.append(_rug(ax, rate_limited, f"429 ({len(rate_limited)})"))

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
        if t_steps is not None:
            (line,) = twin.step(
                *t_steps, where="post", color=TOKENS, lw=3, alpha=0.5, label="server tpm limit (right)"
            )
            handles.append(line)
            t_peak = max(t_peak, float(np.nanmax([*t_steps[1], 0.0])))
        elif tpm is not None:
            handles.append(
                twin.axhline(
                    tpm, color=TOKENS, lw=3, alpha=0.5, label=f"limit {format_number(tpm)} tpm (right)"
                )
            )
            t_peak = max(t_peak, tpm)
        twin.set_ylabel("tokens / min", color=TOKENS)
        twin.tick_params(axis="y", colors=TOKENS)
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
    outside_legend(ax, handles, legend, twin=twin)
    return ax


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


def _rug(ax: Axes, times: Sequence[float], label: str) -> Artist:
    """429s as a row of crosses along the bottom edge of the axes (x in data, y in axes units)."""
    (markers,) = ax.plot(
        times,
        [0.025] * len(times),
        ls="none",
        marker="x",
        ms=6,
        mew=1.5,
        color=LIMITED,
        transform=ax.get_xaxis_transform(),
        clip_on=False,
        zorder=5,
        label=label,
    )
    return markers
