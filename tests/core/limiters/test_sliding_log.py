from __future__ import annotations

import asyncio

from throttle_lab import SlidingWindowLog, Trace, record, run

from ...helpers import Request, drive


def test_full_window_then_one_window_later() -> None:
    out = drive(
        lambda: SlidingWindowLog(max_requests=3, window_seconds=10), [Request(f"r{i}") for i in range(7)]
    )
    assert list(out.granted.values()) == [0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 20.0]


def test_each_slot_frees_exactly_one_window_after_its_grant() -> None:
    requests = [Request("a", at=0.0), Request("b", at=4.0), Request("c", at=7.0), Request("d", at=7.5)]
    out = drive(lambda: SlidingWindowLog(max_requests=3, window_seconds=10), requests)
    assert out.granted == {"a": 0.0, "b": 4.0, "c": 7.0, "d": 10.0}


def test_weights_expire_entry_by_entry() -> None:
    requests = [Request("a", weight=2), Request("b", at=1.0, weight=2), Request("c", at=2.0, weight=3)]
    out = drive(lambda: SlidingWindowLog(max_requests=4, window_seconds=5), requests)
    # c needs 3: a expiring at 5 frees 2 (not enough), b expiring at 6 frees the rest.
    assert out.granted == {"a": 0.0, "b": 1.0, "c": 6.0}


def test_float_trap_window_boundaries_do_not_spin() -> None:
    # 0.001 + 1.0 vs 1.001 - 1.0: a subtraction-based expiry test would re-arm for the same instant.
    requests = [Request("a", at=0.001), Request("b", at=0.001), Request("c", at=0.002)]
    out = drive(lambda: SlidingWindowLog(max_requests=1, window_seconds=1.0), requests)
    assert out.granted == {"a": 0.001, "b": 0.001 + 1.0, "c": 0.001 + 1.0 + 1.0}


def test_never_more_than_the_limit_in_any_window() -> None:
    async def main() -> None:
        log = SlidingWindowLog(max_requests=100, window_seconds=1)
        await asyncio.gather(*(log.acquire() for _ in range(600)))

    with record() as trace:
        run(main())
    assert trace.max_in_window("granted", 1.0) == 100
    assert trace.of_kind("granted")[-1].t == 5.0


def test_in_window_and_repr() -> None:
    async def main() -> tuple[float, str]:
        log = SlidingWindowLog(max_requests=5, window_seconds=60, name="rpm")
        for _ in range(3):
            await log.acquire()
        return log.in_window(), repr(log)

    in_window, text = run(main())
    assert in_window == 3
    assert "3/5 in the last 60s" in text


def test_trace_type() -> None:
    with record() as trace:
        drive(lambda: SlidingWindowLog(2, 1), [Request("x")])
    assert isinstance(trace, Trace)
