"""``simulate``: one design, one workload, one in-process server, on virtual time.  ``compare``: several.

Nothing leaves the process and nobody waits::

    Workload.items() ──> Design.build() ──> ThrottledTransport ──> InProcessTransport ──> create_app(config)
                              client events ─┐                                   server events ─┐
                                             └──────────> Trace.merge(client, server) <─────────┘

The event loop's clock jumps straight to the next timer whenever every task is waiting, so an hour of
traffic replays in a fraction of a second, and the same arguments give the same trace, event for event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...client.retry import RetryPolicy
from ...core.events import record
from ...core.runtime import run
from ...core.trace import Summary, Trace
from ._collector import collector_paused
from ._drive import describe, drive, resolve, server_config
from .designs import Design
from .inprocess import InProcessTransport
from .workload import Workload

if TYPE_CHECKING:
    from mock_server import ServerConfig

__all__ = ["Comparison", "compare", "simulate"]


def simulate(
    design: Design | str = "throttler",
    workload: Workload | None = None,
    server: ServerConfig | Mapping[str, Any] | None = None,
    *,
    rpm: float | None = None,
    tpm: float | None = None,
    max_concurrent: int | None = None,
    window: float | None = None,
    retry: RetryPolicy | None = None,
) -> Trace:
    """Run one design against the in-process mock server on virtual time; return the combined trace.

    Args:
        design: a :class:`Design` or a name from :data:`DESIGNS`.
        workload: the traffic (default: ``Workload()``: 200 requests at once).
        server: a ``mock_server.ServerConfig`` (or its fields as a dict); default 60 RPM.
        rpm, tpm, max_concurrent, window: the client's limits for a named design (default: the server's).
        retry: the retry policy for a named design (default: the design's own).

    The same arguments always give the same trace.

    >>> trace = simulate("throttler", Workload(requests=30), {"rpm": 20, "window": 6})
    >>> trace.summary().rate_limited, trace.summary().completed
    (0, 30)
    """
    workload = workload if workload is not None else Workload()
    config = server_config(server)
    chosen, client = resolve(
        design,
        config,
        {"rpm": rpm, "tpm": tpm, "max_concurrent": max_concurrent, "window": window, "retry": retry},
    )

    async def main() -> list[Mapping[str, Any]]:
        from mock_server import create_app

        app = create_app(config)  # a fresh server per run: nothing carries over from the last one
        # httpx.ASGITransport's job with fewer layers: the same run, event for event, a little faster.
        transport = InProcessTransport(app)
        await drive(chosen, workload, transport, "http://mock-server", config.default_max_tokens)
        return list(app.events)

    # The collector is off while the run builds its trace: it would only rescan it, again and again.
    with collector_paused():
        with record() as client_trace:
            server_records = run(main())
        trace = Trace.merge(client_trace, Trace.from_records(server_records))
    trace.meta.update(describe(chosen, workload, config, "virtual", client))
    return trace


@dataclass
class Comparison:
    """Several designs on the same traffic: ``traces[name]`` and a summary table."""

    traces: dict[str, Trace]
    workload: Workload
    server: ServerConfig
    limit_per_minute: float | None = None
    summaries: dict[str, Summary] = field(init=False)

    def __post_init__(self) -> None:
        self.summaries = {name: trace.summary(self.limit_per_minute) for name, trace in self.traces.items()}

    def table(self) -> str:
        """A plain-text table, one row per design."""
        header = (
            f"{'design':<14}{'done':>6}{'failed':>8}{'429s':>7}{'retries':>9}"
            f"{'makespan s':>12}{'per min':>9}{'p50 wait':>10}"
        )
        lines = [header, "-" * len(header)]
        for name, s in self.summaries.items():
            lines.append(
                f"{name:<14}{s.completed:>6}{s.failed:>8}{s.rate_limited:>7}{s.retries:>9}"
                f"{s.makespan:>12.1f}{s.achieved_per_minute:>9.1f}{s.wait_p50:>10.2f}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return f"<Comparison of {', '.join(self.traces)}>\n{self.table()}"


def compare(
    designs: Iterable[Design | str] = ("article", "throttler"),
    workload: Workload | None = None,
    server: ServerConfig | Mapping[str, Any] | None = None,
    **limits: Any,
) -> Comparison:
    """Race several designs on the same seeded traffic against identical fresh servers.

    ``limits`` (``rpm=``, ``max_concurrent=``, ...) configure the *named* designs; a ready-made
    :class:`Design` carries its own.
    """
    workload = workload if workload is not None else Workload()
    config = server_config(server)
    traces: dict[str, Trace] = {}
    for design in designs:
        if isinstance(design, Design):
            traces[design.name] = simulate(design, workload, config)
        else:
            traces[design] = simulate(design, workload, config, **limits)
    return Comparison(traces, workload, config, limit_per_minute=config.rpm)
