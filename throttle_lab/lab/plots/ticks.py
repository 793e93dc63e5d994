"""Ticks only where they are seen: the locator every panel uses, for pictures that draw faster.

matplotlib makes one ``Tick`` -- three lines (with their markers) and two texts -- for every location
its locator returns, and its ``MaxNLocator`` returns one location past each end of the view, never drawn.
Making ticks is the largest single part of drawing a panel (about 40 % of a dashboard's PNG), and those
two locations are about a quarter of them.  :class:`InViewLocator` hands on the same locations without
the unseen ones, so every picture shows exactly the same ticks for less.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.ticker import Locator, MaxNLocator

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.axis import Axis


class InViewLocator(Locator):
    """Another locator's tick locations, only those inside the view interval (both ends included)."""

    def __init__(self, base: Locator) -> None:
        self.base = base

    def set_axis(self, axis: Axis | Any) -> None:
        super().set_axis(axis)
        self.base.set_axis(axis)  # the base reads the axis itself (its length, for nbins="auto")

    def __call__(self) -> Sequence[float]:
        if self.axis is None:  # not given to an axis yet: no view to tick
            return []
        low, high = self.axis.get_view_interval()
        return self.tick_values(low, high)

    def tick_values(self, vmin: float, vmax: float) -> Sequence[float]:
        locations = np.asarray(self.base.tick_values(vmin, vmax), dtype=float)
        low, high = sorted((float(vmin), float(vmax)))
        # A tick exactly at an end of the view is drawn: keep it despite rounding in the locations.
        slack = (high - low) * 1e-9
        return list(locations[(locations >= low - slack) & (locations <= high + slack)])

    def view_limits(self, vmin: float, vmax: float) -> tuple[float, float]:
        low, high = self.base.view_limits(vmin, vmax)
        return float(low), float(high)

    def nonsingular(self, v0: float, v1: float) -> tuple[float, float]:
        low, high = self.base.nonsingular(v0, v1)
        return float(low), float(high)


def ticks_in_view(*axes: Axes | None) -> None:
    """Give the x and y axes of ``axes`` (None skipped) their ticks in the view only.

    Only ``MaxNLocator``\\ s (matplotlib's default ``AutoLocator`` is one) are wrapped: fixed ticks
    (``set_yticks``) are exactly the ones asked for already.  Shared axes share one locator, wrapped once.
    """
    for ax in axes:
        if ax is None:
            continue
        for axis in (ax.xaxis, ax.yaxis):
            locator = axis.get_major_locator()
            if isinstance(locator, MaxNLocator):
                axis.set_major_locator(InViewLocator(locator))
