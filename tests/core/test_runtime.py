from __future__ import annotations

import asyncio
import random
import threading
import time

import pytest

from throttle_lab import (
    GCRA,
    SlidingWindowLog,
    TokenBucket,
    VirtualTimeDeadlock,
    VirtualTimeLivelock,
    VirtualTimeLoop,
    now,
    record,
    run,
)


def test_an_hour_of_sleeps_costs_nothing_and_keeps_order() -> None:
    async def main() -> list[float]:
        rng = random.Random(7)
        woke: list[float] = []

        async def sleeper(delay: float) -> None:
            await asyncio.sleep(delay)
            woke.append(now())

        async with asyncio.TaskGroup() as group:
            for _ in range(2_000):
                group.create_task(sleeper(rng.uniform(0, 3600)))
        return woke

    first = run(main())
    assert first == sorted(first)
    assert first[-1] <= 3600
    assert run(main()) == first  # deterministic


def test_the_clock_starts_at_zero_and_lands_exactly_on_timers() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        seen = [loop.time()]
        await asyncio.sleep(0.1)
        seen.append(loop.time())
        fired = loop.create_future()
        loop.call_at(0.30000000000000004, fired.set_result, None)
        await fired
        seen.append(loop.time())
        return seen

    assert run(main()) == [0.0, 0.1, 0.30000000000000004]


def test_standard_primitives_work_unchanged() -> None:
    async def main() -> list[tuple[str, float]]:
        log: list[tuple[str, float]] = []
        semaphore = asyncio.Semaphore(1)
        queue: asyncio.Queue[int] = asyncio.Queue()
        event = asyncio.Event()

        async def worker(name: str) -> None:
            async with semaphore:
                await asyncio.sleep(1)
                log.append((name, now()))

        async def consumer() -> None:
            item = await queue.get()
            log.append((f"got {item}", now()))
            event.set()

        async with asyncio.TaskGroup() as group:
            group.create_task(worker("a"))
            group.create_task(worker("b"))
            group.create_task(consumer())
            asyncio.get_running_loop().call_later(5, queue.put_nowait, 42)
        await event.wait()
        try:
            await asyncio.wait_for(asyncio.sleep(100), timeout=3)
        except TimeoutError:
            log.append(("timeout", now()))
        async with asyncio.timeout(2):
            await asyncio.sleep(1.5)
        log.append(("end", now()))
        return log

    assert run(main()) == [("a", 1.0), ("b", 2.0), ("got 42", 5.0), ("timeout", 8.0), ("end", 9.5)]


def test_deadlock_is_reported_with_the_waiting_task() -> None:
    async def stuck() -> None:
        await asyncio.Event().wait()

    with pytest.raises(VirtualTimeDeadlock) as info:
        run(stuck())
    message = str(info.value)
    assert "deadlock at virtual time 0 s" in message
    assert "test_runtime.py" in message and "in stuck" in message


def test_a_limiter_waiting_for_a_release_that_never_comes_is_a_deadlock() -> None:
    async def main() -> None:
        from throttle_lab import ConcurrencyLimiter

        limiter = ConcurrencyLimiter(1)
        await limiter.acquire()
        await asyncio.sleep(5)
        await limiter.acquire()  # nobody will ever release

    with pytest.raises(VirtualTimeDeadlock, match="deadlock at virtual time 5 s"):
        run(main())


def test_busy_waiting_is_reported_as_livelock() -> None:
    async def spin() -> None:
        while True:
            await asyncio.sleep(0)

    with (
        pytest.raises(VirtualTimeLivelock, match="without the clock moving"),
        asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(max_spins=5_000)) as runner,
    ):
        runner.run(spin())


def test_tiny_deficits_have_a_floor_and_do_not_spin() -> None:
    async def main() -> float:
        for _ in range(1000):
            await asyncio.sleep(1e-17)  # now + 1e-17 == now: without a floor this never advances
        return now()

    assert run(main()) == pytest.approx(1000 * 1e-6)


