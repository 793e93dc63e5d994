"""What every picture shares: one colour per meaning, new axes, titles, legends, limit lines, 429 marks.

A learner should learn the colour code once: blue is always in flight, grey waiting, orange dotted waiting
to retry, vermillion a 429, black dashed a limit -- whichever picture they are looking at.  The colours come
from the Okabe–Ito palette, which stays distinguishable for colour-blind readers.

Two rules keep a picture readable at a glance, whatever the data does:

* **A limit is never hidden.**  :func:`limit_line` draws it above the data, over a pale band wider than any
  data line, and writes its value on it: a curve that runs exactly along the limit (a sliding log at its
  limit) shows as "a line inside the band", not as a limit that vanished.
* **Marks that would pile up are counted.**  :func:`count_rug` groups events that would overlap at the
  panel's resolution into one mark labelled with how many it stands for, so 400 429s read as numbers along
  the time axis instead of a solid red band.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
from matplotlib import patheffects
from matplotlib.font_manager import FontProperties
from matplotlib.transforms import ScaledTranslation, blended_transform_factory

from .model import describe

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.text import Text

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

# Text drawn over data gets a white outline, so it stays legible wherever a line crosses it.
_HALO = [patheffects.withStroke(linewidth=2.5, foreground="white")]
# Data lines are drawn at matplotlib's default zorder (2); limits go above them, their bands below.
LIMIT_ZORDER = 3.5
_BAND_ZORDER = 1.2


def panel_title(trace: Trace, what: str, title: str | None) -> str:
    """``title`` if given, else ``what — design`` over a line saying what was run (from ``meta``)."""
    if title is not None:
        return title
    design = trace.meta.get("design")
    head = f"{what} — {design}" if design else what
    config = describe(trace)
    return f"{head}\n{config}" if config else head


def set_title(ax: Axes, text: str) -> None:
    """The panel's title, at the axes' top edge (where matplotlib puts it), placed without measuring.

    Why ``y=1.0``: with the height left to matplotlib, every draw (and every layout pass) re-measures the
    tick labels of the axes and of its twin for each of its three title slots, to lift the title above
    ticks drawn on *top*.  The plots draw their x ticks at the bottom only, so the title never moves, and
    that measuring was a third of a dashboard's drawing time.
    """
    ax.set_title(text, fontsize="medium", y=1.0)


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


def root_figure(ax: Axes) -> Figure:
    """The figure an axes is drawn in (every axes the plots make or are given has one)."""
    fig = ax.get_figure(root=True)
    if fig is None:  # an axes nobody placed in a figure: nothing can be drawn on it
        raise ValueError("the axes is not part of a figure")
    return fig


def axes_size_points(ax: Axes) -> tuple[float, float]:
    """About how wide and tall the axes are, in points, from its current position in the figure.

    Read before the layout engine has run, so it errs large: constrained layout only ever shrinks the
    axes to make room for titles and legends.  Callers that size marks by it keep a margin.
    """
    width_in, height_in = root_figure(ax).get_size_inches()
    box = ax.get_position()
    return float(box.width * width_in * 72.0), float(box.height * height_in * 72.0)


def font_points(size: str | float) -> float:
    """A font size as matplotlib's rcParams spell it (``"small"``, ``9``) in points."""
    return float(FontProperties(size=size).get_size_in_points())


def twin_of(ax: Axes) -> Axes | None:
    """The right-hand twin a plot added to ``ax`` (``ax.twinx()``), if there is one."""
    for other in root_figure(ax).axes:
        if (
            other is not ax
            and other.get_shared_x_axes().joined(ax, other)
            and other.get_position().bounds == ax.get_position().bounds
        ):
            return other
    return None


def limit_line(
    ax: Axes,
    value: float,
    label: str,
    *,
    color: str = LIMIT,
    ls: str = "--",
    lw: float = 1.3,
    steps: tuple[Sequence[float], Sequence[float]] | None = None,
    text: str | None = None,
    side: str = "left",
) -> Line2D:
    """A limit the learner must always see: dashed, above the data, over a pale band, its value written on it.

    Why each part: the dashes sit *above* the data lines (a curve at the limit cannot cover them); the band
    underneath is wider than any data line, so where a curve runs exactly along the limit both stay visible
    (a line inside a band); the text (``text``, default ``label``) names the line where it is, at the
    ``side`` end, so two limits on one row (requests on the left axis, tokens on the right) are told apart
    without the legend.  ``steps`` draws a limit that changes on a schedule as a step line; ``value`` then
    places the text.  Returns the dashed line (the legend's handle).
    """
    if steps is not None:
        (line,) = ax.step(*steps, where="post", color=color, lw=lw, ls=ls, label=label, zorder=LIMIT_ZORDER)
        ax.step(*steps, where="post", color=color, lw=lw + 5.0, alpha=0.16, zorder=_BAND_ZORDER)
    else:
        line = ax.axhline(value, color=color, lw=lw, ls=ls, label=label, zorder=LIMIT_ZORDER)
        ax.axhline(value, color=color, lw=lw + 5.0, alpha=0.16, zorder=_BAND_ZORDER)
    if math.isfinite(value):
        left = side == "left"
        ax.text(
            0.006 if left else 0.994,
            value,
            text if text is not None else label,
            transform=blended_transform_factory(ax.transAxes, ax.transData),
            ha="left" if left else "right",
            va="bottom",
            color=color,
            fontsize="small",
            path_effects=_HALO,
            zorder=LIMIT_ZORDER + 0.1,
            clip_on=True,
            gid="limit label",
            in_layout=False,  # inside the axes: the layout engine need not measure it
        )
    return line


