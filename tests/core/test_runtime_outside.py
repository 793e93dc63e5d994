"""Virtual time meets the outside world: threads, real sockets, foreign threads, Ctrl-C.

A virtual clock may jump only while nothing outside the loop can act.  While a thread works or a real socket
is open, the loop must follow real time instead -- a jump there fires ``wait_for`` timeouts that never
happened.  In-process work must stay as virtual as ever, and a real deadlock must still be reported.

These tests depend on real elapsed time, so they assert bounds and counts, never tight durations.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import signal
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from throttle_lab import VirtualTimeDeadlock, now, run

pytestmark = pytest.mark.realloop

GENEROUS = 5.0  # real seconds: far above what any of these runs needs, far below a fake timeout's 30 s


def _slow(seconds: float, result: str) -> str:
    time.sleep(seconds)
    return result


def test_waiting_for_a_thread_is_not_a_fake_timeout() -> None:
    async def main() -> tuple[str, float]:
        result = await asyncio.wait_for(asyncio.to_thread(_slow, 0.2, "done"), timeout=10)
        return result, now()

    result, at = run(main())
    assert result == "done"
    assert at == 0.0  # the clock stood still while the thread worked: nowhere near the 10 s timeout


def test_a_ticker_during_a_thread_sees_the_clock_stand_still() -> None:
    async def main() -> tuple[float, float, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        task = asyncio.create_task(ticker())
        virtual_start, real_start = now(), time.perf_counter()
        await asyncio.to_thread(time.sleep, 0.2)
        virtual, real = now() - virtual_start, time.perf_counter() - real_start
        task.cancel()
        return virtual, real, ticks

    virtual, real, ticks = run(main())
    # Jumping past the thread made thousands of virtual seconds pass here.  Now the thread's work takes no
    # virtual time at all -- the same on every run, however long the thread really took.
    assert real >= 0.2
    assert virtual == 0.0 and ticks == 0


def test_timers_still_land_exactly_on_their_deadline_while_the_clock_follows_real_time() -> None:
    async def main() -> tuple[float, float]:
        worker = asyncio.create_task(asyncio.to_thread(time.sleep, 0.3))
        start = now()
        await asyncio.sleep(0.1)  # fires while the thread still works
        woke = now()
        await worker
        return start, woke

    start, woke = run(main())
    assert woke == start + 0.1


@pytest.fixture
def slow_echo_server() -> Iterator[int]:
    """A blocking TCP server on 127.0.0.1, in a thread started before the loop: it answers after 0.2 s.

    The thread exists before ``run()`` creates its loop, so only the open socket tells the loop that the
    outside world is at work.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(GENEROUS)

    def serve() -> None:
        with contextlib.suppress(OSError):  # the client may give up first; its test reports that, not this
            connection, _ = listener.accept()
            with connection:
                request = connection.recv(100)
                time.sleep(0.2)
                connection.sendall(b"echo: " + request)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        yield listener.getsockname()[1]
    finally:
        server.join(GENEROUS)
        listener.close()


def test_a_real_socket_read_with_a_long_timeout_waits_for_the_answer(slow_echo_server: int) -> None:
    async def main() -> tuple[bytes, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", slow_echo_server)
        try:
            writer.write(b"ping")
            return await asyncio.wait_for(reader.read(), timeout=30), now()
        finally:
            writer.close()
            await writer.wait_closed()

    answer, at = run(main())
    assert answer == b"echo: ping"
    assert at < GENEROUS


def test_an_in_loop_server_and_client_talk_over_loopback() -> None:
    async def main() -> tuple[bytes, float]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            request = await reader.readexactly(4)
            await asyncio.sleep(0.2)  # real seconds here: sockets are open
            writer.write(b"echo: " + request)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"ping")
            answer = await asyncio.wait_for(reader.read(), timeout=30)
            writer.close()
            await writer.wait_closed()
        return answer, now()

    answer, at = run(main())
    assert answer == b"echo: ping"
    assert 0.1 <= at < GENEROUS


@pytest.mark.parametrize("with_timeout", [False, True], ids=["plain await", "under wait_for"])
def test_a_foreign_thread_calling_back_is_waited_for(with_timeout: bool) -> None:
    async def main() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[int] = loop.create_future()

        def work() -> None:  # a plain thread, not run_in_executor: the loop cannot count its work
            time.sleep(0.2)
            loop.call_soon_threadsafe(answer.set_result, 42)

        threading.Thread(target=work, daemon=True).start()
        result = await (asyncio.wait_for(answer, timeout=30) if with_timeout else answer)
        return result, now()

    result, at = run(main())
    assert result == 42
    assert at < GENEROUS


def test_idle_executor_workers_do_not_slow_virtual_time_down() -> None:
    async def main() -> tuple[float, float]:
        await asyncio.to_thread(time.sleep, 0.01)  # the default executor keeps its worker, idle
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            await asyncio.get_running_loop().run_in_executor(pool, time.sleep, 0.01)
            started = time.perf_counter()
            await asyncio.sleep(3600)  # with both pools' workers still alive and idle
            return now(), time.perf_counter() - started

    t, real = run(main())
    assert t >= 3600
    assert real < 1.0


