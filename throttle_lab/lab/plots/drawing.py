"""What every picture shares: one colour per meaning, new axes, titles, legends, an empty panel.

A learner should learn the colour code once: blue is always in flight, grey waiting, orange dotted waiting
to retry, vermillion a 429, black dashed a limit -- whichever picture they are looking at.  The colours come
from the Okabe–Ito palette, which stays distinguishable for colour-blind readers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
from matplotlib.transforms import ScaledTranslation

from .model import describe

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes

    from ...core.trace import Trace

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
IN_FLIGHT = OKABE_ITO["blue"]
WAITING = "#9a9a9a"
RETRY_WAIT = OKABE_ITO["orange"]
LIMITED = OKABE_ITO["vermillion"]
REJECTED = OKABE_ITO["reddish_purple"]
SERVER = OKABE_ITO["sky_blue"]
ACCEPTED = OKABE_ITO["bluish_green"]
TOKENS = OKABE_ITO["orange"]
LIMIT = OKABE_ITO["black"]


def panel_title(trace: Trace, what: str, title: str | None) -> str:
    """``title`` if given, else ``what — design`` over a line saying what was run (from ``meta``)."""
    if title is not None:
        return title
    design = trace.meta.get("design")
    head = f"{what} — {design}" if design else what
    config = describe(trace)
    return f"{head}\n{config}" if config else head


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """``ax`` itself, or the axes of a new figure of ``figsize`` when the caller gave none."""
    if ax is not None:
        return ax
    _, new = plt.subplots(figsize=figsize, layout="constrained")
    return new


def show_empty(ax: Axes, message: str) -> None:
    """Say in the middle of the panel why there is nothing to draw (an empty plot would look broken)."""
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


def outside_legend(ax: Axes, handles: Sequence[Artist], legend: bool, *, twin: Axes | None = None) -> None:
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
