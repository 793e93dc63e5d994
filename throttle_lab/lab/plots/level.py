"""Level: what a limiter has left (bucket tokens, window occupancy, slots in use), read at every grant."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .drawing import (
    OKABE_ITO,
    TOKENS,
    limit_line,
    new_axes,
    outside_legend,
    panel_title,
    set_title,
    show_empty,
)
from .model import format_number
from .ticks import ticks_in_view

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes

    from ...core.trace import Trace

# How each key a limiter reports with its grants is named on the axis and in the legend.
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


def level(
    trace: Trace,
    source: str | None = None,
    ax: Axes | None = None,
    *,
    title: str | None = None,
    limit: float | None = None,
) -> Axes:
    """A limiter's level read at every grant: bucket tokens, window occupancy, slots in use.

    Limiters report their level with each ``granted`` event (``tokens``, ``in_window``, ``estimate``,
    ``in_use``; the Throttler ``requests_left`` and ``tokens_left``).  ``source`` picks the limiter
    (default: the first one in the trace that reports a level).  Tokens go on a right-hand axis, so a
    requests bucket and a tokens bucket are both readable.  Each point is the level just after a grant;
    between grants a bucket refills (or a window slides), so read the line as its low points.

    ``limit`` draws the limiter's limit on the left axis (a window's ``max_requests``, a bucket's
    capacity) -- above the level line, on a pale band and labelled, because a sliding log at its limit runs
    exactly along it and would otherwise hide it.
    """
    ax = new_axes(ax, (10, 3.5))
    name, series = _level_series(trace, source)
    design = trace.meta.get("design")
    what = "Limiter level" + (f" ({name})" if name and name != design else "")
    set_title(ax, panel_title(trace, what, title))
    ax.set_xlabel("time (s)")
    if not series:
        ax.set_ylabel("level")
        hint = f" for {source!r}" if source else ""
        show_empty(ax, f"no limiter level recorded{hint}\n(no granted events with a level)")
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
            color=TOKENS,
            lw=1.4,
            marker="o",
            ms=2.5,
            label=_LEVEL_LABELS["tokens_left"] + (" (right)" if left_keys else ""),
        )
        handles.append(line)
        target.set_ylabel("tokens left in bucket", color=TOKENS)
        target.tick_params(axis="y", colors=TOKENS)
        target.set_ylim(min(0.0, *(v for _, v in points)), max(v for _, v in points) * 1.1 or 1.0)
        if twin is ax:
            twin = None
    if limit is not None:
        handles.append(limit_line(ax, limit, f"limit {format_number(limit)}"))
    if left_keys or limit is not None:
        # Everything drawn on the left axis fits: its levels, the limit, and tokens when they are alone.
        keys = left_keys or [k for k in shown if k == "tokens_left"]
        values = [v for k in keys for _, v in shown[k]] + ([limit] if limit is not None else [])
        ax.set_ylim(min(0.0, *values), max(values) * 1.1 or 1.0)
    ax.set_xlim(trace.start, max(trace.end, trace.start + 1e-3))
    ax.grid(alpha=0.3)
    ticks_in_view(ax, twin)
    outside_legend(ax, handles, True, twin=twin)
    return ax


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