def test_threads_that_existed_before_the_loop_do_not_slow_virtual_time_down() -> None:
    # A notebook kernel runs several threads of its own; they will never call into a loop made later.
    release = threading.Event()
    bystander = threading.Thread(target=release.wait, daemon=True)
    bystander.start()

    async def main() -> float:
        await asyncio.sleep(3600)
        return now()

    try:
        started = time.perf_counter()
        assert run(main()) == 3600.0
        assert time.perf_counter() - started < 1.0
    finally:
        release.set()
        bystander.join(GENEROUS)


def test_the_clock_jumps_again_once_the_outside_world_is_done() -> None:
    async def main() -> float:
        finisher = threading.Thread(target=time.sleep, args=(0.05,))
        finisher.start()
        await asyncio.to_thread(finisher.join)
        before = now()
        await asyncio.sleep(3600)
        return now() - before

    started = time.perf_counter()
    assert run(main()) == pytest.approx(3600)
    assert time.perf_counter() - started < GENEROUS


def test_a_genuine_deadlock_is_still_reported_promptly() -> None:
    async def main() -> None:
        await asyncio.to_thread(time.sleep, 0.01)  # leaves an idle worker behind
        ended = threading.Thread(target=lambda: None)
        ended.start()
        ended.join()  # a foreign thread, finished
        await asyncio.Event().wait()  # nobody will ever set it

    started = time.perf_counter()
    with pytest.raises(VirtualTimeDeadlock, match="deadlock at virtual time"):
        run(main())
    assert time.perf_counter() - started < GENEROUS


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs signal.pthread_kill (POSIX)")
def test_an_interrupted_run_returns_only_once_its_worker_has_cleaned_up() -> None:
    entered = threading.Event()
    cleaned_up = threading.Event()

    async def inner() -> None:
        entered.set()
        try:
            await asyncio.sleep(30)
        finally:
            time.sleep(0.3)  # a slow cleanup, blocking the worker's loop on purpose
            cleaned_up.set()

    async def cell() -> None:
        run(inner(), virtual=False)  # a loop is running here, as in a notebook: run() uses a worker thread

    def press_ctrl_c() -> None:
        if entered.wait(GENEROUS):
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    # A real SIGINT, as "Interrupt kernel" sends, under Python's default handler (KeyboardInterrupt).  The
    # outer loop runs with run_until_complete, which, unlike asyncio.run, leaves that handler alone.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupter = threading.Thread(target=press_ctrl_c)
    outer = asyncio.new_event_loop()
    try:
        interrupter.start()
        with pytest.raises(KeyboardInterrupt):
            outer.run_until_complete(cell())
        assert cleaned_up.is_set()
        assert not [t for t in threading.enumerate() if t.name == "throttle_lab.run"]
    finally:
        interrupter.join(GENEROUS)
        outer.close()
        signal.signal(signal.SIGINT, previous)


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="needs signal masks (POSIX)")
def test_a_ctrl_c_while_the_worker_starts_still_waits_for_its_cleanup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A Ctrl-C landing inside `Thread.start()` -- before the worker even exists -- is held until the caller
    # can handle it: the worker starts, runs, is cancelled, cleans up, and only then does the caller leave.
    cleaned_up = threading.Event()
    start = threading.Thread.start

    def ctrl_c_then_start(thread: threading.Thread) -> None:
        if thread.name == "throttle_lab.run":
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)
            time.sleep(0.05)  # an unheld Ctrl-C is raised right here, and no worker would ever start
        start(thread)

    async def inner() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            time.sleep(0.1)
            cleaned_up.set()

    async def cell() -> None:
        run(inner(), virtual=False)  # a loop is running here: run() uses a worker thread

    monkeypatch.setattr(threading.Thread, "start", ctrl_c_then_start)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    outer = asyncio.new_event_loop()
    try:
        with pytest.raises(KeyboardInterrupt):
            outer.run_until_complete(cell())
        assert cleaned_up.is_set()
        assert not [t for t in threading.enumerate() if t.name == "throttle_lab.run"]
    finally:
        outer.close()
        signal.signal(signal.SIGINT, previous)


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="needs signal masks (POSIX)")
def test_the_worker_and_the_caller_keep_the_callers_signal_mask() -> None:
    # SIGINT is blocked only while the worker starts; a thread inherits its creator's mask, so the worker
    # must undo it (or every process it started would ignore Ctrl-C).
    async def inner() -> set[int | signal.Signals]:
        return signal.pthread_sigmask(signal.SIG_BLOCK, set())

    async def cell() -> set[int | signal.Signals]:
        return run(inner(), virtual=False)  # a loop is running here: run() uses a worker thread

    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    outer = asyncio.new_event_loop()
    try:
        assert outer.run_until_complete(cell()) == before
        assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == before
    finally:
        outer.close()
