"""The batch dashboard (a progress listener that draws) and the real-server helper of lesson 12."""

from __future__ import annotations

import dataclasses

import httpx
import matplotlib
import pytest

from throttle_lab.batch import ProgressSnapshot
from throttle_lab.lab.batch_dashboard import BatchDashboard, start_mock_server

matplotlib.use("Agg")

SNAPSHOT = ProgressSnapshot(
    t=0.0, total=100, finished=0, succeeded=0, failed=0, retry_later=0, rate_limited=0, in_flight=0,
    attempts=0, rpm=0.0, tpm=0.0, rpm_limit=600.0, tpm_limit=60_000.0, eta=None, window=1.0,
)  # fmt: skip


def test_it_keeps_every_snapshot_and_draws_rates_against_the_limits() -> None:
    dashboard = BatchDashboard(display=False, title="demo")
    for i in range(1, 11):
        dashboard(dataclasses.replace(SNAPSHOT, t=float(i), finished=10 * i, succeeded=10 * i, rpm=590.0))
    assert len(dashboard.snapshots) == 10
    figure = dashboard.figure()
    rates, progress, tokens = figure.axes
    texts = [t.get_text() for ax in (rates, tokens) for t in ax.texts]
    assert "rpm limit 600" in texts and "tpm limit 60,000" in texts
    assert rates.get_title(loc="left").startswith("demo: 100/100 · ok 100")
    assert progress.get_lines()[0].get_ydata()[-1] == 100
    assert dashboard.png()[:8] == b"\x89PNG\r\n\x1a\n"
    dashboard.close()  # outside IPython: nothing is displayed, nothing fails


def test_refresh_must_be_positive() -> None:
    with pytest.raises(ValueError, match="refresh"):
        BatchDashboard(refresh=0)


@pytest.mark.server
def test_start_mock_server_serves_on_loopback_and_stops() -> None:
    with start_mock_server("--rpm", "600") as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert httpx.get(server.base_url + "/health").json() == {"status": "ok"}
        assert server.stats()["limits"]["rpm"] == 600
    assert server.process.poll() is not None
    server.stop()  # idempotent


def test_a_server_that_cannot_start_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="mock_server exited with status 2"):
        start_mock_server("--rpm", "-1")
