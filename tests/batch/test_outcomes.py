"""Which answers are final (written) and which are left for the next run."""

from __future__ import annotations

import pytest

from throttle_lab import RetryPolicy
from throttle_lab.batch import Outcome, classify


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.SUCCEEDED),
        (201, Outcome.SUCCEEDED),
        (400, Outcome.FAILED),
        (404, Outcome.FAILED),
        (413, Outcome.FAILED),
        (422, Outcome.FAILED),
        (401, Outcome.FATAL),
        (403, Outcome.FATAL),
        (408, Outcome.RETRY_LATER),
        (409, Outcome.RETRY_LATER),
        (429, Outcome.RETRY_LATER),
        (500, Outcome.RETRY_LATER),
        (503, Outcome.RETRY_LATER),
        (529, Outcome.RETRY_LATER),
    ],
)
def test_the_table(status: int, outcome: Outcome) -> None:
    assert classify(status, RetryPolicy()) is outcome
