from __future__ import annotations

from throttle_lab import FixedWindow, SlidingWindowCounter, record

from ...helpers import Request, drive


def test_previous_window_is_weighed_by_its_overlap() -> None:
    out = drive(
        lambda: SlidingWindowCounter(max_requests=4, window_seconds=10), [Request(f"r{i}") for i in range(6)]
    )
    # 4 at t=0; the 5th waits for the next window, where the previous 4 weigh 4 x (1 - elapsed/10):
    # room for 1 more when 4 x (1 - e) <= 3 -> e = 0.25 -> t = 12.5; then 4 x (1 - e) <= 2 -> t = 15.
    assert list(out.granted.values()) == [0.0, 0.0, 0.0, 0.0, 12.5, 15.0]


def test_smooths_the_boundary_burst_of_a_fixed_window() -> None:
    requests = [Request(f"r{i}", at=9.5) for i in range(6)]
    with record() as counter_trace:
        drive(lambda: SlidingWindowCounter(max_requests=3, window_seconds=10), requests)
    with record() as fixed_trace:
        drive(lambda: FixedWindow(max_requests=3, window_seconds=10), requests)
    # Across the boundary at t=10 the fixed window lets 6 through within a second; the counter does not.
    assert fixed_trace.max_in_window("granted", 1.0) == 6
    assert counter_trace.max_in_window("granted", 1.0) == 3
    # But it is an estimate: the previous window's 3 grants were bunched at its end, not spread evenly,
    # so one 10 s span (9.5 .. 19.5) holds 5 grants against a limit of 3 -- the approximation error.
    assert counter_trace.times("granted") == [9.5, 9.5, 9.5, 10 + 10 / 3, 10 + 20 / 3, 20.0]
    assert counter_trace.max_in_window("granted", 10.0) == 5
    assert fixed_trace.max_in_window("granted", 10.0) == 6


def test_an_idle_window_forgets_everything() -> None:
    requests = [Request("a", weight=3), Request("b", at=25.0, weight=3)]
    out = drive(lambda: SlidingWindowCounter(max_requests=3, window_seconds=10), requests)
    assert out.granted == {"a": 0.0, "b": 25.0}


def test_granted_events_report_the_estimate() -> None:
    with record() as trace:
        drive(
            lambda: SlidingWindowCounter(max_requests=4, window_seconds=10),
            [Request(f"r{i}") for i in range(6)],
        )
    estimates = [e.detail["estimate"] for e in trace.of_kind("granted")]
    assert estimates == [1.0, 2.0, 3.0, 4.0, 4.0, 4.0]
