"""Margins for a column of panels, measured once: what the lessons' slider labs use, not a layout engine.

``layout="constrained"`` lays out every axes in full, twice over, on every draw (30-60 ms of a lesson lab's
move); :func:`fit_margins` measures only the texts that sit in the margins -- tick labels, axis labels,
titles, legends outside the plot -- and sets the margins and the gaps between panels once.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt

from .drawing import (
    margin_fractions,
    root_figure,
    text_height_inches,
    twin_of,
    x_axis_reach_inches,
    y_axis_reach_inches,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure

#: Blank space around everything, in inches (about what constrained layout leaves).
_PAD = 0.1


def fit_margins(fig: Figure) -> None:
    """Margins and gaps for a figure of panels stacked in one column (``plt.subplots(n, 1)``), measured.

    Left: the widest y axis (tick labels and label).  Right: a right-hand twin axis, then a legend
    placed outside the plot (``loc="upper left", bbox_to_anchor=(1.01, 1)``, as the plots put theirs).
    Top: the figure's heading and the first panel's title.  Between panels: the lower one's title and
    the upper one's x tick labels and label, where they are shown.  Bottom: the last panel's x axis.
    Call it once every panel is drawn; it replaces the figure's layout engine, if it had one.  Without a
    renderer to measure with (a backend that has none), constrained layout does it instead.
    """
    renderer = getattr(fig.canvas, "get_renderer", lambda: None)()
    if renderer is None:
        fig.set_layout_engine("constrained")
        return
    fig.set_layout_engine(None)  # a figure made with one (plots.timeline(trace) alone): these margins instead
    panels = _panels(fig)
    if not panels:
        return
    width, height = fig.get_size_inches()
    left = max(y_axis_reach_inches(ax, renderer) for ax in panels) + _PAD
    right = max(_right_inches(ax, renderer) for ax in panels) + _PAD
    top = _PAD + _title_inches(panels[0], renderer)
    for heading in [
        text for text in fig.texts if fig.get_suptitle() and text.get_text() == fig.get_suptitle()
    ]:
        heading.set_y(1.0 - _PAD / height)  # just below the top edge, not 2 % of the height down
        top += text_height_inches(heading, renderer, fig.dpi) + _PAD
    gaps = [
        _title_inches(lower, renderer) + _x_axis_inches(upper, renderer) + 0.15
        for upper, lower in itertools.pairwise(panels)
    ]
    gap = max(gaps, default=0.0)
    bottom = _x_axis_inches(panels[-1], renderer) + _PAD
    # A grid's gap is a fraction of its mean panel height.
    mean_height = (height - top - bottom - gap * (len(panels) - 1)) / len(panels)
    fig.subplots_adjust(
        **margin_fractions((width, height), left=left, right=right, top=top, bottom=bottom),
        hspace=gap / max(mean_height, 0.1),
    )


def _panels(fig: Figure) -> list[Axes]:
    """The figure's panels, top to bottom, without their right-hand twins."""
    rows: list[tuple[int, Axes]] = []
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        if spec is None or any(twin_of(panel) is ax for _, panel in rows):
            continue
        rows.append((spec.rowspan.start, ax))
    return [ax for _, ax in sorted(rows, key=lambda row: row[0])]


def _title_inches(ax: Axes, renderer: RendererBase) -> float:
    """The panel's title above its top edge (with matplotlib's pad), or nothing."""
    title = text_height_inches(ax.title, renderer, root_figure(ax).dpi)
    return title + float(plt.rcParams["axes.titlepad"]) / 72.0 if title else 0.0


def _x_axis_inches(ax: Axes, renderer: RendererBase) -> float:
    """The x axis below the panel: its tick labels (unless hidden, as a shared axis hides them) and label."""
    labels = ax.xaxis.get_ticklabels()
    if labels and not any(label.get_visible() for label in labels):
        label = ax.xaxis.label
        return text_height_inches(label, renderer, root_figure(ax).dpi) + (0.05 if label.get_text() else 0.0)
    return x_axis_reach_inches(ax, renderer)


def _right_inches(ax: Axes, renderer: RendererBase) -> float:
    """What sits right of the panel: its twin's axis, then its legend when the legend is outside."""
    twin = twin_of(ax)
    reach = y_axis_reach_inches(twin, renderer) if twin is not None else 0.0
    legend = ax.get_legend()
    if legend is not None:
        box = legend.get_window_extent(renderer)
        past_edge = (box.x1 - ax.get_window_extent(renderer).x1) / root_figure(ax).dpi
        reach = max(reach, past_edge + 0.05)  # anchored past the twin already (outside_legend)
    return reach