def limit_labels(ax: Axes) -> list[Text]:
    """The values :func:`limit_line` wrote on its lines on ``ax``."""
    return [text for text in ax.texts if text.get_gid() == "limit label"]


def count_rug(
    ax: Axes,
    times: Sequence[float],
    label: str,
    *,
    color: str = LIMITED,
    gap_points: float = 18.0,
) -> Line2D:
    """Events (429s) as crosses along the bottom edge, one cross per cluster, labelled with its count.

    Crosses closer than ``gap_points`` on screen would merge into a band no one can count, so the events
    are grouped first: a group starts at an event and takes every later one within ``gap_points`` of it
    (measured at the axes' current x-limits and size).  Each group is one cross at its first event -- so
    "when" stays exact for a lone 429 -- and a number above it says how many 429s it stands for (a cross
    without a number is a single 429).  Group starts are at least the gap apart, so crosses and numbers
    never overlap.  One marker artist for all crosses, one text per group of two or more: a busy run costs
    a few dozen texts, whatever the number of 429s.  Call it after setting the x- and y-limits: a limit's
    label that sits this low would collide with the numbers, so it is hidden (the legend still names it).
    """
    ordered = sorted(times)
    low, high = ax.get_xlim()
    width_pts, _ = axes_size_points(ax)
    gap = abs(high - low) * gap_points / max(width_pts, 1.0)
    starts: list[float] = []
    counts: list[int] = []
    for t in ordered:
        if starts and t - starts[-1] < gap:
            counts[-1] += 1
        else:
            starts.append(t)
            counts.append(1)
    (markers,) = ax.plot(
        starts,
        [0.025] * len(starts),
        ls="none",
        marker="x",
        ms=6,
        mew=1.5,
        color=color,
        transform=ax.get_xaxis_transform(),
        clip_on=False,
        zorder=5,
        label=label,
    )
    if any(count > 1 for count in counts):
        to_axes = ax.transAxes.inverted()
        twin = twin_of(ax)
        for owner in (ax,) if twin is None else (ax, twin):
            for text in limit_labels(owner):
                _, y = to_axes.transform(owner.transData.transform(text.get_position()))
                if y < 0.16:  # the numbers reach about 0.12 of the axes' height
                    text.set_visible(False)
    for t, count in zip(starts, counts, strict=True):
        if count > 1:
            ax.text(
                t,
                0.055,
                str(count),
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                color=color,
                fontsize="x-small",
                fontweight="bold",
                path_effects=_HALO,  # a limit line at the very bottom may run through the numbers
                clip_on=False,
                zorder=5,
                gid="count",
                in_layout=False,  # inside the axes: the layout engine need not measure it
            )
    return markers


def count_labels(ax: Axes) -> list[Text]:
    """The numbers :func:`count_rug` wrote on ``ax`` (for tests and for anyone restyling them)."""
    return [text for text in ax.texts if text.get_gid() == "count"]


def _right_reach_inches(twin: Axes) -> float:
    """How far the twin's tick labels and axis label reach right of the axes' edge, in inches.

    Measured with the figure's renderer when the canvas has one (Agg, the inline backend, the slider labs):
    the widest tick label (from the ticks the axis will draw) plus the ticks, the pads and the axis label's
    height (it is written sideways).  Measuring two strings instead of laying out the whole axis keeps this
    cheap, and widths do not change when a layout engine later moves the axes.  Elsewhere an estimate from
    the number of digits of the largest tick.
    """
    fig = root_figure(twin)
    get_renderer = getattr(fig.canvas, "get_renderer", None)
    axis = twin.yaxis
    if get_renderer is not None:
        renderer = get_renderer()
        low, high = twin.get_ylim()
        ticks = [t for t in axis.get_majorticklocs() if low <= t <= high]
        labels = axis.get_major_formatter().format_ticks(ticks) or ["0"]
        tick_font = FontProperties(size=plt.rcParams["ytick.labelsize"])
        widest = max(
            renderer.get_text_width_height_descent(text, tick_font, ismath=False)[0] for text in labels
        )
        label = axis.label
        _, label_height, _ = renderer.get_text_width_height_descent(
            label.get_text() or "0", label.get_fontproperties(), ismath=False
        )
        gaps = float(plt.rcParams["ytick.major.size"] + plt.rcParams["ytick.major.pad"] + axis.labelpad)
        return float(widest + label_height) / fig.dpi + gaps / 72.0 + 0.1
    top = max(abs(v) for v in twin.get_ylim())
    digits = len(f"{top:.0f}") if math.isfinite(top) else 6
    return 0.45 + 0.085 * digits  # tick labels plus the axis label


