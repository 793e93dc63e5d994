"""The batch runner against a cookbook-style loop: client CPU per request and achieved rate vs the limit.

    python benchmarks/bench_batch.py            # 10,000 requests; about 4 minutes
    python benchmarks/bench_batch.py --quick    # 1,500 requests; about 45 s

One real mock server (``python -m mock_server`` on 127.0.0.1, limits enforced over one second, as
providers do over short periods) serves, one after the other, the same JSONL batch sent by:

1. **run_batch** -- ``throttle_lab.batch.run_batch``: limits learned from the first answer, one
   reservation across RPM + TPM + concurrency, a shared cool-down on 429, retries with jitter, each
   result appended and flushed.
2. **cookbook loop** -- the approach of the OpenAI cookbook's ``api_request_parallel_processor.py``,
   re-expressed here: a loop that wakes every millisecond, refills its own request and token "capacity"
   counters by the elapsed time (starting from a full minute's worth), starts a request when both have
   room, recognises a rate limit by the words "Rate limit" in the error message and then makes every
   new request wait a fixed 15 s; failed requests go back in a retry queue; no Retry-After, no resume.
   Both are given the server's own limits, and both send through httpx.  Its pauses make it slow, so it
   gets a time budget (``--cookbook-seconds``, default 120; 30 with ``--quick``): after that it starts no
   new request, and the table counts what it finished.

Client CPU is this process's CPU time (the server runs in its own process) divided by the requests;
the achieved rate is the server's count of admitted requests per minute between the first and the last
(the first second's burst left out), against the server's limit.  Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from throttle_lab.batch import run_batch  # noqa: E402
from throttle_lab.client.tokens import estimate_tokens  # noqa: E402

RPM = 6_000  # 100 a second: high for an LLM API, reachable by one client process here
TPM = 30_000_000  # not binding: the comparison is about the request rate
SERVER = ("--rpm", str(RPM), "--tpm", str(TPM), "--window", "1", "--ttft", "0.01", "--per-token", "0.0002",
          "--jitter", "0.2", "--max-events", "none", "--seed", "0")  # fmt: skip


def write_batch(path: Path, n: int, prefix: str) -> None:
    with path.open("w") as f:
        for i in range(n):
            body = {
                "model": "gpt-4o-mini",
                "max_tokens": 40,
                "messages": [{"role": "user", "content": f"Summarise document {prefix}-{i} in one line."}],
            }
            f.write(json.dumps({"custom_id": f"{prefix}-{i}", "method": "POST", "url": "/v1/chat/completions",
                                "body": body}) + "\n")  # fmt: skip


@contextmanager
def mock_server() -> Iterator[str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "mock_server", "--host", "127.0.0.1", "--port", str(port), *SERVER]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ------------------------------------------------------------------------------------------ the cookbook
@dataclass
class _Job:
    line: dict[str, Any]
    tokens: float
    attempts_left: int


async def cookbook_loop(
    source: Path, out: Path, base_url: str, rpm: float, tpm: float, budget: float
) -> dict[str, int]:
    """The cookbook's design (see the module docstring), in our words; starts nothing after ``budget`` s."""
    deadline = time.monotonic() + budget
    pause_after_rate_limit = 15.0
    tick = 0.001
    queue = collections.deque(
        _Job(line, estimate_tokens(line["body"], path=line["url"]), 5)
        for line in map(json.loads, source.read_text().splitlines())
    )
    retries: asyncio.Queue[_Job] = asyncio.Queue()
    counts = collections.Counter[str]()
    request_room, token_room = rpm, tpm  # a full minute's worth to start with
    last_refill = time.monotonic()
    last_rate_limit = -1e9
    in_progress = 0
    pending: _Job | None = None
    async with httpx.AsyncClient(
        base_url=base_url, timeout=60, limits=httpx.Limits(max_connections=100)
    ) as client:
        results = out.open("a")

        async def call(job: _Job) -> None:
            nonlocal in_progress, last_rate_limit
            try:
                response = await client.post(job.line["url"], json=job.line["body"])
                data = response.json()
                error = data.get("error") if isinstance(data, dict) else None
                if error:
                    if "Rate limit" in str(error.get("message", "")):
                        last_rate_limit = time.monotonic()
                        counts["rate_limited"] += 1
                    raise RuntimeError(error)
                results.write(json.dumps([job.line, data]) + "\n")
                counts["succeeded"] += 1
            except Exception:
                if job.attempts_left:
                    retries.put_nowait(job)
                else:
                    counts["failed"] += 1
            finally:
                in_progress -= 1

        tasks = set()
        while True:
            if pending is None and time.monotonic() < deadline:
                if not retries.empty():
                    pending = retries.get_nowait()
                elif queue:
                    pending = queue.popleft()
            now = time.monotonic()
            request_room = min(rpm, request_room + rpm * (now - last_refill) / 60)
            token_room = min(tpm, token_room + tpm * (now - last_refill) / 60)
            last_refill = now
            if pending is not None and request_room >= 1 and token_room >= pending.tokens:
                request_room -= 1
                token_room -= pending.tokens
                pending.attempts_left -= 1
                in_progress += 1
                task = asyncio.create_task(call(pending))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                pending = None
            out_of_time = time.monotonic() >= deadline
            if pending is None and (out_of_time or (not queue and retries.empty())) and in_progress == 0:
                break
            await asyncio.sleep(tick)
            since = time.monotonic() - last_rate_limit
            if since < pause_after_rate_limit:
                await asyncio.sleep(pause_after_rate_limit - since)
        results.close()
    return dict(counts)


