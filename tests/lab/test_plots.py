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
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from matplotlib.transforms import Bbox
from numpy.typing import NDArray

from mock_server import ServerConfig
from throttle_lab import Event, SlidingWindowLog, TokenBucket, Trace, record, request_scope, run
from throttle_lab.lab import plots
from throttle_lab.lab.experiments import DESIGNS, ClientStack, Design, Workload, compare, simulate
from throttle_lab.lab.plots.drawing import count_labels, limit_labels
from throttle_lab.lab.plots.ticks import InViewLocator

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


def scatter_labelled(ax: Axes, label: str) -> NDArray[np.float64]:
    """The points of the scatter drawn for the legend entry ``label`` (matched by its marker and colour)."""
    legend = ax.get_legend()
    assert legend is not None, "no legend"
    for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=True):
        if text.get_text() == label:
            assert isinstance(handle, Line2D)
            (points,) = [drawn for drawn in drawn_for(ax, handle) if isinstance(drawn, np.ndarray)]
            return points
    raise AssertionError(f"no legend entry {label!r}")


def drawn_for(ax: Axes, handle: Line2D) -> list[Any]:
    """What on ``ax`` (and its twins) a legend handle stands for, with data: offsets, segments, lines."""
    colour = to_rgba(str(handle.get_color()))
    marker = handle.get_marker()
    found: list[Any] = []
    for axes in ax.figure.axes if ax.figure is not None else [ax]:
        if axes.get_position().bounds != ax.get_position().bounds:
            continue
        for artist in axes.collections:
            colours = [to_rgba(c) for c in (*artist.get_facecolor(), *artist.get_edgecolor())]
            if colour not in colours:
                continue
            if isinstance(artist, LineCollection):
                if marker in ("None", "none", "", None) and artist.get_segments():
                    found.append(artist.get_segments())
            elif isinstance(artist, PathCollection) and len(artist.get_offsets()):
                found.append(np.asarray(artist.get_offsets(), dtype=float))
            elif isinstance(artist, PolyCollection) and artist.get_paths():
                found.append(artist.get_paths())
        for line in axes.get_lines():
            if line.get_label() == handle.get_label() and len(line.get_xdata()):
                found.append(line)
    return found


def assert_legend_matches_drawing(ax: Axes) -> None:
    """Every legend entry stands for something drawn, with data (no entry for a thing never drawn)."""
    legend = ax.get_legend()
    assert legend is not None, "no legend"
    for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=True):
        if isinstance(handle, Line2D):
            assert drawn_for(ax, handle), f"legend entry {text.get_text()!r} has nothing drawn"


def extents(artists: list[Any], renderer: Any) -> list[tuple[str, Bbox]]:
    """The on-screen boxes of the visible, non-empty texts (and other artists) among ``artists``."""
    boxes = []
    for artist in artists:
        if not artist.get_visible() or (isinstance(artist, Text) and not artist.get_text().strip()):
            continue
        boxes.append(
            (
                str(artist.get_text() if isinstance(artist, Text) else artist),
                artist.get_window_extent(renderer),
            )
        )
    return boxes


def overlapping(
    boxes: list[tuple[str, Bbox]], others: list[tuple[str, Bbox]] | None = None
) -> list[tuple[str, str]]:
    """Pairs of boxes that overlap (by more than a pixel): within ``boxes``, or between it and ``others``."""
    pairs = []
    for i, (name, box) in enumerate(boxes):
        for other, obox in others if others is not None else boxes[i + 1 :]:
            if box is obox:
                continue
            if (
                min(box.x1, obox.x1) - max(box.x0, obox.x0) > 1
                and min(box.y1, obox.y1) - max(box.y0, obox.y0) > 1
            ):
                pairs.append((name, other))
    return pairs


def renderer_of(fig: Figure) -> Any:
    """Draw the figure (layout included) and return the Agg renderer that measured it."""
    assert isinstance(fig.canvas, FigureCanvasAgg)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


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
    # Every attempt is drawn: a bar, a dot (answered at once), or -- answered at once with a 429 -- its x.
    dots = len(scatter_labelled(ax, "answered at once")) if "answered at once" in legend_labels(ax) else 0
    assert segments + dots + article.count("429", "client") >= attempts + retries
    assert_legend_matches_drawing(ax)
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


