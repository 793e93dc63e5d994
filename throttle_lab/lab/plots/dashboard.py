"""The dashboard: one run's timeline, rates and in-flight count stacked on a shared time axis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import matplotlib.pyplot as plt

from .in_flight import in_flight
from .model import describe
from .rates import rates
from .timeline import timeline

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ...core.trace import Trace


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
    config = describe(trace)
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
