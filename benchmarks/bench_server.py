"""How fast is the mock server? Requests per second, side by side with a bare ASGI app.

    python benchmarks/bench_server.py            # about half a minute
    python benchmarks/bench_server.py --quick    # a few seconds, rougher numbers

Two measurements, printed as a table (no assertions: this is a measurement, not a test):

1. **Loopback HTTP.** ``python -m mock_server`` (no latency, limits so high they never refuse, but the
   bucket arithmetic still runs) and a bare "hello" ASGI app, each served by the same uvicorn with the same
   settings, loaded in alternation by the same generator: several processes of a bare asyncio keep-alive
   HTTP/1.1 client. The generator's own CPU use is printed, to show it is not the bottleneck. Target: the
   mock server reaches at least half the bare app's rate.
2. **In-process.** The app reached through ``httpx.ASGITransport`` on throttle_lab's virtual-time loop,
   zero latency: requests per wall-clock second (target ≥ 5,000), next to the same client against the
   bare app (the ceiling httpx itself sets) and the app called directly without any client.

Only 127.0.0.1 is ever contacted; every load loop is bounded by a request count.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BODY = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Hello there, how are you?"}],
    "max_tokens": 16,
}
UVICORN = {"log_level": "warning", "access_log": False, "lifespan": "on"}  # the same for both servers

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


async def bare_app(
    scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
) -> None:
    """The reference: read the request, answer a fixed small JSON. Nothing else."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    body = b'{"hello":"world"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- the load generator -------------------------------------------------------------------------------------


