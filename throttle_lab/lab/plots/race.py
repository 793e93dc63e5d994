"""The race: several designs on the same traffic, one row each (timeline | rates), and a summary table."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import matplotlib.pyplot as plt

from ...core.trace import Summary, Trace
from .drawing import (
    _right_reach_inches,
    legend_handles,
    margin_fractions,
    outside_legend,
    show_empty,
    text_height_inches,
    twin_of,
    x_axis_reach_inches,
    y_axis_reach_inches,
)
from .model import describe, server_limit
from .rates import keep_limits_apart, rates
from .timeline import timeline

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure
    from matplotlib.gridspec import GridSpec
    from matplotlib.text import Text

    from ..experiments import Comparison


def race(
    runs: Comparison | Mapping[str, Trace] | Sequence[Trace],
    *,
    window: float = 60.0,
    max_rows: int = 100,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    layout: Literal["constrained", "fixed"] = "constrained",
    table: bool = True,
) -> Figure:
    """Several designs on the same traffic, one row each (timeline | rates), on one time axis.

    ``runs`` is a :class:`~throttle_lab.lab.experiments.Comparison` (from ``compare``), a mapping of names to
    traces, or a list of traces (named by their ``meta["design"]``).  Every panel shares the time axis and
    the rates panels share their scale, so the rows compare at a glance.  A table underneath holds each
    design's summary: completed, failed, 429s, retries, makespan, achieved rate and waits
    (:func:`summary_cells`).  ``table=False`` leaves it out, for a caller that prints it next to the
    picture (the race lab does: 63 table cells are a sixth of drawing a race of six).

    ``layout="fixed"`` places the panels from a few measured widths (tick labels, axis labels, the two
    legends) instead of matplotlib's constrained layout, which measures every axes twice more: the
    slider lab's race draws about a third faster so.
    """
    traces, summaries, _ = _named_traces(runs)
    # Every label in the figure stays legible: the timelines shorten their axis label to fit a row, and
    # the rates' legend goes past the tokens axis of the first row instead of over its numbers.
    n = max(len(traces), 1)
    table_height = 0.3 * (n + 1) + 0.3
    fig = plt.figure(
        figsize=figsize or (14.0, 2.8 * n + (table_height if table else 0.3) + 0.8),
        layout="constrained" if layout == "constrained" else None,
    )
    heights = [2.8] * n + ([table_height] if table else [])
    grid = fig.add_gridspec(len(heights), 2, width_ratios=[1.3, 1.0], height_ratios=heights)
    first = next(iter(traces.values()), Trace())
    heading = fig.suptitle(
        title or "Race on the same traffic — " + (describe(first) or "designs compared"), fontsize="large"
    )
    if not traces:
        show_empty(fig.add_subplot(grid[:, :]), "no runs to compare")
        return fig
    shared: Axes | None = None
    rate_axes: list[Axes] = []
    tops: list[float] = []
    # Rows with a tokens axis and both limits: once the rows share one request scale, their two limit lines
    # are kept apart again (the shared scale can move the request limit onto the tokens limit).
    limited: list[tuple[Axes, Axes, float, float]] = []
    legends: tuple[dict[str, Artist], dict[str, Artist]] = ({}, {})
    for row, (name, trace) in enumerate(traces.items()):
        ax_t = fig.add_subplot(grid[row, 0], sharex=shared)
        shared = shared or ax_t
        ax_r = fig.add_subplot(grid[row, 1], sharex=shared, sharey=rate_axes[0] if rate_axes else None)
        # No legend per panel: one per column is drawn below, from what every row would have listed.
        timeline(trace, ax_t, max_rows=max_rows, title=f"{name}: requests", legend=False)
        rates(trace, ax_r, window=window, title=f"{name}: rates", legend=False)
        tops.append(ax_r.get_ylim()[1])
        rate_axes.append(ax_r)
        twin = twin_of(ax_r)
        rpm, tpm = server_limit(trace, "rpm"), server_limit(trace, "tpm")
        if twin is not None and rpm and tpm:
            limited.append((ax_r, twin, rpm, tpm))
        # One legend per column, holding every mark any row used (without a row's own count: "429 (12)").
        for ax, seen in ((ax_t, legends[0]), (ax_r, legends[1])):
            for handle in legend_handles(ax):
                seen.setdefault(re.sub(r" \(\d+\)$", "", str(handle.get_label())), handle)
        if row < n - 1:
            ax_t.set_xlabel("")
            ax_r.set_xlabel("")
    assert shared is not None  # there was at least one run
    top = max(tops)
    rate_axes[0].set_ylim(0, top)
    for ax_r, twin, rpm, tpm in limited:
        keep_limits_apart(ax_r, twin, rpm, tpm)
    for ax, seen, twin in ((shared, legends[0], None), (rate_axes[0], legends[1], twin_of(rate_axes[0]))):
        outside_legend(ax, list(seen.values()), True, twin=twin, labels=list(seen))
    start = min((t.start for t in traces.values() if len(t)), default=0.0)
    end = max((t.end for t in traces.values() if len(t)), default=1.0)
    span = max(end - start, 1e-3)
    shared.set_xlim(start - 0.01 * span, end + 0.02 * span)

    if table:
        _summary_table(fig.add_subplot(grid[n, :]), summaries)
    if layout == "fixed":
        _fix_layout(fig, grid, rate_axes, heading, table=table)
    return fig


#: The columns of the race's summary (:func:`summary_cells`).
SUMMARY_COLUMNS = (
    "design",
    "completed",
    "failed",
    "429s",
    "retries",
    "makespan (s)",
    "per min",
    "p50 wait (s)",
    "p99 wait (s)",
)


def summary_cells(summaries: Mapping[str, Summary]) -> list[list[str]]:
    """One row per design, in :data:`SUMMARY_COLUMNS`: what the race's table shows (and the lab prints)."""
    return [
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


def _summary_table(ax: Axes, summaries: Mapping[str, Summary]) -> None:
    """The summary as a table filling ``ax``: bold column names on grey, one row per design."""
    ax.axis("off")
    table = ax.table(
        cellText=summary_cells(summaries), colLabels=SUMMARY_COLUMNS, loc="center", cellLoc="center"
    )
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1.0, 1.2)
    for (r, _), cell in table.get_celld().items():
        if r == 0:
            cell.set_text_props(weight="bold")
            cell.set_facecolor("#eeeeee")


