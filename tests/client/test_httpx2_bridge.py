"""Httpx2Transport: an httpx transport (a ThrottledTransport above all) for clients built on httpx2."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import httpx2
import pytest

from throttle_lab import ThrottledTransport, Throttler, run
from throttle_lab.client.httpx2_bridge import Httpx2Transport


def test_requests_and_answers_cross_unchanged() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = gzip.compress(json.dumps({"echo": json.loads(request.content)}).encode())
        return httpx.Response(
            201,
            headers={"content-encoding": "gzip", "x-thing": "a", "content-type": "application/json"},
            content=body,
        )

    async def main() -> httpx2.Response:
        async with httpx2.AsyncClient(transport=Httpx2Transport(httpx.MockTransport(handler))) as client:
            return await client.post(
                "http://api.test/v1/messages?beta=true", json={"q": 1}, headers={"x-api-key": "k"}
            )

    response = run(main())
    assert response.status_code == 201 and response.headers["x-thing"] == "a"
    assert response.json() == {"echo": {"q": 1}}  # gzip decoded once, by httpx2
    (request,) = seen
    assert (request.method, str(request.url)) == ("POST", "http://api.test/v1/messages?beta=true")
    assert request.headers["x-api-key"] == "k" and json.loads(request.content) == {"q": 1}


def test_a_streamed_answer_keeps_its_slot_until_it_is_closed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=b"data: 1\n\ndata: 2\n\n"
        )

    async def main() -> tuple[float, float, list[bytes]]:
        throttler = Throttler(max_concurrent=1)
        transport = Httpx2Transport(ThrottledTransport(httpx.MockTransport(handler), limiter=throttler))
        async with httpx2.AsyncClient(transport=transport) as client:
            async with client.stream("POST", "http://api.test/v1/messages", json={}) as response:
                during = throttler.in_flight
                chunks = [chunk async for chunk in response.aiter_bytes()]
            return during, throttler.in_flight, chunks

    during, after, chunks = run(main())
    assert (during, after) == (1, 0)
    assert b"".join(chunks) == b"data: 1\n\ndata: 2\n\n"


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (httpx.ConnectError("refused"), httpx2.ConnectError),
        (httpx.ReadTimeout("slow"), httpx2.ReadTimeout),
        (httpx.RemoteProtocolError("bad"), httpx2.RemoteProtocolError),
    ],
)
def test_httpx_errors_become_the_httpx2_errors_of_the_same_name(
    raised: httpx.HTTPError, expected: type[Exception]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    async def main() -> None:
        async with httpx2.AsyncClient(transport=Httpx2Transport(httpx.MockTransport(handler))) as client:
            await client.get("http://api.test/")

    with pytest.raises(expected, match=str(raised)):
        run(main())


def test_only_httpx_transports_are_accepted() -> None:
    with pytest.raises(ValueError, match=r"httpx\.AsyncBaseTransport"):
        Httpx2Transport(httpx2.AsyncHTTPTransport())  # an httpx2 transport: the wrong side of the bridge


def test_an_encoded_body_built_in_memory_is_decoded_once_through_the_throttled_transport() -> None:
    body = gzip.compress(b'{"usage": {"prompt_tokens": 3}}')

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-encoding": "gzip", "content-type": "application/json"}
        return httpx.Response(200, headers=headers, content=body)

    async def main() -> tuple[object, object]:
        throttled = ThrottledTransport(httpx.MockTransport(handler), limiter=Throttler(tpm=6_000))
        async with httpx.AsyncClient(transport=throttled) as plain:
            first = (await plain.post("http://api.test/v1/chat/completions", json={})).json()
        throttled = ThrottledTransport(httpx.MockTransport(handler), limiter=Throttler(tpm=6_000))
        async with httpx2.AsyncClient(transport=Httpx2Transport(throttled)) as bridged:
            second = (await bridged.post("http://api.test/v1/chat/completions", json={})).json()
        return first, second

    assert run(main()) == ({"usage": {"prompt_tokens": 3}},) * 2


def test_a_body_that_breaks_mid_read_raises_the_httpx2_error_and_gives_the_slot_back() -> None:
    class Breaking(httpx.AsyncByteStream):
        async def __aiter__(self) -> Any:
            yield b"data: 1\n\n"
            raise httpx.ReadError("connection reset")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Breaking())

    async def main() -> tuple[list[bytes], float]:
        throttler = Throttler(max_concurrent=1)
        transport = Httpx2Transport(ThrottledTransport(httpx.MockTransport(handler), limiter=throttler))
        got: list[bytes] = []
        async with httpx2.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx2.ReadError, match="connection reset"):
                async with client.stream("POST", "http://api.test/v1/messages", json={}) as response:
                    async for chunk in response.aiter_bytes():
                        got.append(chunk)
        return got, throttler.in_flight

    got, in_flight = run(main())
    assert got == [b"data: 1\n\n"] and in_flight == 0