def _request(port: int) -> bytes:
    data = json.dumps(BODY).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def _load(port: int, connections: int, total: int) -> dict[int, int]:
    request = _request(port)
    statuses: collections.Counter[int] = collections.Counter()

    async def worker(n: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in range(n):
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                start = head.lower().index(b"content-length:") + 15
                await reader.readexactly(int(head[start : head.index(b"\r\n", start)]))
                statuses[int(head[9:12])] += 1
        finally:
            writer.close()

    per, extra = divmod(total, connections)
    await asyncio.gather(*(worker(per + (i < extra)) for i in range(connections)))
    return dict(statuses)


def _generator(port: int, connections: int, total: int, start_at: float, out: Any) -> None:
    # Processes start at slightly different moments; all of them begin loading at ``start_at``.
    time.sleep(max(0.0, start_at - time.time()))
    cpu = time.process_time()
    began = time.perf_counter()
    statuses = asyncio.run(_load(port, connections, total))
    out.put((statuses, time.perf_counter() - began, time.process_time() - cpu))


def measure_http(
    port: int, processes: int, connections: int, total: int
) -> tuple[float, float, dict[int, int]]:
    """Requests per second over loopback, the generators' CPU share, and the statuses seen."""
    queue: Any = multiprocessing.Queue()
    start_at = time.time() + 0.3
    procs = [
        multiprocessing.Process(
            target=_generator, args=(port, connections, total // processes, start_at, queue)
        )
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join()
    statuses: collections.Counter[int] = collections.Counter()
    for s, _, _ in results:
        statuses.update(s)
    wall = max(r[1] for r in results)
    cpu_share = sum(r[2] for r in results) / (wall * processes)
    return sum(statuses.values()) / wall, cpu_share, dict(statuses)


# -- servers ---------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def start_server(kind: str) -> tuple[int, subprocess.Popen[bytes], list[str]]:
    port = _free_port()
    if kind == "mock":
        # High limits: never a 429, but every request still goes through the bucket arithmetic.
        cmd = [sys.executable, "-m", "mock_server", "--preset", "instant", "--rpm", "1000000000",
               "--tpm", "1000000000000", "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    else:
        cmd = [sys.executable, __file__, "--serve-bare", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_ready(port, proc)
    return port, proc, cmd


def serve_bare(port: int) -> None:
    import uvicorn

    uvicorn.run(bare_app, host="127.0.0.1", port=port, **UVICORN)  # type: ignore[arg-type]


# -- in-process --------------------------------------------------------------------------------------------


def measure_in_process(app: Any, total: int, concurrency: int) -> float:
    """Requests per wall second through httpx.ASGITransport on the virtual-time loop.

    ``concurrency`` tasks send at once (1: one after another, the client's own best case).
    """
    import httpx

    from throttle_lab import run

    async def main() -> float:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://mock"
        ) as client:
            await client.post("/v1/chat/completions", json=BODY)  # warm up
            sem = asyncio.Semaphore(concurrency)

            async def one() -> None:
                async with sem:
                    r = await client.post("/v1/chat/completions", json=BODY)
                    assert r.status_code == 200, r.text

            began = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(total)))
            return total / (time.perf_counter() - began)

    return run(main(), virtual=True)


def measure_direct(app: Any, total: int) -> float:
    """Requests per wall second calling the ASGI app directly: the app's own cost, no client at all."""
    from throttle_lab import run

    body = json.dumps(BODY).encode()
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions",
             "headers": [(b"content-length", str(len(body)).encode())]}  # fmt: skip

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        return None

    async def main() -> float:
        began = time.perf_counter()
        for _ in range(total):
            await app(scope, receive, send)
        return total / (time.perf_counter() - began)

    return run(main(), virtual=True)


# -- main --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, one round")
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--connections", type=int, default=50, help="keep-alive connections per process")
    parser.add_argument("--requests", type=int, default=20_000, help="requests per HTTP round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each is kept")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0
    if args.quick:
        args.requests, args.rounds = 4000, 1

    from mock_server import ServerConfig, create_app

    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")

    servers = {kind: start_server(kind) for kind in ("bare", "mock")}
    best: dict[str, tuple[float, float, dict[int, int]]] = {}
    try:
        for _ in range(args.rounds):
            for kind, (port, _, _) in servers.items():
                result = measure_http(port, args.processes, args.connections, args.requests)
                if kind not in best or result[0] > best[kind][0]:
                    best[kind] = result
    finally:
        for _, proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=10)

    total = 2000 if args.quick else 10_000
    limited = create_app(ServerConfig.preset("instant", rpm=10**9, tpm=10**12, max_events=10_000))
    unlimited = create_app(ServerConfig.preset("instant", max_events=10_000))  # no x-ratelimit-* headers
    in_process: dict[str, float] = collections.defaultdict(float)
    for _ in range(args.rounds):  # best of the rounds: a busy machine only ever slows a run down
        for name, rate in (
            ("bare", measure_in_process(bare_app, total, concurrency=50)),
            ("mock", measure_in_process(limited, total, concurrency=50)),
            ("mock-seq", measure_in_process(limited, total, concurrency=1)),
            ("mock-unlimited", measure_in_process(unlimited, total, concurrency=50)),
            ("direct", measure_direct(limited, total)),
        ):
            in_process[name] = max(in_process[name], rate)

    def http_note(kind: str) -> str:
        _, cpu, statuses = best[kind]
        return f"generator CPU {cpu:.0%}, statuses {statuses}"

    rows = [
        ("loopback HTTP, bare ASGI app (uvicorn)", best["bare"][0], http_note("bare")),
        ("loopback HTTP, mock_server (uvicorn)", best["mock"][0], http_note("mock")),
        ("in-process, httpx + bare ASGI app", in_process["bare"], "virtual time, 50 concurrent"),
        ("in-process, httpx + mock_server", in_process["mock"], "virtual time, 50 concurrent"),
        ("in-process, httpx + mock_server", in_process["mock-seq"], "virtual time, one at a time"),
        (
            "in-process, httpx + mock_server, no limits",
            in_process["mock-unlimited"],
            "virtual time, 50 concurrent",
        ),
        ("in-process, mock_server called directly", in_process["direct"], "no client: the app's own cost"),
    ]
    print()
    print(f"{'measurement':<45} {'req/s':>9}  note")
    print("-" * 100)
    for name, rate, note in rows:
        print(f"{name:<45} {rate:>9,.0f}  {note}")
    print("-" * 100)
    print(f"mock / bare over HTTP: {best['mock'][0] / best['bare'][0]:.2f}  (target >= 0.50)")
    print(f"in-process mock_server, 50 concurrent: {in_process['mock']:,.0f} req/s  (target >= 5,000)")
    print(f"mock server: {' '.join(servers['mock'][2][1:])}")
    print(f"bare server: bare_app in this file; both run by uvicorn.run(..., {UVICORN})")
    print(
        f"load: {args.processes} processes x {args.connections} keep-alive connections, "
        f"{args.requests:,} requests per round; every figure is the best of {args.rounds} alternating rounds"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