def test_timeline_of_a_bare_limiter_shows_waiting_and_instant_grants() -> None:
    trace = bucket_trace()
    ax = plots.timeline(trace)
    # A bucket holds nothing: each grant is an instant (a dot, not an invisible bar), and the waits end at
    # the grants (1 s apart).
    assert legend_labels(ax) == ["waiting (queued)", "granted (holds nothing)"]
    (waiting,) = (c for c in ax.collections if isinstance(c, LineCollection))
    assert [round(seg[1][0] - seg[0][0], 6) for seg in waiting.get_segments()] == [1.0, 2.0, 3.0]
    dots = scatter_labelled(ax, "granted (holds nothing)")
    np.testing.assert_allclose(dots, [[0.0, 0], [0.0, 1], [1.0, 2], [2.0, 3], [3.0, 4]], atol=1e-9)
    assert_legend_matches_drawing(ax)
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


def test_rates_tokens_on_a_twin_axis(throttled: Trace) -> None:
    ax = plots.rates(throttled)
    twins = [other for other in ax.figure.axes if other is not ax]
    assert len(twins) == 1
    twin = twins[0]
    assert twin.get_ylabel() == "tokens / min"
    tpm_line = line_labelled(twin, "limit 20,000 tpm")
    assert set(ys(tpm_line)) == {20_000}
    # Asked for, both limit lines sit at the same height: the axes are scaled by tpm / rpm.
    aligned = plots.rates(throttled, align_limits=True)
    (aligned_twin,) = [other for other in aligned.figure.axes if other is not aligned]
    assert aligned_twin.get_ylim()[1] / aligned.get_ylim()[1] == pytest.approx(20_000 / 60)
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


def test_panels_make_ticks_only_where_they_are_seen(throttled: Trace) -> None:
    # matplotlib makes a Tick (three lines, two texts) for every location a locator returns; the default
    # one returns a location past each end of the view that is never drawn.
    fig = plots.dashboard(throttled, layout="fixed")
    fig.canvas.draw()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            locations = list(axis.get_majorticklocs())
            assert locations and all(low <= v <= high for v in locations), ax.get_title()
            locator = axis.get_major_locator()
            if isinstance(locator, InViewLocator):  # the same ticks as drawn without it
                seen = [v for v in locator.base() if low <= v <= high]
                assert locations == pytest.approx(seen)
            assert len(axis.get_major_ticks()) == len(locations)
            assert len(axis.majorTicks) == len(locations), "no tick made for an unseen location"


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


@pytest.mark.parametrize("table", [True, False])
def test_race_fixed_layout_keeps_every_label_in_its_own_space(table: bool) -> None:
    """The slider lab's race (``layout="fixed"``): nothing overlaps, nothing is cut off, as constrained."""
    # Every design: the tallest race, where a heading placed as a fraction of the height would fall on
    # the first row's titles.  Without the table (the slider lab's), the last x axis label is the lowest.
    comparison = compare(DESIGNS, Workload(requests=30), {"rpm": 20, "tpm": 20_000, "window": 10})
    fig = plots.race(comparison, layout="fixed", table=table)
    assert fig.get_layout_engine() is None
    assert len([t for ax in fig.axes for t in ax.tables]) == (1 if table else 0)
    fig.canvas.draw()
    canvas = fig.canvas
    assert isinstance(canvas, FigureCanvasAgg)
    renderer = canvas.get_renderer()
    page = fig.bbox
    panels = [ax for ax in fig.axes if ax.get_title()]
    boxes: list[tuple[str, Bbox]] = [(f"axes {ax.get_title()}", ax.get_window_extent()) for ax in panels]
    (heading,) = [text for text in fig.texts if text.get_text() == fig.get_suptitle()]
    texts: list[tuple[str, Bbox]] = [("heading", heading.get_window_extent(renderer))]
    for ax in panels:
        texts.append((f"title {ax.get_title()}", ax.title.get_window_extent(renderer)))
        texts.append((f"y label {ax.get_title()}", ax.yaxis.label.get_window_extent(renderer)))
        if ax.get_xlabel():
            texts.append((f"x label {ax.get_title()}", ax.xaxis.label.get_window_extent(renderer)))
        legend = ax.get_legend()
        if legend is not None:
            texts.append((f"legend {ax.get_title()}", legend.get_window_extent(renderer)))
    for name, box in texts:
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, name
        for other, other_box in texts + boxes:
            if other != name:
                assert not box.overlaps(other_box), f"{name} overlaps {other}"
    plt.close(fig)


