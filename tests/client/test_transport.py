"""ThrottledTransport against scripted servers (httpx.MockTransport) on virtual time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from throttle_lab import (
    AIMD,
    ClientSideThrottle,
    ExponentialBackoff,
    FullJitter,
    RetryError,
    RetryPolicy,
    ThrottledTransport,
    Throttler,
    TokenBucket,
    Trace,
    record,
    run,
)

BODY = {"model": "m", "messages": [{"role": "user", "content": "x" * 40}], "max_tokens": 50}  # 3+4+10+50 = 67


def scripted(
    answers: list[tuple[int, dict[str, str]]], log: list[tuple[float, str]] | None = None
) -> httpx.MockTransport:
    """A server that answers the scripted (status, headers) in order, then 200s with a usage block."""
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        if log is not None:
            log.append((asyncio.get_running_loop().time(), request.headers.get("x-request-id", "")))
        status, headers = queue.pop(0) if queue else (200, {})
        if status == 200:
            return httpx.Response(
                200, json={"usage": {"prompt_tokens": 17, "completion_tokens": 5, "total_tokens": 22}}
            )
        return httpx.Response(
            status, headers=headers, json={"error": {"type": "requests", "code": "rate_limit_exceeded"}}
        )

    return httpx.MockTransport(handler)


def post(make_transport: Callable[[], httpx.AsyncBaseTransport], n: int = 1) -> tuple[list[int], Trace]:
    async def main() -> list[int]:
        async with httpx.AsyncClient(transport=make_transport(), base_url="http://test") as client:
            responses = await asyncio.gather(
                *(client.post("/v1/chat/completions", json=BODY) for _ in range(n))
            )
            return [r.status_code for r in responses]

    with record() as trace:
        statuses = run(main())
    return statuses, trace


def test_retries_a_429_after_the_servers_hint() -> None:
    log: list[tuple[float, str]] = []
    statuses, trace = post(
        lambda: ThrottledTransport(
            scripted([(429, {"retry-after-ms": "2500"})], log),
            retry=RetryPolicy(backoff=ExponentialBackoff(base=0.5, cap=8)),
        )
    )
    assert statuses == [200]
    assert [t for t, _ in log] == [0.0, 2.5]  # waited exactly the hint (it beats backoff's 0.5 s)
    assert [e.kind for e in trace] == ["sent", "response", "429", "retry", "sent", "response", "done"]
    assert trace.of_kind("retry")[0].detail["delay"] == 2.5
    assert {e.request for e in trace} == {"client-1"}


def test_5xx_is_retried_with_backoff_and_a_400_is_not() -> None:
    log: list[tuple[float, str]] = []
    statuses, _ = post(
        lambda: ThrottledTransport(
            scripted([(503, {}), (500, {}), (400, {})], log),
            retry=RetryPolicy(backoff=ExponentialBackoff(base=1.0, cap=8)),
        )
    )
    assert statuses == [400]
    assert [t for t, _ in log] == [0.0, 1.0, 3.0]


def test_gives_up_returning_the_last_answer_or_raising() -> None:
    always_429 = [(429, {"retry-after": "1"})] * 10
    statuses, trace = post(
        lambda: ThrottledTransport(scripted(always_429), retry=RetryPolicy(max_attempts=3))
    )
    assert statuses == [429]
    failed = trace.of_kind("failed")
    assert len(failed) == 1 and failed[0].detail == {"status": 429, "attempts": 3}

    async def main() -> RetryError:
        transport = ThrottledTransport(
            scripted(always_429), retry=RetryPolicy(max_attempts=2), raise_on_give_up=True
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            with pytest.raises(RetryError) as info:
                await client.post("/v1/chat/completions", json=BODY)
            return info.value

    error = run(main())
    assert error.attempts == 2 and error.status_code == 429
    assert error.last_response.json()["error"]["code"] == "rate_limit_exceeded"
    assert "gave up after 2 attempt(s): HTTP 429" in str(error)


def test_a_429_pauses_the_whole_throttler_once() -> None:
    log: list[tuple[float, str]] = []
    statuses, trace = post(
        lambda: ThrottledTransport(
            scripted([(429, {"retry-after": "3"})], log),
            limiter=Throttler(max_concurrent=1),
            retry=RetryPolicy(backoff=ExponentialBackoff(base=0.1, cap=1)),
        ),
        n=3,
    )
    assert statuses == [200, 200, 200]
    # The first attempt got 429 "retry after 3": nobody -- not just that request -- goes before t=3.
    assert [t for t, _ in log] == [0.0, 3.0, 3.0, 3.0]
    assert len(trace.of_kind("paused")) == 1


def test_a_429_pauses_before_its_slot_goes_to_the_next_in_line() -> None:
    # The others are already queued for the one slot when the 429 comes back (the server takes 0.5 s).
    # Given back before the pause, the slot would go to the next waiter at once, straight into the wall.
    sent: list[float] = []
    answers = [429]

    async def slow(request: httpx.Request) -> httpx.Response:
        sent.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.5)
        if answers:
            answers.pop()
            return httpx.Response(429, headers={"retry-after": "3"}, json={"error": {"type": "requests"}})
        return httpx.Response(200, json={})

    statuses, _ = post(
        lambda: ThrottledTransport(
            httpx.MockTransport(slow),
            limiter=Throttler(max_concurrent=1),
            retry=RetryPolicy(backoff=ExponentialBackoff(base=0.1, cap=1)),
        ),
        n=3,
    )
    assert statuses == [200, 200, 200]
    assert sent == [0.0, 3.5, 4.0, 4.5]  # nothing between the 429 (at 0.5) and the pause's end (3.5)


def test_tokens_are_estimated_then_reconciled_with_usage() -> None:
    async def main() -> tuple[float, float]:
        throttler = Throttler(tpm=6000, window=1)  # a 100-token bucket
        transport = ThrottledTransport(scripted([]), limiter=throttler)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await client.post("/v1/chat/completions", json=BODY)
        stats = throttler.statistics()
        return stats.tokens_granted, stats.tokens_level or 0.0

    tokens_granted, level = run(main())
    # Estimated 67 (3 + 4 + 10 + 50); the server counted a 17-token prompt: 17 + 50 = 67 -> no change.
    assert tokens_granted == 67 and level == 33


def test_streamed_responses_hold_the_slot_until_the_stream_closes() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        limiter = Throttler(max_concurrent=1)

        async def chunks():  # type: ignore[no-untyped-def]
            for i in range(3):
                await asyncio.sleep(1.0)
                yield f"data: {i}\n\n".encode()

        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=chunks())

        transport = ThrottledTransport(httpx.MockTransport(handler), limiter=limiter)
        finished = []
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def stream_one() -> None:
                async with client.stream(
                    "POST", "/v1/chat/completions", json={**BODY, "stream": True}
                ) as response:
                    async for _ in response.aiter_bytes():
                        pass
                finished.append(loop.time())

            await asyncio.gather(stream_one(), stream_one())
        return finished

    assert run(main()) == [3.0, 6.0]  # the second stream waited for the first to finish


def test_any_limiter_can_gate_the_transport() -> None:
    log: list[tuple[float, str]] = []
    statuses, _ = post(
        lambda: ThrottledTransport(scripted([], log), limiter=TokenBucket(rate=2, capacity=1)), n=3
    )
    assert statuses == [200] * 3
    assert [t for t, _ in log] == [0.0, 0.5, 1.0]


def test_aimd_hears_successes_and_429s() -> None:
    controller = AIMD(10.0, floor=1.0, ceiling=10.0, increase=1.0)

    async def main() -> None:
        transport = ThrottledTransport(
            scripted([(429, {"retry-after": "1"})]), retry=RetryPolicy(), aimd=controller
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await client.post("/v1/chat/completions", json=BODY)

    run(main())
    stats = controller.statistics()
    assert (stats.rate_limited, stats.successes) == (1, 1)
    assert controller.rate == 6.0  # halved to 5, then +1


def test_client_side_throttle_rejects_locally_when_the_server_keeps_refusing() -> None:
    async def main() -> list[int]:
        throttle = ClientSideThrottle(k=1.0, window=60.0, seed=1)
        transport = ThrottledTransport(scripted([(429, {})] * 1000), client_throttle=throttle)
        statuses = []
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for _ in range(50):
                response = await client.post("/v1/chat/completions", json=BODY)
                statuses.append(int(response.headers.get("x-throttle-lab-rejected") == "client"))
        return statuses

    local = run(main())
    assert local[0] == 0  # the first request is always sent
    assert sum(local) > 25  # most later ones never leave the client


def test_requests_keep_an_id_the_server_can_see() -> None:
    log: list[tuple[float, str]] = []

    async def main() -> None:
        transport = ThrottledTransport(scripted([], log), name="app")
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await client.post("/x", json=BODY)
            await client.post("/x", json=BODY, headers={"x-request-id": "mine"})

    run(main())
    assert [rid for _, rid in log] == ["app-1", "mine"]


def test_rejects_a_limiter_without_slot() -> None:
    with pytest.raises(ValueError, match="slot"):
        ThrottledTransport(httpx.MockTransport(lambda r: httpx.Response(200)), limiter=object())
    with pytest.raises(ValueError, match="weight"):
        ThrottledTransport(weight="bytes")  # type: ignore[arg-type]


def test_non_json_bodies_pass_through() -> None:
    async def main() -> bytes:
        transport = ThrottledTransport(httpx.MockTransport(lambda r: httpx.Response(200, content=b"plain")))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post("/upload", content=b"\x00\x01")
            return response.content

    assert run(main()) == b"plain"
    assert json.dumps(BODY)  # keep json imported for readers adapting the scripted server


# ----------------------------------------------------------------------------------------------------------
# Which requests are resent, and with which idempotency key
# ----------------------------------------------------------------------------------------------------------


def recording(answers: list[int], seen: list[httpx.Request]) -> httpx.MockTransport:
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(queue.pop(0) if queue else 200, json={})

    return httpx.MockTransport(handler)


def send_all(
    policy: RetryPolicy, answers: list[int], requests: list[tuple[str, dict[str, str]]]
) -> tuple[list[int], list[httpx.Request]]:
    """Send ``(method, headers)`` requests one after another; return their statuses and every attempt."""
    seen: list[httpx.Request] = []

    async def main() -> list[int]:
        transport = ThrottledTransport(recording(answers, seen), retry=policy)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            statuses = []
            for method, headers in requests:
                body = BODY if method == "POST" else None
                response = await client.request(method, "/v1/thing", json=body, headers=headers)
                statuses.append(response.status_code)
            return statuses

    return run(main()), seen


def test_a_post_is_not_resent_on_503_when_non_idempotent_retries_are_off() -> None:
    safe = RetryPolicy(backoff=ExponentialBackoff(base=1.0, cap=1.0), retry_non_idempotent=False)
    statuses, seen = send_all(safe, [503], [("POST", {})])
    assert statuses == [503] and len(seen) == 1  # the server may have done the work: not sent twice

    statuses, seen = send_all(safe, [503], [("GET", {})])
    assert statuses == [200] and [r.method for r in seen] == ["GET", "GET"]

    statuses, seen = send_all(safe, [429], [("POST", {})])
    assert statuses == [200] and len(seen) == 2  # a 429 did nothing: always safe to resend


def test_by_default_a_post_is_resent_on_503_like_the_sdks_do() -> None:
    statuses, seen = send_all(
        RetryPolicy(backoff=ExponentialBackoff(base=1.0, cap=1.0)), [503], [("POST", {})]
    )
    assert statuses == [200] and len(seen) == 2


def test_an_idempotency_key_is_stable_across_retries_and_unique_per_request() -> None:
    keyed = RetryPolicy(backoff=ExponentialBackoff(base=1.0, cap=1.0), idempotency_key=True)
    statuses, seen = send_all(keyed, [503, 429], [("POST", {}), ("POST", {})])
    assert statuses == [200, 200]
    keys = [r.headers["idempotency-key"] for r in seen]
    ids = [r.headers["x-request-id"] for r in seen]
    assert ids == ["client-1", "client-1", "client-1", "client-2"]
    assert keys[0] == keys[1] == keys[2] != keys[3]  # one key for all three attempts of request 1
    assert all(len(key) == 36 for key in keys)  # a UUID


def test_an_idempotency_key_set_by_the_caller_is_kept_and_gets_get_none() -> None:
    keyed = RetryPolicy(backoff=ExponentialBackoff(base=1.0, cap=1.0), idempotency_key="X-Op-Key")
    _, seen = send_all(keyed, [503], [("POST", {"x-op-key": "mine"}), ("GET", {})])
    assert [r.headers.get("x-op-key") for r in seen] == ["mine", "mine", None]
    assert all("idempotency-key" not in r.headers for r in seen)  # only the header the policy names
    _, seen = send_all(RetryPolicy(), [], [("POST", {})])
    assert "idempotency-key" not in seen[0].headers  # off by default


def test_hint_plus_jitter_spreads_a_herd_of_independent_clients() -> None:
    # 100 clients, each its own transport and seed, all told "retry after 3 s" at t=0.
    arrivals: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def handler(request: httpx.Request) -> httpx.Response:
            arrivals.append(loop.time())
            if loop.time() == 0.0:
                return httpx.Response(429, headers={"retry-after": "3"}, json={})
            return httpx.Response(200, json={})

        async def one_client(seed: int) -> int:
            policy = RetryPolicy(backoff=FullJitter(base=1.0, cap=8.0, seed=seed), hint_mode="plus_jitter")
            transport = ThrottledTransport(httpx.MockTransport(handler), retry=policy)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return (await client.post("/v1/chat/completions", json=BODY)).status_code

        assert await asyncio.gather(*(one_client(seed) for seed in range(100))) == [200] * 100

    run(main())
    retries = arrivals[100:]
    assert len(retries) == 100
    assert all(3.0 <= t <= 4.0 for t in retries)  # never before the hint, within hint + the first jitter
    assert max(retries) - min(retries) > 0.9 and len(set(retries)) == 100  # not one wave


def test_a_reply_in_memory_is_handed_on_read_in_place_with_its_books_settled() -> None:
    """An unread in-memory body (an in-process server's) is read where it is: the same response object, its
    content there before the caller reads, usage reconciled and the slot back."""
    usage = b'{"usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}}'
    answered: list[httpx.Response] = []

    class InMemory(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = httpx.Response(
                200, headers={"content-type": "application/json"}, stream=httpx.ByteStream(usage)
            )
            answered.append(response)
            return response

    throttler = Throttler(max_concurrent=1, tpm=6_000)

    async def main() -> httpx.Response:
        throttled = ThrottledTransport(InMemory(), limiter=throttler)
        return await throttled.handle_async_request(
            httpx.Request("POST", "http://test/v1/chat/completions", json=BODY)
        )

    with record() as trace:
        response = run(main())
    assert response is answered[0] and response.content == usage  # no aread() needed: read in place
    assert throttler.in_flight == 0
    assert [event.weight for event in trace.of_kind("released")] == [7 + 50]  # the input reconciled to 7