def _fix_layout(
    fig: Figure, grid: GridSpec, rate_axes: Sequence[Axes], heading: Text, *, table: bool
) -> None:
    """Margins and gaps for the race's grid, from what sits in them, measured once (in inches).

    Left of the timelines: their y tick labels and axis label.  Between the columns: the timelines'
    legend, then the rates' y tick labels and axis label.  Right of the rates: the tokens axis (when a row
    has one) and the rates' legend, which sits past it.  Between rows: a row's x tick labels and the next
    row's title, plus the last design row's x axis label (one gap for all rows: a grid's gaps are equal;
    without the table, that label goes in the bottom margin).
    Only texts are measured -- no axis is laid out -- so this costs milliseconds where constrained layout
    costs more than a drawing pass.  Without a renderer to measure with, constrained layout does it.
    """
    renderer = getattr(fig.canvas, "get_renderer", lambda: None)()
    if renderer is None:
        fig.set_layout_engine("constrained")
        return
    width, height = fig.get_size_inches()
    timelines = [ax for ax in fig.axes if _column(ax) == 0 and ax.axison]
    twins = [twin for twin in map(twin_of, rate_axes) if twin is not None]
    left = max(y_axis_reach_inches(ax, renderer) for ax in timelines) + 0.12
    gap = _legend_reach_inches(timelines[0], renderer) + max(
        y_axis_reach_inches(ax, renderer) for ax in rate_axes
    )
    right = max([y_axis_reach_inches(twin, renderer) for twin in twins] + [0.0])
    right = max(right, _legend_reach_inches(rate_axes[0], renderer)) + 0.12
    title = text_height_inches(timelines[0].title, renderer, fig.dpi)
    # The heading hangs a fixed 0.1 in below the top edge (its default, 2 % of the height, is most of an
    # inch on a six-row race), then the first row's titles, then the axes.
    heading.set_y(1.0 - 0.1 / height)
    top = 0.1 + text_height_inches(heading, renderer, fig.dpi) + title + 0.2
    row_gap = title + x_axis_reach_inches(timelines[-1], renderer) + 0.15
    # Under the last design row: the table's row (its axis label sits in the gap above), or the label.
    bottom = 0.1 if table else x_axis_reach_inches(timelines[-1], renderer) + 0.1
    # A grid's gaps are fractions of its mean cell: wspace of the mean column width, hspace of the mean row.
    cell_width = (width - left - right - gap) / grid.ncols
    cell_height = (height - top - bottom - row_gap * (grid.nrows - 1)) / grid.nrows
    grid.update(
        **margin_fractions((width, height), left=left, right=right, top=top, bottom=bottom),
        wspace=gap / max(cell_width, 0.1),
        hspace=row_gap / max(cell_height, 0.1),
    )


def _column(ax: Axes) -> int | None:
    spec = ax.get_subplotspec()
    return None if spec is None else spec.colspan.start


def _legend_reach_inches(ax: Axes, renderer: RendererBase) -> float:
    """How far the legend :func:`outside_legend` put beside ``ax`` reaches past its right edge."""
    legend = ax.get_legend()
    if legend is None:
        return 0.0
    fig = ax.get_figure(root=True)
    assert fig is not None  # the race made it
    twin = twin_of(ax)
    past_twin = _right_reach_inches(twin) if twin is not None else 0.0  # as outside_legend placed it
    # bbox_to_anchor=(1.01, ...) in axes fractions: about 0.1 in on these panels.
    return 0.1 + past_twin + float(legend.get_window_extent(renderer).width) / fig.dpi + 0.05


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
    limit = server_limit(first, "rpm") if first is not None else None
    return traces, {name: t.summary(limit) for name, t in traces.items()}, limit
