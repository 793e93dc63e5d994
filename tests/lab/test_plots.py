"""Plots: each one draws what the trace says (limit lines where the limits are, exact peaks, marks for
every 429), titles and labels itself, stays a handful of artists for thousands of requests, and never
raises on an empty or one-request trace."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from numpy.typing import NDArray

from mock_server import ServerConfig
from throttle_lab import Event, TokenBucket, Trace, record, request_scope, run
from throttle_lab.lab import plots
from throttle_lab.lab.experiments import Workload, compare, simulate

matplotlib.use("Agg")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def article() -> Trace:
    """The article's design against a tight server: 429s, retries, give-ups."""
    return simulate("article", Workload(requests=40, seed=1), {"rpm": 30, "window": 10})


@pytest.fixture(scope="module")
def throttled() -> Trace:
    """Our throttler with RPM, TPM and a concurrency cap, on Poisson traffic."""
    trace = simulate(
        "throttler",
        Workload(requests=80, arrival="poisson", per_minute=120, seed=2),
        {"rpm": 60, "tpm": 20_000, "window": 10},
        max_concurrent=3,
    )
    return trace


@pytest.fixture(scope="module")
def brownout() -> Trace:
    server = {"rpm": 120, "window": 10, "limit_schedule": ((30.0, 40, None), (60.0, 120, None))}
    return simulate("adaptive", Workload(requests=120, arrival="steady", per_minute=150, seed=3), server)


@pytest.fixture(scope="module")
def single() -> Trace:
    return simulate("throttler", Workload(requests=1), {"rpm": 60})


def bucket_trace() -> Trace:
    """A bare limiter, no client: five grants from a bucket of two."""

    async def main() -> None:
        bucket = TokenBucket(rate=1.0, capacity=2, name="bucket")

        async def one(name: str) -> None:
            with request_scope(name):
                await bucket.acquire()

        await asyncio.gather(*(one(f"r{i}") for i in range(5)))

    with record() as trace:
        run(main())
    return trace


def texts(ax: Axes) -> str:
    return " ".join(t.get_text() for t in ax.texts)


