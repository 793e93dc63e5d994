"""Lesson 10's slider lab: several workers on one key, each with its own limiter or one shared limit.

On virtual time, no Redis and no processes: the in-process model the lesson's exercise grades with too
(:func:`throttle_lab.lab.many_workers.check_split` runs its workers through :func:`simulate_workers`).
``workers`` workers each send ``requests`` requests as fast as their limiter lets them; the key's server
is a token bucket of ``server_rpm`` per minute holding ``server_rpm × server_window / 60`` requests, and
refuses (a 429) whatever finds it empty::

    run = run_workers_lab(workers=4, requests=15, rpm=600, burst=3)               # a GCRA each
    run = run_workers_lab(workers=4, requests=15, rpm=600, burst=3, shared=True)  # one GCRA for all
    run.refused, run.sent_per_minute, run.figure

``shared=True`` stands for what Redis gives the lesson's workers: one limit that every worker books from
(one ``GCRA`` whose turns go in the order the workers asked).  ``shared=False`` is run 1 of the lesson:
every worker keeps the key's whole limit to itself.  The lesson puts sliders on :func:`run_workers_lab`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.limiters.gcra import GCRA
from ..core.limiters.token_bucket import TokenBucket
from ..core.runtime import run

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

__all__ = ["WORKER_LAB_DEFAULTS", "WorkersRun", "draw_workers", "run_workers_lab", "simulate_workers"]

#: What the lab starts from: the lesson's run 1 (four workers, each with the key's whole limit).
WORKER_LAB_DEFAULTS: Mapping[str, Any] = {
    "workers": 4,
    "requests": 15,
    "rpm": 600.0,
    "burst": 3.0,
    "shared": False,
    "server_rpm": 600.0,
    "server_window": 1.0,
}


@dataclass
class WorkersRun:
    """One run: when each worker sent (``sends[i]``), which of those the server refused, and the settings."""

    settings: dict[str, Any]
    sends: list[list[float]]
    refused: list[list[float]]
    figure: Figure | None = field(default=None, repr=False)

    @property
    def sent(self) -> int:
        return sum(map(len, self.sends))

    @property
    def limited(self) -> int:
        """How many requests the server refused (429s)."""
        return sum(map(len, self.refused))

    @property
    def end(self) -> float:
        return max((t for mine in self.sends for t in mine), default=0.0)

    @property
    def sent_per_minute(self) -> float:
        """All workers' sends per minute over the run (the first instant's burst included)."""
        return 60.0 * self.sent / self.end if self.end > 0 else float("inf")

    def summary(self) -> str:
        s = self.settings
        how = "one shared limit" if s["shared"] else "a limiter each"
        rate = "all at once" if self.end == 0 else f"{self.sent_per_minute:.0f} per minute together"
        return (
            f"{s['workers']} workers, {how} ({s['rpm']:g}/min, burst {s['burst']:g}); the key allows "
            f"{s['server_rpm']:g}/min: sent {self.sent} in {self.end:.2f} s ({rate}), "
            f"{self.limited} refused (429)"
        )


def _settings(values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(values) - set(WORKER_LAB_DEFAULTS))
    if unknown:
        raise TypeError(f"unknown setting(s) {unknown}; the settings are {sorted(WORKER_LAB_DEFAULTS)}")
    settings = {**WORKER_LAB_DEFAULTS, **values}
    if int(settings["workers"]) < 1 or int(settings["requests"]) < 1:
        raise ValueError("workers and requests must be at least 1")
    if float(settings["burst"]) < 1:
        raise ValueError(f"burst={settings['burst']:g} is below one request: a worker could never send")
    return settings


def simulate_workers(**values: Any) -> WorkersRun:
    """Run the workers on virtual time (keys of :data:`WORKER_LAB_DEFAULTS`); no figure."""
    s = _settings(values)
    workers, requests = int(s["workers"]), int(s["requests"])

    async def main() -> tuple[list[list[float]], list[list[float]]]:
        loop = asyncio.get_running_loop()
        bucket = float(s["server_rpm"]) * float(s["server_window"]) / 60.0
        server = TokenBucket(per_minute=float(s["server_rpm"]), capacity=bucket, name="server")
        if s["shared"]:
            one = GCRA(per_minute=float(s["rpm"]), burst=float(s["burst"]), name="shared")
            limiters = [one] * workers
        else:
            limiters = [
                GCRA(per_minute=float(s["rpm"]), burst=float(s["burst"]), name=f"w{i + 1}")
                for i in range(workers)
            ]
        sends: list[list[float]] = [[] for _ in range(workers)]
        refused: list[list[float]] = [[] for _ in range(workers)]

        async def worker(index: int) -> None:
            for _ in range(requests):
                await limiters[index].acquire()
                now = loop.time()
                sends[index].append(now)
                if not server.try_acquire():
                    refused[index].append(now)

        await asyncio.gather(*(worker(i) for i in range(workers)))
        return sends, refused

    sends, refused = run(main())
    return WorkersRun(s, sends, refused)


def draw_workers(result: WorkersRun, *, figsize: tuple[float, float] = (10.0, 5.5)) -> Figure:
    """Top: one row per worker, a mark per send (``x``: refused).  Bottom: sends so far against the key.

    The bottom panel counts, for all workers together, what was sent and what got through, next to what
    the key allows so far: its bucket at the start plus its rate since (``capacity + rate × t``).  Sends
    above that line can only be refused, which is the lesson's point in one look.
    """
    import matplotlib.pyplot as plt

    s = result.settings
    fig, (top, bottom) = plt.subplots(2, 1, figsize=figsize, sharex=True, height_ratios=[2, 3])
    fig.subplots_adjust(left=0.08, right=0.78, top=0.92, bottom=0.1, hspace=0.12)
    how = "one shared limit" if s["shared"] else "a limiter each"
    fig.suptitle(f"{s['workers']} workers on one key, {how}: {result.limited} of {result.sent} refused (429)")
    end = max(result.end, 1.0)
    for index, (mine, bad) in enumerate(zip(result.sends, result.refused, strict=True)):
        # Times repeat (a burst goes out at one instant), so tell sends apart by count, not by time:
        # at each instant the server let the first ones through and refused the rest.
        through = list((Counter(mine) - Counter(bad)).elements())
        row = index + 1
        top.plot(through, [row] * len(through), "|", color="#0072B2", markersize=9, label="got through")
        top.plot(bad, [row] * len(bad), "x", color="#D55E00", markersize=6, label="429")
    top.set_yticks(range(1, len(result.sends) + 1), [f"worker {i + 1}" for i in range(len(result.sends))])
    top.set_ylim(len(result.sends) + 0.6, 0.4)
    # One legend entry per kind, and only for kinds that were drawn (a run with no 429s shows no "x").
    shown: dict[str, Line2D] = {}
    for line in top.get_lines():
        if len(line.get_xydata()) and str(line.get_label()) not in shown:
            shown[str(line.get_label())] = line
    top.legend(
        list(shown.values()), list(shown), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small"
    )

    sends = sorted(t for mine in result.sends for t in mine)
    refused = Counter(t for bad in result.refused for t in bad)
    accepted = sorted((Counter(sends) - refused).elements())
    bottom.step(
        [0.0, *sends], range(len(sends) + 1), where="post", color="#56B4E9", label="sent, all workers"
    )
    bottom.step(
        [0.0, *accepted], range(len(accepted) + 1), where="post", color="#009E73", label="got through"
    )
    rate = float(s["server_rpm"]) / 60.0
    capacity = rate * float(s["server_window"])
    edge = end * 1.02
    bottom.plot(
        [0.0, edge],
        [capacity, capacity + rate * edge],
        color="black",
        linestyle="--",
        linewidth=1,
        label=f"the key allows ({capacity:g} + {rate:g}/s)",
    )
    bottom.set_ylabel("requests so far")
    bottom.set_xlabel("time (s)")
    bottom.set_xlim(-0.02 * end, edge)
    bottom.set_ylim(0, max(len(sends), capacity + rate * edge) * 1.05)
    bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return fig


def run_workers_lab(**values: Any) -> WorkersRun:
    """:func:`simulate_workers` and its picture (``run.figure``; the caller closes it)."""
    result = simulate_workers(**values)
    result.figure = draw_workers(result)
    return result
