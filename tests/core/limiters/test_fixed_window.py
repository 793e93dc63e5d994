from __future__ import annotations

from throttle_lab import FixedWindow, record

from ...helpers import Request, drive


def test_windows_reset_on_the_clock() -> None:
    out = drive(
        lambda: FixedWindow(max_requests=2, window_seconds=10), [Request(f"r{i}", at=9.0) for i in range(5)]
    )
    assert list(out.granted.values()) == [9.0, 9.0, 10.0, 10.0, 20.0]


def test_the_boundary_burst_lets_twice_the_limit_through() -> None:
    requests = [Request(f"r{i}", at=9.5) for i in range(6)]
    with record() as trace:
        drive(lambda: FixedWindow(max_requests=3, window_seconds=10), requests)
    assert trace.max_in_window("granted", 10.0) == 6  # 3 at 9.5 and 3 at 10.0
    assert trace.max_in_window("granted", 1.0) == 6


def test_weights_and_a_heavy_request_waits_for_a_fresh_window() -> None:
    requests = [Request("a", weight=2), Request("b", at=1.0, weight=3)]
    out = drive(lambda: FixedWindow(max_requests=4, window_seconds=5), requests)
    assert out.granted == {"a": 0.0, "b": 5.0}


def test_windows_align_to_multiples_of_the_window() -> None:
    requests = [Request("a", at=7.0), Request("b", at=7.0)]
    out = drive(lambda: FixedWindow(max_requests=1, window_seconds=3), requests)
    assert out.granted == {"a": 7.0, "b": 9.0}