def margin_fractions(
    size: tuple[float, float], *, left: float, right: float, top: float, bottom: float
) -> dict[str, float]:
    """Margins measured in inches, as the fractions of a figure of ``size`` (inches) that
    ``subplots_adjust`` and ``GridSpec.update`` take."""
    width, height = size
    return {
        "left": left / width,
        "right": 1.0 - right / width,
        "top": 1.0 - top / height,
        "bottom": bottom / height,
    }


def text_height_inches(text: Text, renderer: RendererBase, dpi: float) -> float:
    """How tall a text is drawn (0 for an empty or hidden one), in inches at ``dpi``."""
    if not (text.get_visible() and text.get_text()):
        return 0.0
    return float(text.get_window_extent(renderer).height) / dpi


def y_axis_reach_inches(ax: Axes, renderer: RendererBase) -> float:
    """How far a y axis's tick labels and axis label reach out from the axes' edge, in inches.

    Like :func:`_right_reach_inches`, by measuring texts only (the widest tick label the axis will draw,
    the axis label as drawn: a two-line label counts twice), never by laying the axis out.
    """
    axis = ax.yaxis
    low, high = sorted(ax.get_ylim())
    ticks = [t for t in axis.get_majorticklocs() if low <= t <= high]
    labels = axis.get_major_formatter().format_ticks(ticks) or ["0"]
    tick_font = FontProperties(size=plt.rcParams["ytick.labelsize"])
    widest = max(renderer.get_text_width_height_descent(t, tick_font, ismath=False)[0] for t in labels)
    label = axis.label
    across = label.get_window_extent(renderer).width if label.get_visible() and label.get_text() else 0.0
    gaps = float(plt.rcParams["ytick.major.size"] + plt.rcParams["ytick.major.pad"] + axis.labelpad)
    return float(widest + across) / root_figure(ax).dpi + gaps / 72.0


def x_axis_reach_inches(ax: Axes, renderer: RendererBase) -> float:
    """How far an x axis's tick labels and axis label reach below the axes, in inches (texts measured)."""
    axis = ax.xaxis
    tick_font = FontProperties(size=plt.rcParams["xtick.labelsize"])
    _, tall, _ = renderer.get_text_width_height_descent("0123456789", tick_font, ismath=False)
    label = axis.label
    label_height = (
        label.get_window_extent(renderer).height if label.get_visible() and label.get_text() else 0.0
    )
    gaps = float(plt.rcParams["xtick.major.size"] + plt.rcParams["xtick.major.pad"] + axis.labelpad)
    return float(tall + label_height) / root_figure(ax).dpi + gaps / 72.0


#: What each panel's legend lists -- or would, drawn with ``legend=False`` -- so that a figure of several
#: panels (the race) can gather them into one legend without making, and throwing away, one per panel.
_listed: weakref.WeakKeyDictionary[Axes, list[Artist]] = weakref.WeakKeyDictionary()


def legend_handles(ax: Axes) -> list[Artist]:
    """The marks :func:`outside_legend` was given for ``ax`` (whether or not it drew the legend)."""
    return list(_listed.get(ax, []))


def outside_legend(
    ax: Axes,
    handles: Sequence[Artist],
    legend: bool,
    *,
    twin: Axes | None = None,
    labels: Sequence[str] | None = None,
) -> None:
    """The legend outside the plot, to the right: it never hides a bar, a line or an axis.

    With a right-hand ``twin`` axis the legend moves further right, past the twin's tick labels and its
    axis label (measured, see :func:`_right_reach_inches`).  ``labels`` replace the handles' own labels.
    ``legend=False`` draws nothing but remembers the handles (:func:`legend_handles`).
    """
    _listed[ax] = list(handles)
    if not (legend and handles):
        return
    fig = root_figure(ax)
    transform = ax.transAxes
    if twin is not None:
        transform = transform + ScaledTranslation(_right_reach_inches(twin), 0.0, fig.dpi_scale_trans)
    ax.legend(
        handles=list(handles),
        labels=[str(h.get_label()) for h in handles] if labels is None else list(labels),
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        bbox_transform=transform,
        borderaxespad=0.0,
    )
