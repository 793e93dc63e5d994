"""Lesson 10's slider lab: workers on one key on virtual time, a limiter each or one shared."""

from __future__ import annotations

from collections.abc import Iterator

import matplotlib
import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

from throttle_lab.lab.worker_lab import WORKER_LAB_DEFAULTS, run_workers_lab, simulate_workers

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    plt.close("all")
    yield
    plt.close("all")


def test_a_limiter_each_sends_several_times_the_keys_limit() -> None:
    run = simulate_workers()  # the lesson's run 1: 4 workers, 600/min and burst 3 each
    assert run.sent == 4 * 15
    assert run.limited > 0
    # Each worker alone keeps to its GCRA: 3 at once, then one every 0.1 s, all four in step.
    for mine in run.sends:
        assert mine[:3] == [0.0, 0.0, 0.0]
        assert mine[3] == pytest.approx(0.1) and mine[-1] == pytest.approx(1.2)
    # The key's bucket of 10 took the first 10 of the 12 sent at once; everything else was too fast.
    assert sum(t == 0.0 for mine in run.refused for t in mine) == 2


def test_one_shared_limit_gets_no_429s_at_the_keys_rate() -> None:
    run = simulate_workers(shared=True)
    assert run.sent == 60 and run.limited == 0
    times = sorted(t for mine in run.sends for t in mine)
    assert times[:3] == [0.0, 0.0, 0.0]
    assert times[-1] == pytest.approx(5.7)  # 3 at once, then 57 more at 10 per second
    assert all(len(mine) == 15 for mine in run.sends)  # every worker got its turns


def test_the_exercises_split_gets_no_429s_and_a_worker_alone_only_its_share() -> None:
    split = simulate_workers(rpm=150, burst=2)
    assert split.limited == 0
    alone = simulate_workers(workers=1, rpm=150, burst=2)
    assert alone.sends[0][-1] == pytest.approx(13 * 0.4)  # 2 at once, then one every 0.4 s


def test_run_workers_lab_draws_a_figure_and_summarises() -> None:
    run = run_workers_lab(workers=2, requests=5)
    assert isinstance(run.figure, Figure)
    text = run.summary()
    assert "2 workers, a limiter each" in text and "refused (429)" in text


@pytest.mark.parametrize(
    ("values", "error"),
    [({"burst": 0.5}, ValueError), ({"workers": 0}, ValueError), ({"colour": "red"}, TypeError)],
)
def test_bad_settings_are_refused(values: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        simulate_workers(**values)


def test_defaults_are_the_lessons_setup() -> None:
    assert WORKER_LAB_DEFAULTS["server_rpm"] == 600 and WORKER_LAB_DEFAULTS["server_window"] == 1.0


def test_the_picture_counts_what_got_through_and_lists_only_what_it_drew() -> None:
    # Bursts go out at one instant, so refused and accepted sends share timestamps: counted, not matched.
    run = run_workers_lab(workers=4, requests=15, rpm=600, burst=3)
    assert run.figure is not None
    top, bottom = run.figure.axes[:2]
    lines = {str(line.get_label()): line for line in bottom.get_lines()}
    assert lines["sent, all workers"].get_ydata()[-1] == run.sent
    assert lines["got through"].get_ydata()[-1] == run.sent - run.limited
    legend = top.get_legend()
    assert legend is not None and [t.get_text() for t in legend.get_texts()] == ["got through", "429"]
    quiet = run_workers_lab(workers=2, requests=5, rpm=150, burst=1)
    assert quiet.limited == 0 and quiet.figure is not None
    quiet_legend = quiet.figure.axes[0].get_legend()
    assert quiet_legend is not None and [t.get_text() for t in quiet_legend.get_texts()] == ["got through"]
