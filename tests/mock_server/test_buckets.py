"""The refilling bucket's arithmetic and Go-style duration formatting."""

from __future__ import annotations

import pytest

from mock_server.buckets import RefillingBucket, ceil_ms, format_duration


def test_starts_full_and_refills_continuously() -> None:
    bucket = RefillingBucket(capacity=60, rate=1.0, now=0.0)
    assert bucket.level(0.0) == 60
    bucket.take(10, 0.0)
    assert bucket.level(0.0) == 50
    assert bucket.level(4.0) == 54
    assert bucket.remaining(4.5) == 54
    assert bucket.time_until_full(4.0) == 6.0
    assert bucket.level(100.0) == 60  # never overflows
    assert bucket.time_until_full(100.0) == 0.0


def test_fits_is_a_deadline_not_a_subtraction() -> None:
    bucket = RefillingBucket(capacity=3, rate=3.0, now=0.0)  # 180 RPM over a 1 s window
    bucket.take(3, 0.0)
    assert not bucket.fits(1, 0.3)
    assert bucket.wait_for(1, 0.0) == pytest.approx(1 / 3)
    # Where the client lands after sleeping the computed wait, the request fits.
    t = 0.0 + bucket.wait_for(1, 0.0)
    assert bucket.fits(1, t)
    assert bucket.wait_for(1, t) == 0.0


def test_tolerance_forgives_float_noise_only() -> None:
    bucket = RefillingBucket(capacity=5000, rate=5000 / 60, now=0.0)
    bucket.take(5000, 0.0)
    due = 60 / 5000
    assert bucket.fits(1, due - 1e-12)
    assert not bucket.fits(1, due - 1e-6)


def test_take_with_floor_allows_bounded_debt() -> None:
    bucket = RefillingBucket(capacity=2, rate=1.0, now=0.0)
    bucket.take(2, 0.0)
    for _ in range(10):
        bucket.take(1, 0.0, floor=-2)
    assert bucket.level(0.0) == -2
    assert bucket.remaining(0.0) == 0
    assert bucket.time_until_full(0.0) == 4.0


def test_resize_keeps_usage() -> None:
    bucket = RefillingBucket(capacity=60, rate=1.0, now=0.0)
    bucket.take(3, 0.0)
    bucket.resize(30, 0.5, 1.0)  # used 2 at t=1
    assert bucket.level(1.0) == 28
    assert bucket.time_until_full(1.0) == 4.0
    bucket.take(28, 1.0)
    bucket.resize(3, 0.05, 1.0)  # used 30 > new capacity: debt, bounded at -capacity
    assert bucket.level(1.0) == pytest.approx(-3)


@pytest.mark.parametrize(("capacity", "rate"), [(0, 1), (1, 0), (-1, 1), (float("nan"), 1)])
def test_rejects_nonpositive(capacity: float, rate: float) -> None:
    with pytest.raises(ValueError):
        RefillingBucket(capacity, rate, 0.0)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-1, "0s"),
        (0.0004, "1ms"),
        (0.012, "12ms"),
        (60 / 5000, "12ms"),  # 0.012000000000000002 must not become 13ms
        (0.02, "20ms"),
        (0.999, "999ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (8.64, "8.64s"),
        (59.999, "59.999s"),
        (60, "1m0s"),
        (80, "1m20s"),
        (360, "6m0s"),
        (3600, "1h0m0s"),
        (3723.5, "1h2m3.5s"),
        (90061.25, "25h1m1.25s"),
    ],
)
def test_format_duration_matches_go(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_ceil_ms() -> None:
    assert ceil_ms(0) == 0
    assert ceil_ms(1 / 3) == 334
    assert ceil_ms(0.012000000000000002) == 12
    assert ceil_ms(1e-7) == 0  # below a microsecond is float noise
    assert ceil_ms(2e-6) == 1