# ------------------------------------------------------------------------------------------ measuring
def server_events(base: str, since: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        page = httpx.get(f"{base}/events", params={"since": since}, timeout=30).json()
        events.extend(page["events"])
        if not page["events"] or page["next"] == since:
            return events
        since = page["next"]


def achieved_rpm(events: list[dict[str, Any]]) -> float:
    admitted = sorted(float(e["t"]) for e in events if e["kind"] == "accepted")
    burst = RPM / 60  # one second's bucket goes at once
    span = admitted[-1] - admitted[0]
    return (len(admitted) - burst) / span * 60 if span > 0 else float("nan")


def measure(name: str, base: str, n: int, folder: Path, design: str, budget: float) -> dict[str, Any]:
    source, out = folder / f"{design}.in.jsonl", folder / f"{design}.out.jsonl"
    write_batch(source, n, design)
    first_event = len(server_events(base, 0))
    cpu, wall = time.process_time(), time.perf_counter()
    if design == "run_batch":
        summary = asyncio.run(run_batch(source, out, base_url=base, progress=False))
        ok, limited = summary.succeeded, summary.rate_limited
    else:
        counts = asyncio.run(cookbook_loop(source, out, base, RPM, TPM, budget))
        ok, limited = counts.get("succeeded", 0), counts.get("rate_limited", 0)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    events = server_events(base, first_event)
    rate = achieved_rpm(events)
    return {
        "design": name,
        "requests": n,
        "ok": ok,
        "429s": sum(1 for e in events if e["kind"] == "limited") or limited,
        "wall s": wall,
        "achieved rpm": rate,
        "of limit": rate / RPM,
        "CPU µs/request": cpu / max(ok, 1) * 1e6,
    }


def _cell(key: str, value: object) -> str:
    if key == "of limit" and isinstance(value, float):
        return f"{value:.0%}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(rows: list[dict[str, Any]]) -> str:
    heads = list(rows[0])
    cells = [[_cell(k, v) for k, v in row.items()] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,500 requests each instead of 10,000")
    parser.add_argument("--cookbook-seconds", type=float, help="the cookbook loop's time budget")
    args = parser.parse_args()
    n = 1_500 if args.quick else 10_000
    budget = args.cookbook_seconds or (30.0 if args.quick else 120.0)
    with tempfile.TemporaryDirectory() as folder, mock_server() as base:
        rows = [measure("run_batch", base, n, Path(folder), "run_batch", budget)]
        time.sleep(2)  # let the server's one-second buckets fill again
        rows.append(measure("cookbook loop", base, n, Path(folder), "cookbook", budget))
    print(
        f"limit {RPM:,} rpm over 1 s windows, {n:,} requests (the cookbook loop: at most {budget:g} s), "
        "one mock server on 127.0.0.1\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