@pytest.mark.parametrize("rate", [0.3, 1.0, 3.0, 7.0, 10.0, 33.3, 100.0, 1000.0, 1e5])
@pytest.mark.parametrize("burst", [1, 2, 3, 7, 10, 100])
def test_float_trap_scan_rates_by_bursts(rate: float, burst: int) -> None:
    """Every rate x burst finishes, on the bucket, GCRA and the log (72 settings hung without the floor)."""

    async def main() -> tuple[float, float, float]:
        results = []
        for limiter in (
            TokenBucket(rate=rate, capacity=burst),
            GCRA(rate=rate, burst=burst),
            SlidingWindowLog(burst, burst / rate),
        ):
            start = now()
            await asyncio.gather(*(limiter.acquire() for _ in range(3 * burst + 5)))
            results.append(now() - start)
        return results[0], results[1], results[2]

    bucket, gcra, log = run(main())
    expected = (2 * burst + 5) / rate
    assert bucket == pytest.approx(expected, rel=1e-6)
    assert gcra == pytest.approx(expected, rel=1e-6)
    assert log >= bucket - 1e-9  # a log of `burst` per `burst/rate` s is never faster than the bucket


def test_run_works_inside_an_already_running_loop() -> None:
    async def inner() -> tuple[float, str]:
        await asyncio.sleep(60)
        return now(), threading.current_thread().name

    async def outer() -> tuple[float, str]:
        # Like a Jupyter cell: a loop is running here, so run() must use a worker thread.
        return run(inner())

    t, thread_name = asyncio.run(outer())
    assert t == 60.0
    assert thread_name == "throttle_lab.run"


def test_recording_crosses_into_the_worker_thread() -> None:
    async def inner() -> None:
        await TokenBucket(rate=1, capacity=1).acquire()

    async def outer() -> int:
        with record() as trace:
            run(inner())
        return len(trace)

    assert asyncio.run(outer()) == 1


def test_errors_cross_back_from_the_worker_thread() -> None:
    async def inner() -> None:
        raise KeyError("boom")

    async def outer() -> None:
        run(inner())

    with pytest.raises(KeyError, match="boom"):
        asyncio.run(outer())


def test_real_time_mode_really_waits() -> None:
    async def main() -> float:
        start = now()
        await asyncio.sleep(0.05)
        return now() - start

    t0 = time.perf_counter()
    elapsed = run(main(), virtual=False)
    assert elapsed >= 0.05
    assert time.perf_counter() - t0 >= 0.05


def test_threads_are_waited_for_in_real_time_not_called_a_deadlock() -> None:
    async def main() -> str:
        return await asyncio.to_thread(lambda: (time.sleep(0.05), "from a thread")[1])

    assert run(main()) == "from a thread"


def test_run_needs_a_coroutine() -> None:
    async def main() -> None:
        return None

    with pytest.raises(TypeError, match=r"run\(main\(\)\)"):
        run(main)  # type: ignore[arg-type]


def test_invalid_loop_settings() -> None:
    with pytest.raises(ValueError, match="max_spins"):
        VirtualTimeLoop(max_spins=0)


def test_a_timer_re_armed_for_now_lets_the_clock_tick_as_a_real_one_would() -> None:
    # Some limiters (aiolimiter, on a rounding residue) re-arm their timer for the current instant over
    # and over.  A real clock moves on meanwhile; the virtual one ticks by MIN_DELAY instead of spinning.
    async def main() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        fired = 0
        done: asyncio.Future[tuple[int, float]] = loop.create_future()

        def tick() -> None:
            nonlocal fired
            fired += 1
            if loop.time() >= 0.001:
                done.set_result((fired, loop.time()))
            else:
                loop.call_at(loop.time(), tick)

        loop.call_at(0.0, tick)
        return await done

    fired, at = run(main())
    assert 0.001 <= at < 0.0011
    assert 500 <= fired <= 3000


def test_aiolimiter_runs_on_virtual_time() -> None:
    aiolimiter = pytest.importorskip("aiolimiter")

    async def main() -> float:
        limiter = aiolimiter.AsyncLimiter(1, 0.001)

        async def one() -> None:
            async with limiter:
                pass

        await asyncio.gather(*(one() for _ in range(500)))
        return now()

    assert 0.49 < run(main()) < 0.51