def test_fit_margins_keeps_every_label_of_a_column_of_panels_on_the_page_and_apart(throttled: Trace) -> None:
    """The lessons' slider labs (``plots.fit_margins`` instead of ``layout="constrained"``)."""
    # The hardest column the lessons draw: titles of two lines, a legend past a tokens axis, a heading.
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True, height_ratios=[3, 1.3])
    fig.suptitle("a heading over the panels")
    plots.timeline(throttled, ax=top)
    plots.rates(throttled, ax=bottom, window=10)
    plots.fit_margins(fig)
    assert fig.get_layout_engine() is None
    renderer = renderer_of(fig)
    page = fig.bbox
    twin = plots.drawing.twin_of(bottom)
    assert twin is not None
    texts: list[tuple[str, Bbox]] = [("heading", fig.texts[0].get_window_extent(renderer))]
    for name, ax in (("top", top), ("bottom", bottom), ("tokens", twin)):
        texts += [(f"{name} {what}", box) for what, box in extents([ax.title, ax.yaxis.label], renderer)]
        texts += [(f"{name} ticks", box) for _, box in extents(list(ax.get_yticklabels()), renderer)]
        if (legend := ax.get_legend()) is not None:
            texts.append((f"{name} legend", legend.get_window_extent(renderer)))
    texts += [("x label", bottom.xaxis.label.get_window_extent(renderer))]
    texts += [("x ticks", box) for _, box in extents(list(bottom.get_xticklabels()), renderer)]
    for name, box in texts:
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, name
    panels = [("top axes", top.get_window_extent()), ("bottom axes", bottom.get_window_extent())]
    assert not overlapping([t for t in texts if "ticks" not in t[0]], panels), "a text covers a panel"
    assert not overlapping([t for t in texts if not t[0].endswith("ticks")]), "two texts overlap"
    # Nothing wasted either: the panels fill the page but for the margins' texts and a little air.
    assert top.get_window_extent().x0 < 1.3 * fig.dpi and bottom.get_window_extent().y0 < 0.8 * fig.dpi


# ---------------------------------------------------------------------------------------------- at a glance
# What a learner found hard to read (issue #12, section 5), each checked on what is drawn, not on pixels.


def window_trace(limiter: Callable[[], Any], arrivals: list[float]) -> Trace:
    """A bare limiter (no client): one caller per arrival time, each acquiring once (as lesson 04 does)."""

    async def main() -> None:
        limit = limiter()
        loop = asyncio.get_running_loop()
        tasks = []

        async def caller(i: int) -> None:
            with request_scope(f"r{i:02}"):
                await limit.acquire()

        for i, at in enumerate(arrivals):
            if at > loop.time():
                await asyncio.sleep(at - loop.time())
            tasks.append(asyncio.create_task(caller(i)))
        await asyncio.gather(*tasks)

    with record() as trace:
        run(main())
    return trace


def test_instant_grants_are_drawn_and_the_legend_lists_only_what_is_drawn() -> None:
    # Lessons 03 and 04: requests granted at once had empty rows, and a "held" entry stood for nothing.
    for trace in (
        window_trace(lambda: TokenBucket(rate=2.0, capacity=5), [0.0] * 12 + [8.0] * 8),
        window_trace(lambda: SlidingWindowLog(10, 10.0), [9.0] * 20),
    ):
        ax = plots.timeline(trace)
        dots = scatter_labelled(ax, "granted (holds nothing)")
        grants = {e.request: e.t for e in trace if e.kind == "granted"}
        rows = [str(label.get_text()) for label in ax.get_yticklabels()]
        drawn = {rows[round(float(y))]: t for t, y in dots}
        assert drawn == pytest.approx(grants), "one dot per grant, on its request's row, at its time"
        assert "held" not in legend_labels(ax)  # nothing is held, so nothing says so
        assert_legend_matches_drawing(ax)
    # A client whose answer came back at once: a dot too (and a 429 at once keeps its x, without a dot).
    answered = Trace(
        [
            Event(0.0, "sent", "client", "a"),
            Event(0.0, "response", "client", "a", detail={"status": 200}),
            Event(0.0, "done", "client", "a"),
            Event(0.0, "sent", "client", "b"),
            Event(0.0, "response", "client", "b", detail={"status": 429}),
            Event(0.0, "429", "client", "b"),
            Event(0.0, "failed", "client", "b"),
            Event(1.0, "sent", "client", "c"),
            Event(3.0, "response", "client", "c", detail={"status": 200}),
            Event(3.0, "done", "client", "c"),
        ]
    )
    ax = plots.timeline(answered)
    np.testing.assert_allclose(scatter_labelled(ax, "answered at once"), [[0.0, 0]])
    assert {"in flight", "answered at once", "429 answer", "gave up"} <= set(legend_labels(ax))
    assert_legend_matches_drawing(ax)