def legend_labels(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None, "no legend"
    return [t.get_text() for t in legend.get_texts()]


def xs(line: Line2D) -> NDArray[np.float64]:
    return np.asarray(line.get_xdata(), dtype=float)


def ys(line: Line2D) -> NDArray[np.float64]:
    return np.asarray(line.get_ydata(), dtype=float)


def line_labelled(ax: Axes, prefix: str) -> Line2D:
    for line in ax.get_lines():
        if str(line.get_label()).startswith(prefix):
            return line
    raise AssertionError(f"no line labelled {prefix!r} in {[line.get_label() for line in ax.get_lines()]}")


# ---------------------------------------------------------------------------------------------- timeline
def test_timeline_draws_every_attempt_and_marks_429s_retries_and_give_ups(article: Trace) -> None:
    ax = plots.timeline(article)
    assert isinstance(ax, Axes)
    title = ax.get_title()
    assert "article" in title and "30 rpm" in title and "40 requests" in title
    assert ax.get_xlabel() == "time (s)"
    assert "request" in ax.get_ylabel()
    labels = legend_labels(ax)
    for label in ("in flight", "waiting to retry", "429 answer", "gave up", "server: arrived"):
        assert label in labels
    segments = sum(len(c.get_segments()) for c in ax.collections if isinstance(c, LineCollection))
    attempts = article.count("sent", "client")
    retries = article.count("retry", "client")
    assert segments >= attempts + retries
    # 429 crosses: one per 429 the client saw.
    sizes = [len(np.asarray(c.get_offsets())) for c in ax.collections if not isinstance(c, LineCollection)]
    assert article.count("429", "client") in sizes
    low, high = ax.get_ylim()
    assert low > high, "the first request is at the top"


def test_timeline_subsamples_many_requests(throttled: Trace) -> None:
    ax = plots.timeline(throttled, max_rows=10)
    assert "10 of 80 shown" in ax.get_ylabel()
    flying = max(ax.collections, key=lambda c: float(np.max(c.get_linewidth())))  # the thick bars
    assert isinstance(flying, LineCollection)
    assert len(flying.get_segments()) == 10  # one attempt each: the throttler never gets a 429
    with pytest.raises(ValueError):
        plots.timeline(throttled, max_rows=0)


def test_timeline_of_a_bare_limiter_shows_waiting_and_held() -> None:
    trace = bucket_trace()
    ax = plots.timeline(trace)
    assert "held" in legend_labels(ax)
    assert "waiting (queued)" in legend_labels(ax)
    # A bucket holds nothing: each grant is an instant, and the waits end at the grants (1 s apart).
    waiting, held = (c for c in ax.collections if isinstance(c, LineCollection))
    assert [round(seg[1][0] - seg[0][0], 6) for seg in waiting.get_segments()] == [1.0, 2.0, 3.0]
    assert all(seg[1][0] - seg[0][0] < 1e-6 for seg in held.get_segments())
    flying = line_labelled(plots.in_flight(trace), "held")
    assert np.max(ys(flying)) == 0


def test_timeline_stays_a_few_artists_for_thousands_of_requests() -> None:
    events = []
    for i in range(3000):
        t = i * 0.02
        events += [
            Event(t, "queued", "lim", i),
            Event(t + 1.0, "granted", "lim", i, detail={"waited": 1.0, "tokens": 0.0}),
            Event(t + 1.0, "sent", "client", i),
            Event(t + 1.5, "response", "client", i, detail={"status": 200}),
            Event(t + 1.5, "done", "client", i),
        ]
    trace = Trace(events)
    for draw in (plots.timeline, plots.rates, plots.in_flight):
        ax = draw(trace)
        assert len(ax.collections) <= 8 and len(ax.lines) <= 6, draw.__name__
        ax.figure.canvas.draw()


# ---------------------------------------------------------------------------------------------- rates
def test_rates_peak_is_exact_and_the_limit_line_is_at_the_limit(article: Trace) -> None:
    ax = plots.rates(article, tokens=False)
    assert ax.get_ylabel() == "requests / min" and ax.get_xlabel() == "time (s)"
    sent = line_labelled(ax, "sent")
    # The rolling count is drawn exactly: its peak is the busiest 60 s, as max_in_window counts it.
    assert np.max(ys(sent)) == article.max_in_window("sent", 60, source="client")
    limit = line_labelled(ax, "limit 30 rpm")
    assert set(ys(limit)) == {30}
    labels = legend_labels(ax)
    assert f"429 ({article.count('429', 'client')})" in labels
    assert "accepted by server" in labels
    assert ax.get_ylim()[1] > 30


def test_rates_explicit_limits_and_window(article: Trace) -> None:
    ax = plots.rates(article, rpm=45, window=10, tokens=False)
    assert set(ys(line_labelled(ax, "limit 45 rpm"))) == {45}
    assert "rolling 10 s" in ax.get_ylabel()
    sent = line_labelled(ax, "sent")
    assert np.max(ys(sent)) == pytest.approx(article.max_in_window("sent", 10, source="client") * 6)
    with pytest.raises(ValueError):
        plots.rates(article, window=0)


def test_rates_tokens_on_a_twin_axis_scaled_so_the_limits_coincide(throttled: Trace) -> None:
    ax = plots.rates(throttled)
    twins = [other for other in ax.figure.axes if other is not ax]
    assert len(twins) == 1
    twin = twins[0]
    assert twin.get_ylabel() == "tokens / min"
    tpm_line = line_labelled(twin, "limit 20,000 tpm")
    assert set(ys(tpm_line)) == {20_000}
    # Both limit lines sit at the same height: the axes are scaled by tpm / rpm.
    assert twin.get_ylim()[1] / ax.get_ylim()[1] == pytest.approx(20_000 / 60)
    assert "tokens / min (right)" in legend_labels(ax)
    # No tokens limit known: no tokens line unless asked for.
    assert len(plots.rates(simulate("throttler", Workload(requests=5))).figure.axes) == 1


def test_rates_draws_the_servers_limit_schedule(brownout: Trace) -> None:
    ax = plots.rates(brownout)
    schedule = line_labelled(ax, "server rpm limit")
    values = set(ys(schedule).tolist())
    assert {120.0, 40.0} <= values
    assert "scheduled changes" in ax.get_title()


def test_rates_show_what_a_client_side_throttle_refused_at_home() -> None:
    # Without this line the SRE design's plot looked exactly like "unthrottled" (its refusals never reach
    # the wire, so they are not in the "sent" line).
    server = ServerConfig(rpm=30, window=10)
    trace = simulate("sre", Workload(requests=150, arrival="steady", per_minute=200, seed=3), server)
    refused = trace.filter(kind="rejected", source="client")
    assert len(refused) > 0
    ax = plots.rates(trace, window=10)
    line = line_labelled(ax, f"refused at home ({len(refused)})")
    assert np.max(ys(line)) > 0


# ---------------------------------------------------------------------------------------------- in flight
def test_in_flight_never_exceeds_the_cap_and_draws_it(throttled: Trace) -> None:
    ax = plots.in_flight(throttled, cap=3)
    flying = line_labelled(ax, "in flight")
    assert np.max(ys(flying)) == 3  # the throttler fills its three slots, never more
    assert set(ys(line_labelled(ax, "cap 3"))) == {3}
    assert "waiting (right)" in legend_labels(ax)
    assert ax.get_ylabel() == "in flight"


def test_in_flight_counts_match_the_spans() -> None:
    trace = Trace(
        [
            Event(0.0, "sent", "client", "a"),
            Event(0.0, "sent", "client", "b"),
            Event(1.0, "sent", "client", "c"),
            Event(2.0, "response", "client", "a"),
            Event(3.0, "response", "client", "b"),
            Event(3.0, "response", "client", "c"),
        ],
        meta={"server": {"max_concurrent": 2}, "client": {"max_concurrent": 3}},
    )
    ax = plots.in_flight(trace, waiting=False)
    flying = line_labelled(ax, "in flight")
    pairs = dict(zip(xs(flying), ys(flying), strict=True))
    assert pairs[0.0] == 2 and pairs[1.0] == 3 and pairs[2.0] == 2 and pairs[3.0] == 0
    assert "cap 3" in legend_labels(ax) and "server cap 2" in legend_labels(ax)


# ---------------------------------------------------------------------------------------------- level
def test_level_of_the_throttlers_buckets(throttled: Trace) -> None:
    ax = plots.level(throttled)
    labels = legend_labels(ax)
    assert "requests left in bucket" in labels and "tokens left in bucket (right)" in labels
    requests_left = line_labelled(ax, "requests left")
    assert len(xs(requests_left)) == throttled.count("granted", "throttler")
    assert min(ys(requests_left)) >= 0


def test_level_of_a_bare_bucket_and_of_a_design_without_one() -> None:
    ax = plots.level(bucket_trace(), source="bucket")
    tokens = line_labelled(ax, "tokens in bucket")
    assert list(ys(tokens)) == pytest.approx([1.0, 0.0, 0.0, 0.0, 0.0])
    assert list(xs(tokens)) == pytest.approx([0.0, 0.0, 1.0, 2.0, 3.0])
    empty = plots.level(simulate("unthrottled", Workload(requests=3)))
    assert "no limiter level recorded" in texts(empty)


# ---------------------------------------------------------------------------------------------- waits
def test_waits_marks_the_summarys_percentiles(throttled: Trace) -> None:
    ax = plots.waits(throttled)
    summary = throttled.summary()
    p50 = line_labelled(ax, "p50")
    p99 = line_labelled(ax, "p99")
    assert xs(p50)[0] == pytest.approx(summary.wait_p50)
    assert xs(p99)[0] == pytest.approx(summary.wait_p99)
    assert sum(p.get_height() for p in ax.patches if isinstance(p, Rectangle)) == summary.requests
    assert ax.get_xlabel() == "wait (s)"


# ---------------------------------------------------------------------------------------------- figures
def test_dashboard_stacks_three_panels_on_one_time_axis(throttled: Trace) -> None:
    for layout in ("constrained", "fixed"):
        assert layout in ("constrained", "fixed")
        fig = plots.dashboard(throttled, layout=layout)
        assert isinstance(fig, Figure)
        main = fig.axes[:3]
        assert [ax.get_title() for ax in main] == ["Requests", "Rates", "In flight"]
        assert len({ax.get_xlim() for ax in main}) == 1
        suptitle = fig.get_suptitle()
        assert "throttler" in suptitle and "20,000 tpm" in suptitle


def test_race_from_a_comparison_lists_and_mappings() -> None:
    comparison = compare(["unthrottled", "throttler"], Workload(requests=20), {"rpm": 20, "window": 10})
    fig = plots.race(comparison)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    for name in ("unthrottled", "throttler"):
        assert f"{name}: requests" in titles and f"{name}: rates" in titles
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len({ax.get_xlim() for ax in panels}) == 1, "one shared time axis"
    rate_panels = [ax for ax in panels if ax.get_title().endswith("rates")]
    assert len({ax.get_ylim() for ax in rate_panels}) == 1, "rates on one scale"
    table = [child for ax in fig.axes for child in ax.tables]
    assert len(table) == 1
    cells = " ".join(cell.get_text().get_text() for cell in table[0].get_celld().values())
    assert "unthrottled" in cells and "20/20" in cells and "429s" in cells
    assert "Race on the same traffic" in fig.get_suptitle()
    plt.close(fig)
    as_list = plots.race(list(comparison.traces.values()))
    assert "throttler: requests" in [ax.get_title() for ax in as_list.axes]
    as_dict = plots.race({"mine": comparison.traces["throttler"]})
    assert "mine: rates" in [ax.get_title() for ax in as_dict.axes]


# ---------------------------------------------------------------------------------------------- edge cases
DRAWINGS: list[Callable[[Trace], Any]] = [
    plots.timeline,
    plots.rates,
    plots.in_flight,
    plots.level,
    plots.waits,
    plots.dashboard,
    lambda trace: plots.race([trace]),
]


@pytest.mark.parametrize("draw", DRAWINGS, ids=lambda d: getattr(d, "__name__", "race"))
def test_empty_and_single_request_traces_draw_without_error(
    draw: Callable[[Trace], Any], single: Trace
) -> None:
    for trace in (Trace(), single, Trace([Event(5.0, "sent", "client", "x")])):
        drawn = draw(trace)
        fig = drawn if isinstance(drawn, Figure) else drawn.figure
        fig.canvas.draw()
    empty = draw(Trace())
    if isinstance(empty, Axes):
        assert "no requests" in texts(empty) or "no limiter level" in texts(empty)


def test_draws_on_a_given_axes_and_never_shows(article: Trace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("a plot called show()"))
    fig, axes = plt.subplots(2, 3)
    drawn = [
        plots.timeline(article, axes[0][0]),
        plots.rates(article, axes[0][1]),
        plots.in_flight(article, axes[0][2]),
        plots.level(article, ax=axes[1][0]),
        plots.waits(article, axes[1][1]),
    ]
    assert drawn == [axes[0][0], axes[0][1], axes[0][2], axes[1][0], axes[1][1]]
    assert plt.get_fignums() == [fig.number]


def test_palette_is_okabe_ito() -> None:
    assert list(plots.OKABE_ITO.values()) == [
        "#000000",
        "#E69F00",
        "#56B4E9",
        "#009E73",
        "#F0E442",
        "#0072B2",
        "#D55E00",
        "#CC79A7",
    ]


def test_save_examples_writes_one_png_per_plot(tmp_path: Path) -> None:
    paths = plots.save_examples(tmp_path, dpi=40)
    names = {path.name for path in paths}
    expected = {"timeline", "rates", "in_flight", "level", "race", "waits", "dashboard"}
    assert names == {f"{name}.png" for name in expected}
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC
    assert plt.get_fignums() == []
