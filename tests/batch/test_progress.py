"""The progress bar: tqdm's auto mode, fed by snapshots taken on the loop's clock."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

from throttle_lab.batch import ProgressSnapshot, TqdmProgress
from throttle_lab.batch.progress import describe

BASE = ProgressSnapshot(
    t=5.0,
    total=100,
    finished=50,
    succeeded=48,
    failed=1,
    retry_later=1,
    rate_limited=3,
    in_flight=4,
    attempts=60,
    rpm=590.0,
    tpm=59_000.0,
    rpm_limit=600.0,
    tpm_limit=60_000.0,
    eta=5.0,
    window=5.0,
)


def snapshot(**changes: Any) -> ProgressSnapshot:
    return dataclasses.replace(BASE, **changes)


def test_the_text_shows_outcomes_rates_against_limits_and_eta() -> None:
    assert describe(snapshot()) == "ok 48 · failed 1 · retry 1 · 429s 3 · 590/600 rpm · 59k/60k tpm · eta 5s"
    assert describe(snapshot(rpm_limit=None, eta=None, retry_later=0)) == (
        "ok 48 · failed 1 · 429s 3 · 590 rpm · 59k/60k tpm"
    )


def test_the_bar_counts_finished_requests_and_closes() -> None:
    out = io.StringIO()
    bar = TqdmProgress(file=out)
    bar(snapshot(finished=10))
    bar(snapshot(finished=100, eta=0.0))
    bar.close()
    text = out.getvalue()
    assert "100/100" in text and "ok 48" in text and "eta 0s" in text
    assert "it/s" not in text  # tqdm's wall-clock rate is switched off
