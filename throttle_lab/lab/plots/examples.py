"""The example pictures: one PNG per plot, from seeded virtual-time runs (what the README and docs/ show)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from .dashboard import dashboard
from .in_flight import in_flight
from .level import level
from .race import race
from .rates import rates
from .timeline import timeline
from .waits import waits


def save_examples(directory: str | Path = "docs", *, dpi: int = 100) -> list[Path]:
    """Write one example PNG per plot into ``directory`` (what the README shows); returns the paths."""
    from ..experiments import Workload, compare, simulate

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    brownout = {
        "rpm": 120,
        "tpm": 24_000,
        "window": 10,
        "limit_schedule": ((60.0, 40, 8_000), (120.0, 120, 24_000)),
    }
    article = simulate("article", Workload(requests=60, seed=1), {"rpm": 30, "window": 10})
    throttler = simulate(
        "throttler",
        Workload(requests=400, arrival="poisson", per_minute=150, seed=2),
        {"rpm": 100, "tpm": 30_000, "window": 10},
        max_concurrent=8,
    )
    adaptive = simulate(
        "adaptive", Workload(requests=300, arrival="steady", per_minute=150, seed=3), brownout
    )
    semaphore = simulate(
        "semaphore",
        Workload(requests=120, arrival="bursts", per_minute=120, burst_size=30, seed=4),
        {"rpm": 120, "window": 10, "max_concurrent": 6, "ttft": 1.0},
        max_concurrent=5,
    )
    races = compare(
        ["unthrottled", "article", "throttler", "adaptive"],
        Workload(requests=80, seed=5),
        {"rpm": 40, "window": 10},
    )
    drawings: list[tuple[str, Any]] = [
        ("timeline.png", lambda: timeline(article).figure),
        ("rates.png", lambda: rates(adaptive, window=10).figure),
        ("in_flight.png", lambda: in_flight(semaphore, cap=5).figure),
        ("level.png", lambda: level(throttler).figure),
        ("race.png", lambda: race(races)),
        ("waits.png", lambda: waits(throttler).figure),
        ("dashboard.png", lambda: dashboard(throttler, cap=8)),
    ]
    paths = []
    for name, draw in drawings:
        fig = draw()
        path = out / name
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        paths.append(path)
    return paths
