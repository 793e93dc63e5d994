"""Injected faults: shapes, charging, stream cuts, and reproducibility from the seed."""

from __future__ import annotations

import re

import httpx
import pytest

from mock_server import MockServerApp, ServerConfig, create_app
from tests.mock_server.helpers import CHAT, chat, chunks_of, client_for, instant, sse_events, vrun


def post_n(app: MockServerApp, n: int, **body: object) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        async with client_for(app) as c:
            return [await c.post(CHAT, json=chat(**body)) for _ in range(n)]  # type: ignore[arg-type]

    return vrun(main())


@pytest.mark.parametrize(
    ("field", "status", "code"),
    [
        ("error_rate_500", 500, None),
        ("error_rate_503", 503, "service_unavailable"),
        ("overloaded_rate", 503, "overloaded"),
    ],
)
def test_error_faults_are_openai_shaped_and_charged(field: str, status: int, code: str | None) -> None:
    app = instant(rpm=10, tpm=1000, **{field: 1.0})
    first, second = post_n(app, 2)
    assert first.status_code == status
    error = first.json()["error"]
    assert error["type"] == "server_error" and error["code"] == code and error["param"] is None
    # Admitted, charged, never refunded: the second request sees the first one's usage.
    assert first.headers["x-ratelimit-remaining-requests"] == "9"
    assert second.headers["x-ratelimit-remaining-tokens"] == str(1000 - 2 * 18)
    failed = [e for e in app.events if e["kind"] == "failed"]
    assert len(failed) == 2 and failed[0]["weight"] == 18 and failed[0]["detail"]["status"] == status
    assert app.stats()["by_status"] == {str(status): 2}


def test_error_faults_arrive_after_time_to_first_token() -> None:
    app = create_app(ServerConfig(ttft=0.25, per_token=1.0, jitter=0.0, error_rate_500=1.0))
    post_n(app, 1)
    assert [e["t"] for e in app.events if e["kind"] == "failed"] == [0.25]


def test_stream_cut_stops_without_done() -> None:
    app = instant(stream_cut_rate=1.0, seed=5)
    responses = post_n(app, 20, max_tokens=60, stream=True, stream_options={"include_usage": True})
    for r in responses:
        assert r.status_code == 200
        payloads = sse_events(r.text)
        assert "[DONE]" not in payloads
        chunks = chunks_of(r.text)
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        assert all(c["choices"] and c["choices"][0]["finish_reason"] is None for c in chunks)
    failed = [e for e in app.events if e["kind"] == "failed"]
    assert len(failed) == 20
    assert all(e["detail"]["code"] == "stream_cut" for e in failed)
    sent = [e["detail"]["chunks_sent"] for e in failed]
    assert sent == [len(chunks_of(r.text)) - 1 for r in responses]
    assert len(set(sent)) > 3  # cut at varying points


def test_stream_cut_spares_non_streaming_requests() -> None:
    responses = post_n(instant(stream_cut_rate=1.0), 5)
    assert all(r.status_code == 200 and r.json()["choices"] for r in responses)


def outcomes(seed: int, **rates: float) -> list[str]:
    app = instant(seed=seed, **rates)

    async def main() -> list[str]:
        async with client_for(app) as c:
            result = []
            for i in range(200):
                stream = i % 2 == 0
                r = await c.post(CHAT, json=chat(max_tokens=20, stream=stream))
                done = "[DONE]" in r.text if stream and r.status_code == 200 else None
                result.append(f"{r.status_code}:{done}:{re.sub(r'created.:[0-9]+', '', r.text)}")
            return result

    return vrun(main())


def test_faults_are_reproducible_from_the_seed() -> None:
    rates = {"error_rate_500": 0.1, "error_rate_503": 0.05, "overloaded_rate": 0.05, "stream_cut_rate": 0.2}
    a = outcomes(11, **rates)
    assert a == outcomes(11, **rates)
    assert a != outcomes(12, **rates)
    statuses = [x.split(":")[0] for x in a]
    assert 8 <= statuses.count("500") <= 35  # ~20 expected
    assert 5 <= statuses.count("503") <= 35  # ~20 expected
    cut = sum(1 for x in a if x.startswith("200:False"))
    assert 8 <= cut <= 35  # ~0.8 * 100 streams * 0.2


def test_fault_rates_do_not_shift_other_requests() -> None:
    # Every request draws the same numbers whatever the rates, so replies that survive are identical.
    clean = outcomes(3)
    faulty = outcomes(3, error_rate_500=0.3)
    survivors = [(c, f) for c, f in zip(clean, faulty, strict=True) if f.startswith("200")]
    assert len(survivors) > 100
    assert all(c == f for c, f in survivors)
