"""Slider-lab benchmark: how long a learner waits after letting go of a slider.

Run from the repository root::

    python benchmarks/bench_widgets.py             # 9 repeats per row (about 15 s)
    python benchmarks/bench_widgets.py --repeat 3  # quicker

One slider move runs ``Lab.update`` -- simulate 200 requests on virtual time, draw the dashboard (timeline,
rates, in flight) -- and renders the PNG the notebook receives (``widgets.render_png``).  Each row is the
median of several moves (each with a new seed, so nothing is cached), on matplotlib's Agg backend; the
target is 300 ms for the whole move.  The columns split it: simulate, draw the figure, render the PNG.
Progress goes to stderr, a markdown table to stdout.  Nothing is asserted: this is a report.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from throttle_lab.lab import plots
from throttle_lab.lab.experiments import Workload, simulate
from throttle_lab.lab.widgets import Lab, render_png

TARGET_MS = 300.0
REQUESTS = 200

# (label, lab settings): the lab's default plus designs and servers that make busier pictures.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("throttler, burst, 60 rpm (the lab's default)", {"design": "throttler"}),
    ("throttler, poisson, 60 rpm + 20k tpm, 10 s window", {
        "design": "throttler", "arrival": "poisson", "server_tpm": 20_000, "server_window": 10.0,
    }),
    ("article, burst, 60 rpm, 10 s window (429s, retries)", {"design": "article", "server_window": 10.0}),
    ("unthrottled, burst, 60 rpm, 10 s window (many 429s)", {"design": "unthrottled", "server_window": 10.0}),
    ("adaptive, steady 150/min, 60 rpm", {"design": "adaptive", "arrival": "steady", "per_minute": 150}),
]  # fmt: skip


def _ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def measure(settings: dict[str, Any], repeat: int) -> dict[str, float]:
    """Median milliseconds of one slider move, and of its parts, over ``repeat`` moves."""
    with contextlib.redirect_stdout(io.StringIO()):  # the panel prints its summary; keep stdout for the table
        panel = Lab(requests=REQUESTS, **settings)  # builds the panel and runs once (warm-up)
    total: list[float] = []
    for seed in range(1, repeat + 1):
        start = time.perf_counter()
        _, figure = panel.update(seed=seed)
        render_png(figure)
        total.append(time.perf_counter() - start)
    # The parts, measured apart from each other on the same settings.
    values = {**panel.values, **settings, "requests": REQUESTS}
    sim: list[float] = []
    draw: list[float] = []
    png: list[float] = []
    for seed in range(1, repeat + 1):
        workload = Workload(
            requests=REQUESTS, arrival=values["arrival"], per_minute=values["per_minute"], seed=seed
        )
        server = {
            "rpm": values["server_rpm"] or None,
            "tpm": values["server_tpm"] or None,
            "window": values["server_window"],
            "ttft": values["ttft"],
        }
        t0 = time.perf_counter()
        trace = simulate(values["design"], workload, server)
        t1 = time.perf_counter()
        figure = plots.dashboard(trace, layout="fixed", figsize=(10.0, 7.0))
        t2 = time.perf_counter()
        render_png(figure)
        t3 = time.perf_counter()
        plt.close(figure)
        sim.append(t1 - t0)
        draw.append(t2 - t1)
        png.append(t3 - t2)
    if panel.figure is not None:
        plt.close(panel.figure)
    return {
        "total": _ms(total),
        "best": min(total) * 1000.0,
        "sim": _ms(sim),
        "draw": _ms(draw),
        "png": _ms(png),
    }


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=9, help="slider moves per row (default: 9)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows: list[tuple[str, dict[str, float]]] = []
    for label, settings in CASES:
        print(f"  {label} ...", file=sys.stderr, flush=True)
        rows.append((label, measure(settings, args.repeat)))
    wall = time.perf_counter() - started

    command = "python benchmarks/bench_widgets.py" + (f" --repeat {args.repeat}" if args.repeat != 9 else "")
    print("# throttle_lab slider-lab benchmark")
    print()
    print(f"- command: `{command}`")
    print(
        f"- {REQUESTS}-request re-run + redraw through `Lab.update` + `render_png`, median of {args.repeat}"
    )
    machine = f"{platform.platform()}, {os.cpu_count()} CPUs, load average {_load()}"
    print(f"- Python {platform.python_version()} on {machine}")
    print(
        f"- matplotlib {_version('matplotlib')} (Agg), ipywidgets {_version('ipywidgets')}, "
        f"throttle-lab {_version('throttle-lab')}; total wall time {wall:.1f} s"
    )
    print()
    headers = ["case", "slider move (median)", "best", "simulate", "draw", "PNG", "target", "meets"]
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    cell: Callable[[float], str] = lambda ms: f"{ms:.0f} ms"  # noqa: E731
    for label, r in rows:
        meets = "yes" if r["total"] < TARGET_MS else "no"
        cells = [label, cell(r["total"]), cell(r["best"]), cell(r["sim"]), cell(r["draw"]), cell(r["png"])]
        print("| " + " | ".join([*cells, f"< {TARGET_MS:.0f} ms", meets]) + " |")


def _load() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:  # pragma: no cover - not on Unix
        return "unknown"


if __name__ == "__main__":
    main()
