"""Slider labs: the panels build, a slider move re-runs the experiment, and no figure is ever leaked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ipywidgets
import matplotlib
import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

from throttle_lab import Trace
from throttle_lab.lab.experiments import DESIGNS, Comparison
from throttle_lab.lab.widgets import (
    LAB_DEFAULTS,
    RACE_DEFAULTS,
    Lab,
    RaceLab,
    lab,
    race_lab,
    race_table,
    run_lab,
    run_race,
    slider_output,
)

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    plt.close("all")
    yield
    plt.close("all")


def test_lab_builds_a_panel_of_controls_over_an_output() -> None:
    panel = lab(requests=20)
    assert isinstance(panel, Lab) and isinstance(panel, ipywidgets.VBox)
    assert set(panel.controls) == set(LAB_DEFAULTS)
    assert list(panel.controls["design"].options) == list(DESIGNS)
    sliders = [
        w for w in panel.controls.values() if isinstance(w, ipywidgets.IntSlider | ipywidgets.FloatSlider)
    ]
    assert len(sliders) >= 8
    assert all(slider.continuous_update is False for slider in sliders)
    assert isinstance(panel.output, ipywidgets.Output)
    assert panel.output in panel.children
    # interactive_output ran it once already.
    assert isinstance(panel.trace, Trace) and panel.trace.meta["workload"]["requests"] == 20
    assert isinstance(panel.figure, Figure)
    assert panel.values["requests"] == 20


def test_update_reruns_with_new_values_and_closes_the_old_figure() -> None:
    panel = lab(requests=20)
    first_trace, first_figure = panel.trace, panel.figure
    assert first_figure is not None
    trace, figure = panel.update(design="article", requests=30, server_rpm=30, server_window=10.0)
    assert trace is panel.trace and figure is panel.figure
    assert trace is not first_trace and figure is not first_figure
    assert trace.meta["design"] == "article"
    assert trace.meta["workload"]["requests"] == 30
    assert trace.meta["server"]["rpm"] == 30 and trace.meta["server"]["window"] == 10.0
    assert trace.count("429") > 0
    assert not plt.fignum_exists(first_figure.number)
    assert plt.get_fignums() == [figure.number]
    # The controls were not moved; the next update starts from them again.
    assert panel.values["design"] == "throttler"
    for _ in range(3):
        panel.update(requests=10)
    assert len(plt.get_fignums()) == 1


def test_moving_a_slider_reruns_through_interactive_output() -> None:
    panel = lab(requests=20)
    panel.controls["requests"].value = 35
    assert panel.trace is not None and panel.trace.meta["workload"]["requests"] == 35
    panel.controls["max_concurrent"].value = 2
    assert panel.trace.meta["client"]["max_concurrent"] == 2
    assert len(plt.get_fignums()) == 1


def test_settings_the_library_refuses_are_reported_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    panel = lab(requests=10)
    panel.controls["server_window"].value = 1.0
    panel.controls["server_rpm"].value = 10  # a bucket of 1/6 request
    assert panel.error is not None and "must hold at least one" in panel.error
    assert "must hold at least one" in capsys.readouterr().out
    panel.controls["server_rpm"].value = 120
    assert panel.error is None


def test_a_design_that_spins_is_named_and_explained_not_dumped(capsys: pytest.CaptureFixture[str]) -> None:
    # The article's sliding window falls into the float trap under Poisson arrivals: on virtual time that
    # is a livelock.  The race says which design it was and why, without the list of pending tasks.
    panel = race_lab(requests=100, arrival="poisson", designs=("throttler", "article"))
    assert panel.error is not None and panel.error.startswith("VirtualTimeLivelock: article: ")
    printed = capsys.readouterr().out
    assert panel.error.splitlines()[0] in printed.splitlines()
    assert "float trap" in printed and "pending tasks" not in printed
    panel.controls["arrival"].value = "burst"
    assert panel.error is None and panel.comparison is not None


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(TypeError, match="unknown lab setting"):
        lab(rpm=5)
    with pytest.raises(TypeError, match="unknown lab setting"):
        run_lab(colour="red")


def test_run_lab_is_a_plain_function() -> None:
    trace, figure = run_lab(design="semaphore", requests=15, max_concurrent=3, server_tpm=20_000, ttft=1.0)
    assert trace.meta["design"] == "semaphore"
    assert trace.meta["client"] == {"rpm": 60, "tpm": 20_000, "window": 60.0, "max_concurrent": 3}
    assert trace.meta["server"]["tpm"] == 20_000
    assert isinstance(figure, Figure) and "semaphore" in figure.get_suptitle()
    again, _ = run_lab(design="semaphore", requests=15, max_concurrent=3, server_tpm=20_000, ttft=1.0)
    assert again.rows() == trace.rows(), "virtual time: the same settings give the same run"


def test_race_lab_compares_the_chosen_designs() -> None:
    panel = race_lab(requests=10)
    assert isinstance(panel, RaceLab) and isinstance(panel, ipywidgets.VBox)
    assert set(panel.controls) == set(RACE_DEFAULTS)
    assert isinstance(panel.controls["designs"], ipywidgets.SelectMultiple)
    assert panel.comparison is not None and list(panel.comparison.traces) == ["article", "throttler"]
    old = panel.figure
    assert old is not None
    comparison, figure = panel.update(designs=("unthrottled", "adaptive", "throttler"), server_rpm=20)
    assert isinstance(comparison, Comparison)
    assert list(comparison.traces) == ["unthrottled", "adaptive", "throttler"]
    assert comparison.server.rpm == 20
    assert not plt.fignum_exists(old.number) and plt.get_fignums() == [figure.number]
    panel.controls["designs"].value = ("throttler",)
    assert panel.comparison is not None and list(panel.comparison.traces) == ["throttler"]
    panel.controls["designs"].value = ()
    assert panel.error is not None and "at least one design" in panel.error


def test_run_race_is_a_plain_function() -> None:
    comparison, figure = run_race(designs=["article", "throttler"], requests=12, server_rpm=30)
    assert comparison.summaries["throttler"].completed == 12
    assert isinstance(figure, Figure)
    with pytest.raises(ValueError):
        run_race(designs=[])


def test_the_race_lab_prints_the_summary_table_its_figure_leaves_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    comparison, figure = run_race(designs=["article", "throttler"], requests=12, server_rpm=30)
    assert not any(ax.tables for ax in figure.axes)  # drawn as text instead: the same columns
    header, rule, *rows = race_table(comparison).splitlines()
    assert header.split()[:3] == ["design", "completed", "failed"] and header.endswith("p99 wait (s)")
    assert set(rule) == {"-"} and len(rule) == len(header)
    assert [row.split()[0] for row in rows] == ["article", "throttler"]
    throttler = comparison.summaries["throttler"]
    assert rows[1].split()[1] == "12/12" and rows[1].endswith(f"{throttler.wait_p99:.2f}")
    assert all(len(row) == len(header) for row in rows), "numbers right-aligned under their column"
    capsys.readouterr()
    race_lab(designs=("article", "throttler"), requests=12, server_rpm=30)
    assert race_table(comparison) in capsys.readouterr().out


def test_a_race_runs_again_only_the_designs_it_has_not_run_with_these_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from throttle_lab.lab import widgets

    ran: list[str] = []
    real = widgets.simulate

    def counting(design: str, *args: Any, **kwargs: Any) -> Trace:
        ran.append(design)
        return real(design, *args, **kwargs)

    monkeypatch.setattr(widgets, "simulate", counting)
    settings = {"requests": 15, "seed": 41, "server_rpm": 30}
    first, _ = run_race(designs=("article",), **settings)
    second, _ = run_race(designs=("article", "throttler"), **settings)
    assert ran == ["article", "throttler"], "the article's run was kept"
    assert first.traces["article"].rows() == second.traces["article"].rows()
    second.traces["article"].meta["design"] = "changed"  # a caller's copy: the kept run is untouched
    third, _ = run_race(designs=("article",), **settings)
    assert third.traces["article"].meta["design"] == "article"
    assert ran == ["article", "throttler"]
    run_race(designs=("article",), **{**settings, "seed": 42})
    assert ran[-1] == "article", "other settings run again"


def test_every_label_fits_its_column_and_requests_stop_at_the_max() -> None:
    from throttle_lab.lab.widgets import REQUESTS_MAX, label_width

    for panel in (lab(requests=5), race_lab(requests=5)):
        assert panel.controls["requests"].max == REQUESTS_MAX
        for widget in panel.controls.values():
            if isinstance(widget, ipywidgets.Checkbox):
                continue
            width = int(widget.style.description_width.removesuffix("px"))
            assert width >= label_width([widget.description])  # "latency: first token (s)" whole


def test_render_png_draws_a_constrained_figure_once_and_show_figure_closes_it() -> None:
    from throttle_lab.lab.widgets import render_png, show_figure

    figure, ax = plt.subplots(layout="constrained")
    ax.plot([0, 1], [0, 1])
    png = render_png(figure)
    assert png.startswith(b"\x89PNG") and figure.get_layout_engine() is None  # layout done, kept
    show_figure(figure)
    assert not plt.fignum_exists(figure.number)


def test_slider_output_keeps_its_figures_out_of_other_threads_flushes() -> None:
    # ipykernel 7 may handle a widget message on a subshell thread and then flush every figure pyplot
    # knows of that was drawn "interactively"; a callback's figures must never be among them.

    seen: list[tuple[int, bool]] = []

    def show(n: int) -> None:
        _figure, ax = plt.subplots()
        ax.plot(range(n))
        seen.append((n, matplotlib.is_interactive()))  # what a concurrent flush would see

    slider = ipywidgets.IntSlider(value=3)
    with plt.ion():
        output = slider_output(show, {"n": slider})
        slider.value = 5
        assert matplotlib.is_interactive()  # restored after each call
    assert isinstance(output, ipywidgets.Output)
    assert seen == [(3, False), (5, False)]
