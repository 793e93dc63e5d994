"""Waits: how long requests waited before they were first sent, as a histogram with p50 and p99."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...core.trace import percentile
from .drawing import IN_FLIGHT, LIMIT, LIMITED, new_axes, outside_legend, panel_title, set_title, show_empty
from .ticks import ticks_in_view

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ...core.trace import Trace


def waits(trace: Trace, ax: Axes | None = None, *, bins: int = 30, title: str | None = None) -> Axes:
    """How long requests waited before they were first sent: a histogram with the p50 and p99 marked.

    For a client trace a request's wait runs from its arrival to its first send (see
    :attr:`Span.wait <throttle_lab.Span.wait>`); for a bare limiter it is each grant's ``waited``.
    """
    ax = new_axes(ax, (7, 3.5))
    set_title(ax, panel_title(trace, "Wait before sending", title))
    ax.set_xlabel("wait (s)")
    ax.set_ylabel("requests")
    values = [w for span in trace.spans() if (w := span.wait) is not None]
    if not values:
        values = [float(e.detail["waited"]) for e in trace if e.kind == "granted" and "waited" in e.detail]
    if not values:
        show_empty(ax, "no requests in this trace")
        return ax
    p50, p99 = percentile(values, 50), percentile(values, 99)
    top = max(values)
    edges = np.linspace(0.0, top if top > 0 else 1.0, bins + 1).tolist()
    ax.hist(values, bins=edges, color=IN_FLIGHT, alpha=0.85, edgecolor="white", lw=0.5, label="requests")
    ax.axvline(p50, color=LIMIT, lw=1.5, ls="--", label=f"p50 {p50:.2f} s")
    ax.axvline(p99, color=LIMITED, lw=1.5, ls=":", label=f"p99 {p99:.2f} s")
    ax.set_xlim(left=0)
    ax.grid(axis="y", alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    ticks_in_view(ax)
    outside_legend(ax, handles, True)
    return ax