def test_429s_close_together_are_counted_instead_of_piling_up() -> None:
    # Lessons 01 and 06: hundreds of 429 crosses merged into one solid band.
    events = [Event(0.0, "sent", "client", "first")]
    for i in range(400):
        t = 5.0 + i * 0.25
        events += [Event(t, "sent", "client", i), Event(t, "429", "client", i)]
    events += [Event(150.0, "sent", "client", "last"), Event(150.0, "429", "client", "last")]
    ax = plots.rates(Trace(events), window=10)
    rug = line_labelled(ax, "429 (401)")
    renderer = renderer_of(ax.figure)
    crosses = ax.transData.transform(np.column_stack([xs(rug), np.zeros(len(xs(rug)))]))[:, 0]
    cross_px = rug.get_markersize() * ax.figure.dpi / 72.0
    assert np.all(np.diff(crosses) >= cross_px), "no two crosses overlap"
    numbers = count_labels(ax)
    singles = len(xs(rug)) - len(numbers)
    assert sum(int(text.get_text()) for text in numbers) + singles == 401, "the numbers add up to every 429"
    assert not overlapping(extents(list(numbers), renderer)), "no two numbers overlap"
    assert 150.0 in xs(rug), "a lone 429 keeps its exact time"
    assert len(xs(rug)) < 60, "a handful of marks, whatever the number of 429s"


def test_rates_with_rpm_and_tpm_keep_the_two_limits_apart_labelled_and_the_legend_off_the_axis(
    throttled: Trace,
) -> None:
    # Lesson 05: the two limit lines landed on one pixel row, and the legend covered the right-hand axis.
    for trace in (throttled, simulate("throttler", Workload(requests=60), {"rpm": 60, "tpm": 3_000})):
        ax = plots.rates(trace)
        (twin,) = [other for other in ax.figure.axes if other is not ax]
        rpm_line, tpm_line = line_labelled(ax, "limit "), line_labelled(twin, "limit ")
        renderer = renderer_of(ax.figure)
        rpm_y = ax.transData.transform((0.0, ys(rpm_line)[0]))[1]
        tpm_y = twin.transData.transform((0.0, ys(tpm_line)[0]))[1]
        assert abs(rpm_y - tpm_y) >= 0.1 * ax.bbox.height, "the limits sit on different rows"
        assert rpm_line.get_linestyle() != tpm_line.get_linestyle()
        assert to_rgba(str(rpm_line.get_color())) != to_rgba(str(tpm_line.get_color()))
        written = {text.get_text() for text in (*limit_labels(ax), *limit_labels(twin)) if text.get_visible()}
        assert any("rpm" in text for text in written) and any("tpm" in text for text in written)
        legend = ax.get_legend()
        assert legend is not None
        right_axis = extents([*twin.get_yticklabels(), twin.yaxis.label], renderer)
        assert not overlapping([("legend", legend.get_window_extent(renderer))], right_axis)


def visible_labels(fig: Figure, renderer: Any) -> tuple[list[tuple[str, Bbox]], list[tuple[str, Bbox]]]:
    """Every y-axis label, and every y tick label, of every panel of ``fig``, as on-screen boxes."""
    labels = extents([ax.yaxis.label for ax in fig.axes], renderer)
    ticks = [box for ax in fig.axes for box in extents(list(ax.get_yticklabels()), renderer)]
    return labels, ticks


