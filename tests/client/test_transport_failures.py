"""ThrottledTransport is safe with resources: every path gives the limiter slot back.

Failures are injected with a hand-made inner transport whose response bodies send one chunk and then
break off (``httpx.ReadError``) or stall (so that ``asyncio.timeout`` cancels the read).  Everything runs on
virtual time: a request that would wait forever for a leaked slot ends in a ``TimeoutError`` instead.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import openai
import pytest

from throttle_lab import (
    ExponentialBackoff,
    RetryPolicy,
    ThrottledTransport,
    Throttler,
    Trace,
    record,
    run,
)

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
USAGE = b'{"usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}}'
SSE = {"content-type": "text/event-stream"}


class BrokenBody(httpx.AsyncByteStream):
    """Sends one chunk, then breaks off with a ReadError (``stall=None``) or goes silent for ``stall`` s."""

    def __init__(self, stall: float | None = None) -> None:
        self.stall = stall

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"usage": {"prompt_'
        if self.stall is not None:
            await asyncio.sleep(self.stall)
        raise httpx.ReadError("connection reset in the middle of the body")


class Flaky(httpx.AsyncBaseTransport):
    """``/break``: the body breaks off; ``/stall``: it stalls for an hour; ``/ok``: a whole JSON answer.

    ``?status=503`` answers with that status (the retry branch); ``?sse=1`` labels the body a stream.
    """

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        status = int(request.url.params.get("status", "200"))
        headers = SSE if request.url.params.get("sse") else {}
        if request.url.path == "/break":
            return httpx.Response(status, headers=headers, stream=BrokenBody())
        if request.url.path == "/stall":
            return httpx.Response(status, headers=headers, stream=BrokenBody(stall=3600.0))
        return httpx.Response(200, headers=headers, content=USAGE)


def transport(limiter: Throttler, *, retry: RetryPolicy | None = None) -> ThrottledTransport:
    return ThrottledTransport(Flaky(), limiter=limiter, retry=retry)


async def third_request_goes_through(client: httpx.AsyncClient) -> int:
    """The request that waits forever (here: times out) when two slots of two have leaked."""
    async with asyncio.timeout(5.0):
        response = await client.post("/ok", json=BODY)
    return response.status_code


# ----------------------------------------------------------------------------------------------------------
# A body that breaks off, or is cancelled, while the transport reads it
# ----------------------------------------------------------------------------------------------------------

# (path, query): the ordinary final answer, and a 503 the transport reads in its retry branch.
BREAKS = [("/break", {}), ("/break", {"status": "503"})]
STALLS = [("/stall", {}), ("/stall", {"status": "503"})]


@pytest.mark.parametrize(("path", "params"), BREAKS, ids=["answer", "retry-branch"])
def test_a_body_that_breaks_off_gives_the_slot_back(path: str, params: Mapping[str, str]) -> None:
    async def main() -> tuple[int, float]:
        limiter = Throttler(max_concurrent=2)
        retry = RetryPolicy(backoff=ExponentialBackoff(base=1.0, cap=1.0))
        errors: list[BaseException] = []  # kept, as a logger or gather(return_exceptions=True) would
        async with httpx.AsyncClient(
            transport=transport(limiter, retry=retry), base_url="http://t"
        ) as client:
            for _ in range(2):
                try:
                    await client.post(path, json=BODY, params=params)
                except httpx.ReadError as exc:
                    errors.append(exc)
            assert len(errors) == 2
            assert limiter.in_flight == 0  # back at once, not whenever the garbage collector gets to it
            return await third_request_goes_through(client), limiter.in_flight

    with record() as trace:
        status, in_flight = run(main())
    assert (status, in_flight) == (200, 0)
    failed = trace.filter(kind="failed", source="client")
    assert [e.detail["error"] for e in failed] == ["ReadError", "ReadError"]
    assert [e.request for e in failed] == ["client-1", "client-2"]
    assert trace.filter(kind="released", source="throttler").count("released") == 3


@pytest.mark.parametrize(("path", "params"), STALLS, ids=["answer", "retry-branch"])
def test_a_cancel_mid_body_gives_the_slot_back(path: str, params: Mapping[str, str]) -> None:
    async def main() -> tuple[int, float]:
        limiter = Throttler(max_concurrent=2)
        timeouts: list[BaseException] = []
        async with httpx.AsyncClient(transport=transport(limiter), base_url="http://t") as client:
            for _ in range(2):
                try:
                    async with asyncio.timeout(1.0):  # expires while the body is being read
                        await client.post(path, json=BODY, params=params)
                except TimeoutError as exc:
                    timeouts.append(exc)
            assert len(timeouts) == 2
            assert limiter.in_flight == 0
            return await third_request_goes_through(client), limiter.in_flight

    with record() as trace:
        status, in_flight = run(main())
    assert (status, in_flight) == (200, 0)
    cancelled = trace.filter(kind="cancelled", source="client")
    assert [(e.t, e.request) for e in cancelled] == [(1.0, "client-1"), (2.0, "client-2")]
    assert trace.filter(kind="failed", source="client").count("failed") == 0  # a cancel is no failure


def test_an_error_in_reconcile_gives_the_slot_back() -> None:
    class BadBooks(ThrottledTransport):
        """Reconciling fails for the first two requests (a bug in a subclass, a surprising ``usage``)."""

        broken = 2

        def _reconcile(self, permit: Any, body: Mapping[str, Any], content: bytes, path: str) -> None:
            if self.broken:
                self.broken -= 1
                raise RuntimeError("books do not balance")
            super()._reconcile(permit, body, content, path)

    async def main() -> int:
        limiter = Throttler(max_concurrent=2)
        errors: list[BaseException] = []
        async with httpx.AsyncClient(
            transport=BadBooks(Flaky(), limiter=limiter), base_url="http://t"
        ) as client:
            for _ in range(2):
                try:
                    await client.post("/ok", json=BODY)
                except RuntimeError as exc:
                    errors.append(exc)
            assert len(errors) == 2
            return await third_request_goes_through(client)

    with record() as trace:
        assert run(main()) == 200
    assert [e.detail["error"] for e in trace.filter(kind="failed", source="client")] == ["RuntimeError"] * 2


# ----------------------------------------------------------------------------------------------------------
# Streamed answers: released when the body ends, breaks off, is cancelled, or is garbage-collected
# ----------------------------------------------------------------------------------------------------------


def test_a_stream_that_breaks_off_frees_its_slot_before_anyone_closes_it() -> None:
    async def main() -> tuple[float, float]:
        limiter = Throttler(max_concurrent=1)
        async with httpx.AsyncClient(transport=transport(limiter), base_url="http://t") as client:
            request = client.build_request("POST", "/break", json=BODY, params={"sse": "1"})
            response = await client.send(request, stream=True)
            held = limiter.in_flight
            with pytest.raises(httpx.ReadError):
                async for _ in response.aiter_bytes():
                    pass
            freed = limiter.in_flight  # the request is over: the slot is back, closed or not
            await response.aclose()
            return held, freed

    with record() as trace:
        assert run(main()) == (1, 0)
    failed = trace.filter(kind="failed", source="client")
    assert [(e.request, e.detail["error"]) for e in failed] == [("client-1", "ReadError")]
    assert trace.count("done") == 0


def test_a_stream_cancelled_mid_read_is_reported_cancelled_not_done() -> None:
    async def main() -> tuple[int, float]:
        limiter = Throttler(max_concurrent=1)
        async with httpx.AsyncClient(transport=transport(limiter), base_url="http://t") as client:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(2.0):
                    async with client.stream("POST", "/stall", json=BODY, params={"sse": "1"}) as response:
                        async for _ in response.aiter_bytes():
                            pass
            return await third_request_goes_through(client), limiter.in_flight

    with record() as trace:
        assert run(main()) == (200, 0)
    client_events = [(e.kind, e.request) for e in trace.filter(source="client") if e.kind != "sent"]
    assert ("cancelled", "client-1") in client_events
    assert ("done", "client-1") not in client_events  # only client-2, the third request, is done
    assert trace.filter(kind="done", source="client").count("done") == 1


def test_a_finished_stream_reports_done_for_its_own_request() -> None:
    async def main() -> None:
        limiter = Throttler(max_concurrent=1)
        client = httpx.AsyncClient(transport=transport(limiter), base_url="http://t")
        async with client, client.stream("POST", "/ok", json=BODY, params={"sse": "1"}) as response:
            await response.aread()

    with record() as trace:
        run(main())
    # Reported when the stream ended, outside the transport's call, yet still about request client-1.
    assert [e.request for e in trace.filter(kind="done", source="client")] == ["client-1"]
    assert [e.request for e in trace.filter(kind="released", source="throttler")] == ["client-1"]


def test_an_unclosed_stream_warns_when_collected_and_its_slot_comes_back() -> None:
    async def main() -> tuple[float, float, int]:
        limiter = Throttler(max_concurrent=1)
        async with httpx.AsyncClient(transport=transport(limiter), base_url="http://t") as client:
            request = client.build_request("POST", "/ok", json=BODY, params={"sse": "1"})
            response = await client.send(request, stream=True)  # ...and never read, never closed
            held = limiter.in_flight
            with pytest.warns(ResourceWarning, match="client-1.*without being closed"):
                del response
                gc.collect()
            await asyncio.sleep(0.001)  # the release was scheduled on the loop, not done in the finaliser
            freed = limiter.in_flight
            return held, freed, await third_request_goes_through(client)

    with record() as trace:
        assert run(main()) == (1, 0, 200)
    late = trace.filter(kind="cancelled", source="client")
    assert [(e.request, dict(e.detail)) for e in late] == [("client-1", {"reason": "not closed"})]


def test_an_unclosed_stream_outliving_its_loop_only_warns() -> None:
    async def main() -> httpx.Response:
        transport_ = transport(Throttler(max_concurrent=1))
        request = httpx.Request("POST", "http://t/ok", json=BODY, params={"sse": "1"})
        return await transport_.handle_async_request(request)

    response = run(main())  # the loop, and the throttler bound to it, are gone now
    with pytest.warns(ResourceWarning, match="without being closed"):
        del response
        gc.collect()


# ----------------------------------------------------------------------------------------------------------
# Streaming request bodies: multipart uploads and generators are read first, and resent on a retry
# ----------------------------------------------------------------------------------------------------------


def uploads(answers: list[int], seen: list[httpx.Request]) -> httpx.MockTransport:
    """A server that records each request (body read) and answers the scripted statuses, then 200."""
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = queue.pop(0) if queue else 200
        return httpx.Response(status, json={"ok": status == 200})

    return httpx.MockTransport(handler)


async def chunks() -> AsyncIterator[bytes]:
    for part in (b"first,", b"second,", b"third"):
        yield part


def test_a_multipart_upload_arrives_whole_and_is_resent_on_a_retry() -> None:
    payload = bytes(range(256)) * 40  # binary, 10 kB
    seen: list[httpx.Request] = []

    async def main() -> int:
        throttled = ThrottledTransport(
            uploads([503], seen),
            limiter=Throttler(max_concurrent=1),
            retry=RetryPolicy(backoff=ExponentialBackoff(base=1.0, cap=1.0)),
        )
        async with httpx.AsyncClient(transport=throttled, base_url="http://t") as client:
            response = await client.post(
                "/v1/files", files={"file": ("data.bin", payload)}, data={"purpose": "batch"}
            )
        return response.status_code

    assert run(main()) == 200
    assert len(seen) == 2  # the 503, then the retry
    first, second = seen
    assert first.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert payload in first.content and b'name="purpose"' in first.content
    assert second.content == first.content  # the same bytes, resent


def test_a_generator_body_is_read_once_and_resent() -> None:
    seen: list[httpx.Request] = []

    async def main() -> int:
        throttled = ThrottledTransport(
            uploads([503], seen), retry=RetryPolicy(backoff=ExponentialBackoff(base=1.0, cap=1.0))
        )
        async with httpx.AsyncClient(transport=throttled, base_url="http://t") as client:
            return (await client.post("/ingest", content=chunks())).status_code

    assert run(main()) == 200
    assert [r.content for r in seen] == [b"first,second,third"] * 2


def test_the_openai_sdk_uploads_a_file_through_the_transport() -> None:
    seen: list[httpx.Request] = []
    data = b'{"custom_id": "1", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n'

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "id": "file-abc",
                "object": "file",
                "bytes": len(data),
                "created_at": 0,
                "filename": "batch.jsonl",
                "purpose": "batch",
                "status": "processed",
            },
        )

    async def main() -> str:
        throttled = ThrottledTransport(httpx.MockTransport(handler), limiter=Throttler(max_concurrent=2))
        client = openai.AsyncOpenAI(
            base_url="http://mock/v1",
            api_key="sk-test",
            http_client=httpx.AsyncClient(transport=throttled),
            max_retries=0,
        )
        uploaded = await client.files.create(file=("batch.jsonl", data), purpose="batch")
        await client.close()
        return uploaded.id

    with record() as trace:
        assert run(main()) == "file-abc"
    (request,) = seen
    assert request.url.path == "/v1/files" and data in request.content
    assert trace.count("done") == 1 and isinstance(trace, Trace)
