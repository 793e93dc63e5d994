"""Provider limits through the app, on virtual time: exact header values, 429s, TPM, quota, schedules.

Unless a test says otherwise a request is ``chat("hi", max_tokens=10)``: 8 prompt tokens + 10 = 18 charged.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from mock_server import KEEP, ServerConfig, create_app
from tests.mock_server.helpers import CHAT, at, chat, client_for, instant, vrun


def rate_headers(r: httpx.Response) -> dict[str, str]:
    return {
        k: v for k, v in r.headers.items() if k.startswith(("x-ratelimit-", "retry-after", "x-should-retry"))
    }


def error(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def test_headers_after_one_request_and_refill() -> None:
    app = instant(rpm=60, tpm=1000)

    async def main() -> list[dict[str, str]]:
        async with client_for(app) as c:
            first = await c.post(CHAT, json=chat())
            await at(0.5)
            second = await c.post(CHAT, json=chat())
            return [rate_headers(first), rate_headers(second)]

    first, second = vrun(main())
    assert first == {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s",  # one request refills in 60 s / 60
        "x-ratelimit-remaining-tokens": "982",
        "x-ratelimit-reset-tokens": "1.08s",  # 18 tokens at 1000/60 per second
    }
    # At t=0.5: 59.5 requests left before, 58.5 after; 18 - 8.33 + 18 = 27.67 tokens used.
    assert second["x-ratelimit-remaining-requests"] == "58"
    assert second["x-ratelimit-reset-requests"] == "1.5s"
    assert second["x-ratelimit-remaining-tokens"] == "972"
    assert second["x-ratelimit-reset-tokens"] == "1.66s"


def test_openai_header_example_5000_rpm() -> None:
    app = instant(rpm=5000)

    async def main() -> httpx.Response:
        async with client_for(app) as c:
            return await c.post(CHAT, json=chat())

    r = vrun(main())
    assert r.headers["x-ratelimit-remaining-requests"] == "4999"
    assert r.headers["x-ratelimit-reset-requests"] == "12ms"
    assert "x-ratelimit-limit-tokens" not in r.headers  # unlimited: the pair is omitted
    assert "x-ratelimit-remaining-tokens" not in r.headers


def burst(app: Any, n: int, body: dict[str, Any] | None = None, **headers: str) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        async with client_for(app) as c:
            return [await c.post(CHAT, json=body or chat(), headers=headers) for _ in range(n)]

    return vrun(main())


def keyed(app: Any, keys: list[str]) -> list[httpx.Response]:
    """One request per entry of ``keys`` (an Authorization value), in order, in one run."""

    async def main() -> list[httpx.Response]:
        async with client_for(app) as c:
            return [await c.post(CHAT, json=chat(), headers={"authorization": k}) for k in keys]

    return vrun(main())


def test_requests_429_counts_the_refused_request() -> None:
    app = instant(rpm=3, count_rejected=True)  # bucket of 3, refilling 0.05/s
    *ok, limited = burst(app, 4)
    assert [r.status_code for r in ok] == [200, 200, 200]
    assert limited.status_code == 429
    # count_rejected: the refused request took the bucket to -1, so the next fits after 2 / 0.05 = 40 s.
    assert rate_headers(limited) == {
        "x-ratelimit-limit-requests": "3",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1m20s",
        "retry-after": "40",
        "retry-after-ms": "40000",
    }
    err = error(limited)
    assert err["type"] == "requests"
    assert err["code"] == "rate_limit_exceeded"
    assert err["param"] is None
    assert "gpt-4o-mini" in err["message"]
    assert "requests per min (RPM): Limit 3, Used 3, Requested 1" in err["message"]
    assert err["message"].endswith("Please try again in 40s.")


def test_requests_429_without_counting_rejected() -> None:
    app = instant(rpm=3, count_rejected=False)
    limited = burst(app, 4)[-1]
    assert limited.headers["retry-after-ms"] == "20000"
    assert limited.headers["retry-after"] == "20"
    assert limited.headers["x-ratelimit-reset-requests"] == "1m0s"


def test_waiting_exactly_the_hint_succeeds() -> None:
    app = instant(rpm=3, count_rejected=False)

    async def main() -> list[int]:
        async with client_for(app) as c:
            for _ in range(3):
                await c.post(CHAT, json=chat())
            refused = await c.post(CHAT, json=chat())
            hint = int(refused.headers["retry-after-ms"]) / 1000
            await at(hint - 0.001)
            early = await c.post(CHAT, json=chat())
            await at(hint)
            on_time = await c.post(CHAT, json=chat())
            return [refused.status_code, early.status_code, on_time.status_code]

    # 1 ms early is refused; exactly on the hint fits (the bucket tests deadlines, not float differences).
    assert vrun(main()) == [429, 429, 200]


def test_short_window_enforces_bursts_of_three() -> None:
    app = instant(rpm=180, window=1.0, count_rejected=False)  # bucket of 3 refilling 3/s
    responses = burst(app, 4)
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    limited = responses[-1]
    assert limited.headers["x-ratelimit-limit-requests"] == "180"  # the advertised per-minute limit
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
    assert limited.headers["x-ratelimit-reset-requests"] == "1s"
    assert limited.headers["retry-after-ms"] == "334"  # 1/3 s, rounded up
    assert limited.headers["retry-after"] == "1"
    assert "enforced as 3 per 1s" in error(limited)["message"]


def test_hints_are_capped_at_60_seconds_and_debt_is_bounded() -> None:
    app = instant(rpm=1, count_rejected=True)  # one request per minute, refused requests counted
    responses = burst(app, 10)
    assert [r.status_code for r in responses] == [200] + [429] * 9
    for r in responses[1:]:
        assert r.headers["retry-after"] == "60"
        assert r.headers["retry-after-ms"] == "60000"
        # Debt stops at -capacity: full again two minutes from now, never later.
        assert r.headers["x-ratelimit-reset-requests"] == "2m0s"


def test_tokens_429_and_charge_modes() -> None:
    body = chat(max_tokens=40)  # 8 + 40 = 48
    app = instant(tpm=100, count_rejected=False)
    a, b, c = burst(app, 3, body)
    assert (a.status_code, b.status_code, c.status_code) == (200, 200, 429)
    assert b.headers["x-ratelimit-remaining-tokens"] == "4"
    assert "x-ratelimit-limit-requests" not in c.headers
    err = error(c)
    assert err["type"] == "tokens" and err["code"] == "rate_limit_exceeded"
    assert "tokens per min (TPM): Limit 100, Used 96, Requested 48" in err["message"]
    # Needs 48, has 4: 44 tokens at 100/60 per second = 26.4 s.
    assert c.headers["retry-after-ms"] == "26400"
    assert c.headers["retry-after"] == "27"

    prompt_only = instant(tpm=100, token_charge="prompt")
    responses = burst(prompt_only, 12, body)  # 8 tokens each
    assert [r.status_code for r in responses].count(200) == 12
    assert responses[-1].headers["x-ratelimit-remaining-tokens"] == "4"


def test_omitted_max_tokens_charges_the_default() -> None:
    app = instant(tpm=1000, default_max_tokens=50)
    (r,) = burst(app, 1, chat(max_tokens=None))
    assert r.headers["x-ratelimit-remaining-tokens"] == str(1000 - 8 - 50)
    (r,) = burst(instant(tpm=1000), 1, chat(max_tokens=None, max_completion_tokens=30))
    assert r.headers["x-ratelimit-remaining-tokens"] == str(1000 - 8 - 30)


def test_request_larger_than_the_bucket_is_answered_as_openai_does() -> None:
    # OpenAI: 429, type tokens, code rate_limit_exceeded -- only the message says it is too large.
    app = instant(tpm=6000, window=1.0)  # bucket of 100 tokens
    (r,) = burst(app, 1, chat(max_tokens=100))  # 108 > 100: can never be admitted
    assert r.status_code == 429
    assert "retry-after" not in r.headers and "x-should-retry" not in r.headers
    err = error(r)
    assert (err["type"], err["code"]) == ("tokens", "rate_limit_exceeded")
    assert "Request too large for gpt-4o-mini" in err["message"] and "Requested 108" in err["message"]


def test_request_larger_than_the_bucket_is_not_retryable() -> None:
    app = instant(tpm=6000, window=1.0, flag_too_large=True)  # the mock's aid: a distinct code
    (r,) = burst(app, 1, chat(max_tokens=100))  # 108 > 100: can never be admitted
    assert r.status_code == 429
    assert "retry-after" not in r.headers and "retry-after-ms" not in r.headers
    assert r.headers["x-should-retry"] == "false"
    err = error(r)
    assert (err["type"], err["code"]) == ("tokens", "request_too_large")
    assert "Request too large for gpt-4o-mini" in err["message"] and "Requested 108" in err["message"]
    record = app.events[-1]
    assert record["kind"] == "limited"
    assert record["detail"]["limit_type"] == "tokens"
    assert record["detail"]["code"] == "request_too_large"
    assert record["detail"]["retry_after_ms"] is None


def test_insufficient_quota() -> None:
    app = instant(quota_tokens=50)
    responses = burst(app, 3)  # 18 each: 36 fit, 54 do not
    assert [r.status_code for r in responses] == [200, 200, 429]
    r = responses[-1]
    err = error(r)
    assert (err["type"], err["code"]) == ("insufficient_quota", "insufficient_quota")
    assert "retry-after" not in r.headers
    assert r.headers["x-should-retry"] == "false"
    assert app.events[-1]["detail"]["limit_type"] == "quota"
    # A smaller request still fits the remaining balance of 14.
    (small,) = burst(app, 1, chat(max_tokens=6))
    assert small.status_code == 200
    assert app.stats()["quota"] == {"limit": 50, "used": 50}


def test_per_key_buckets_are_separate() -> None:
    app = instant(rpm=2, per_key=True)
    *alice, bob = keyed(app, ["Bearer sk-alice"] * 3 + ["Bearer sk-bob"])
    assert [r.status_code for r in alice] == [200, 200, 429]
    assert bob.status_code == 200
    assert bob.headers["x-ratelimit-remaining-requests"] == "1"
    keys = {e["detail"]["key"] for e in app.events}
    assert len(keys) == 2
    assert all(k.startswith("key-") and "alice" not in k and "bob" not in k for k in keys)
    assert len(app.stats()["keys"]) == 2


def test_shared_bucket_without_per_key() -> None:
    app = instant(rpm=2)
    *_, bob = keyed(app, ["Bearer sk-alice"] * 2 + ["Bearer sk-bob"])
    assert bob.status_code == 429
    assert "key" not in app.events[-1]["detail"]


def test_max_concurrent_refuses_with_a_hint_to_the_first_finish() -> None:
    app = create_app(ServerConfig(max_concurrent=2, ttft=1.0, per_token=0.0, jitter=0.0))

    async def main() -> tuple[list[httpx.Response], httpx.Response]:
        async with client_for(app) as c:
            first = await asyncio.gather(*(c.post(CHAT, json=chat()) for _ in range(3)))
            later = await c.post(CHAT, json=chat())
            return list(first), later

    first, later = vrun(main())
    assert sorted(r.status_code for r in first) == [200, 200, 429]
    (limited,) = [r for r in first if r.status_code == 429]
    assert limited.headers["retry-after-ms"] == "1000"
    assert "Limit 2 in flight" in error(limited)["message"]
    assert later.status_code == 200
    refused = [e for e in app.events if e["kind"] == "limited"]
    assert refused[0]["detail"]["limit_type"] == "concurrency"
    assert refused[0]["t"] == 0.0


def test_limit_schedule_keeps_usage_across_the_switch() -> None:
    app = instant(rpm=60, limit_schedule=((1.0, 30, 500),))

    async def main() -> list[httpx.Response]:
        async with client_for(app) as c:
            before = [await c.post(CHAT, json=chat()) for _ in range(3)]
            await at(1.0)
            after = await c.post(CHAT, json=chat())
            return [before[-1], after]

    before, after = vrun(main())
    assert before.headers["x-ratelimit-limit-requests"] == "60"
    assert "x-ratelimit-limit-tokens" not in before.headers
    # At t=1, 2 requests were still in use; under 30 RPM (0.5/s) the bucket holds 28, the request takes 1.
    assert after.headers["x-ratelimit-limit-requests"] == "30"
    assert after.headers["x-ratelimit-remaining-requests"] == "27"
    assert after.headers["x-ratelimit-reset-requests"] == "6s"
    # Tokens became limited at the switch: a fresh, full bucket.
    assert after.headers["x-ratelimit-limit-tokens"] == "500"
    assert after.headers["x-ratelimit-remaining-tokens"] == "482"
    assert app.limits.rpm == 30


def test_limit_schedule_counts_from_lifespan_startup() -> None:
    app = instant(rpm=60, limit_schedule=((3.0, 6, None),))

    async def main() -> httpx.Response:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        sent: list[dict[str, Any]] = []

        async def send(message: Any) -> None:
            sent.append(dict(message))

        lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, queue.get, send))
        await queue.put({"type": "lifespan.startup"})
        await at(5.0)
        assert sent == [{"type": "lifespan.startup.complete"}]
        async with client_for(app) as c:
            r = await c.post(CHAT, json=chat())
        await queue.put({"type": "lifespan.shutdown"})
        await lifespan
        assert sent[-1] == {"type": "lifespan.shutdown.complete"}
        return r

    r = vrun(main())
    assert r.headers["x-ratelimit-limit-requests"] == "6"
    assert app.stats()["epoch"] == 0.0


def test_set_limits_at_run_time() -> None:
    app = instant(rpm=60, tpm=1000)

    async def main() -> list[httpx.Response]:
        async with client_for(app) as c:
            a = await c.post(CHAT, json=chat())
            app.set_limits(rpm=6)  # brownout; tokens unchanged
            b = await c.post(CHAT, json=chat())
            app.set_limits(rpm=None, tpm=KEEP)
            d = await c.post(CHAT, json=chat())
            return [a, b, d]

    a, b, d = vrun(main())
    assert a.headers["x-ratelimit-remaining-requests"] == "59"
    assert b.headers["x-ratelimit-limit-requests"] == "6"
    assert b.headers["x-ratelimit-remaining-requests"] == "4"  # 1 used carried over, then 1 more
    assert "x-ratelimit-limit-requests" not in d.headers
    assert d.headers["x-ratelimit-remaining-tokens"] == "946"
    with pytest.raises(ValueError, match="tpm"):
        app.set_limits(tpm=0)
    with pytest.raises(ValueError, match="max_concurrent"):
        app.set_limits(max_concurrent=-1)
    with pytest.raises(ValueError, match="rpm"):
        instant(rpm=60, window=1.0).set_limits(rpm=30)  # half a request per 1 s window


def test_stats_shows_bucket_levels() -> None:
    app = instant(rpm=60, tpm=1000)
    burst(app, 2)
    stats = app.stats()
    assert stats["by_status"] == {"200": 2}
    assert stats["limits"] == {"rpm": 60, "tpm": 1000, "max_concurrent": None, "window": 60.0}
    bucket = stats["keys"]["*"]
    assert bucket["requests"]["remaining"] == 58
    assert bucket["tokens"]["level"] == 1000 - 36
    assert json.loads(json.dumps(stats)) == stats


def herd(count_rejected: bool, clients: int = 20, retries: int = 12) -> tuple[int, float]:
    """``clients`` callers that each retry exactly when told to, like the official SDK; (done, last t)."""
    app = instant(rpm=600, window=1.0, count_rejected=count_rejected)  # bucket of 10, refilling 10/s

    async def caller(c: httpx.AsyncClient) -> bool:
        for _ in range(retries + 1):
            r = await c.post(CHAT, json=chat())
            if r.status_code == 200:
                return True
            await asyncio.sleep(int(r.headers["retry-after-ms"]) / 1000)
        return False

    async def main() -> tuple[int, float]:
        async with client_for(app) as c:
            done = await asyncio.gather(*(caller(c) for _ in range(clients)))
            return sum(done), asyncio.get_running_loop().time()

    return vrun(main())


def test_a_herd_that_retries_on_the_hint() -> None:
    # Forgiving provider: each retry wave gets the one request that refilled; everyone is done in ~1 s.
    done, t = herd(count_rejected=False)
    assert done == 20 and t == pytest.approx(1.0, abs=0.2)
    # Counting provider: every refused retry spends the slot another caller was told to wait for, so the
    # retriers leapfrog each other forever — even just two of them — until their retries run out.
    # (Client-side throttling is the cure; the lessons show it.)
    assert herd(count_rejected=True)[0] == 10
    assert herd(count_rejected=True, clients=12)[0] == 10