def test_race_labels_and_legends_never_overlap() -> None:
    # Lesson 05's race lab (run_race draws plots.race): y labels ran into each other and into the legend.
    server = {"rpm": 120, "tpm": 10_000, "window": 10}
    for requests in (20, 150):
        fig = plots.race(compare(["article", "throttler"], Workload(requests=requests), server))
        renderer = renderer_of(fig)
        labels, ticks = visible_labels(fig, renderer)
        assert len(labels) >= 6  # two timelines, two rates panels, two tokens axes
        assert not overlapping(labels), "y-axis labels overlap"
        assert not overlapping(labels, ticks), "a y-axis label overlaps tick labels"
        for ax in fig.axes:
            assert not overlapping(extents(list(ax.get_yticklabels()), renderer)), ax.get_title()
        legends = [
            ("legend", legend.get_window_extent(renderer)) for ax in fig.axes if (legend := ax.get_legend())
        ]
        assert len(legends) == 2
        assert not overlapping(legends, labels + ticks), "a legend covers an axis"
        # The rates panels share one request scale and keep their two limits apart on it.
        for ax in fig.axes:
            if ax.get_title().endswith("rates"):
                twin = plots.drawing.twin_of(ax)
                assert twin is not None
                rpm_y = ax.transData.transform((0.0, 120.0))[1]
                tpm_y = twin.transData.transform((0.0, 10_000.0))[1]
                assert abs(rpm_y - tpm_y) >= 0.1 * ax.bbox.height
        plt.close(fig)


def test_a_limit_stays_visible_when_the_data_runs_exactly_along_it() -> None:
    # Lesson 04: a sliding log sends exactly its limit, and its line hid the limit line.
    design = Design("sliding log", lambda: ClientStack(limiter=SlidingWindowLog(10, 10.0)))
    trace = simulate(
        design,
        Workload(requests=60, arrival="bursts", burst_size=20, per_minute=48),
        {"rpm": 60, "window": 10},
    )
    ax = plots.rates(trace, window=10)
    sent, limit = line_labelled(ax, "sent"), line_labelled(ax, "limit 60 rpm")
    assert np.max(ys(sent)) == 60, "the data does run along the limit"
    assert_limit_on_top(ax, limit, data=[line for line in ax.get_lines() if line is not limit])
    # The limiter's own level, against its limit, in the level plot.
    bare = window_trace(lambda: SlidingWindowLog(10, 10.0), [0.0] * 25)
    level = plots.level(bare, limit=10)
    in_window = line_labelled(level, "in window")
    assert np.max(ys(in_window)) == 10
    assert_limit_on_top(level, line_labelled(level, "limit 10"), data=[in_window])
    # And the in-flight count of a client that fills its slots, against its cap.
    flying = plots.in_flight(
        simulate("throttler", Workload(requests=30), {"rpm": 600}, max_concurrent=3), cap=3
    )
    assert_limit_on_top(flying, line_labelled(flying, "cap 3"), data=[line_labelled(flying, "in flight")])


def assert_limit_on_top(ax: Axes, limit: Line2D, data: list[Line2D]) -> None:
    """The limit is drawn above the data, in its own style, over a wider band, its value written on it."""
    value = ys(limit)[0]
    for line in data:
        if str(line.get_label()).startswith("_"):
            continue  # the limit's own band
        assert limit.get_zorder() > line.get_zorder(), line.get_label()
        assert limit.get_linestyle() != line.get_linestyle() or limit.get_color() != line.get_color()
    bands = [
        line for line in ax.get_lines() if str(line.get_label()).startswith("_") and set(ys(line)) == {value}
    ]
    assert bands and all(band.get_linewidth() > limit.get_linewidth() + 3 for band in bands)
    assert all(band.get_zorder() < limit.get_zorder() for band in bands)
    (text,) = [text for text in limit_labels(ax) if text.get_position()[1] == value]
    assert text.get_visible() and str(limit.get_label()).split(" (")[0] in text.get_text()
    low, high = ax.get_ylim()
    assert low <= value < high


def test_extra_curves_lie_within_the_chart() -> None:
    # Lesson 07: the AIMD rate, drawn onto a rates panel after the fact, left the chart's y-range.
    trace = simulate("throttler", Workload(requests=40, arrival="steady", per_minute=60), {"rpm": 120})
    history = [(0.5, 240.0), (20.0, 12.0), (30.0, 300.0)]
    ax = plots.rates(trace, window=10, curves={"AIMD rate": history})
    curve = line_labelled(ax, "AIMD rate")
    low, high = ax.get_ylim()
    assert low <= np.min(ys(curve)) and np.max(ys(curve)) < high
    assert ys(curve)[-1] == 300.0 and xs(curve)[-1] >= trace.end, "held to the end of the run"
    start, end = ax.get_xlim()
    assert start <= np.min(xs(curve)) and np.max(xs(curve)) <= end
    assert "AIMD rate" in legend_labels(ax)
    assert_legend_matches_drawing(ax)


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
