"""A streamed answer is reconciled from the usage in its events, as a JSON answer is from its body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from throttle_lab import Event, ThrottledTransport, Throttler, Tokens, record, run
from throttle_lab.client.stream_usage import StreamUsage


class Books:
    def __init__(self) -> None:
        self.reconciled: list[float] = []

    def reconcile(self, actual_tokens: float) -> None:
        self.reconciled.append(actual_tokens)


def sse(*events: dict[str, Any], done: bool = False) -> bytes:
    lines = [f"event: {e.get('type', 'x')}\ndata: {json.dumps(e)}\n\n" for e in events]
    return ("".join(lines) + ("data: [DONE]\n\n" if done else "")).encode()


ANTHROPIC_STREAM = sse(
    {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 12, "output_tokens": 1}}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "no usage here"}},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 37}},
    {"type": "message_stop"},
)


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_usage_is_found_however_the_bytes_are_cut() -> None:
    for size in (1, 3, 7, 64, len(ANTHROPIC_STREAM)):
        books = Books()
        watcher = StreamUsage(
            books, lambda answer: Tokens(answer["usage"]["input_tokens"], answer["usage"]["output_tokens"])
        )
        for piece in chunks(ANTHROPIC_STREAM, size):
            watcher.feed(piece)
        watcher.finish()
        assert books.reconciled == [Tokens(12, 37)], size


def test_a_stream_without_usage_or_with_garbage_changes_nothing() -> None:
    books = Books()
    watcher = StreamUsage(books, lambda answer: Tokens(1, 1))
    watcher.feed(b'data: {"usage": not json}\n\ndata: [1, "usage"]\n\ndata: {"usage": 5}\n')
    watcher.finish()
    assert books.reconciled == []


def test_the_last_line_counts_even_without_a_final_newline() -> None:
    books = Books()
    watcher = StreamUsage(books, lambda answer: Tokens(answer["usage"]["prompt_tokens"], 0))
    watcher.feed(b'data: {"choices": [], "usage": {"prompt_tokens": 9}}')
    watcher.finish()
    assert books.reconciled == [Tokens(9, 0)]


def streamed(body: bytes, path: str) -> tuple[list[Event], bytes]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=httpx.ByteStream(body)
        )

    async def main() -> bytes:
        transport = ThrottledTransport(
            httpx.MockTransport(handler), limiter=Throttler(itpm=6_000, otpm=6_000, tpm=12_000)
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            request_body = {
                "max_tokens": 500,
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            }
            async with client.stream("POST", path, json=request_body) as response:
                return b"".join([piece async for piece in response.aiter_bytes()])

    with record() as trace:
        received = run(main())
    return [e for e in trace if e.kind == "adjusted"], received


def test_an_anthropic_stream_gives_back_the_unused_output_budget() -> None:
    adjusted, received = streamed(ANTHROPIC_STREAM, "/v1/messages")
    assert received == ANTHROPIC_STREAM  # the caller gets every byte, untouched
    # Estimated Tokens(3 + 4 + 1, 500); the server counted 12 in and wrote 37.
    assert [e.weight for e in adjusted] == [(12 + 37) - (8 + 500)]
    assert adjusted[0].detail["output_tokens_left"] == 6_000 - 37  # a minute's budget, less what was written


def test_a_chat_stream_corrects_the_prompt_but_keeps_the_reply_budget() -> None:
    stream = sse(
        {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "Hi"}}]},
        {
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": {"prompt_tokens": 20, "completion_tokens": 2},
        },
        done=True,
    )
    adjusted, _ = streamed(stream, "/v1/chat/completions")
    # OpenAI keeps max_tokens charged: only the prompt (estimated 8, counted 20) changes.
    assert [e.weight for e in adjusted] == [12]


def test_a_stream_that_breaks_off_is_not_reconciled() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        async def body() -> Any:
            yield ANTHROPIC_STREAM[:150]
            raise httpx.ReadError("connection reset")

        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Stream(body))

    class Stream(httpx.AsyncByteStream):
        def __init__(self, make: Any) -> None:
            self._make = make

        async def __aiter__(self) -> Any:
            async for piece in self._make():
                yield piece

    async def main() -> float:
        throttler = Throttler(itpm=6_000, otpm=6_000)
        transport = ThrottledTransport(httpx.MockTransport(handler), limiter=throttler)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            body = {"max_tokens": 500, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
            try:
                async with client.stream("POST", "/v1/messages", json=body) as response:
                    async for _ in response.aiter_bytes():
                        pass
            except httpx.ReadError:
                pass
        assert throttler.in_flight == 0
        return throttler.statistics().tokens_granted

    with record() as trace:
        granted = run(main())
    assert granted == 8 + 500 and not [e for e in trace if e.kind == "adjusted"]
