"""Bad input gets an OpenAI-shaped 4xx naming the problem — never a 500, never a crash."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_server import MockServerApp
from mock_server.asgi import decode_json
from tests.mock_server.helpers import CHAT, chat, client_for, instant, malformed_bodies, vrun

GOOD_MESSAGE = {"role": "user", "content": "hi"}


def send_raw(app: MockServerApp, content: bytes, **headers: str) -> httpx.Response:
    async def main() -> httpx.Response:
        async with client_for(app) as c:
            return await c.post(CHAT, content=content, headers=headers)

    return vrun(main())


def body(**fields: Any) -> bytes:
    return json.dumps({"model": "gpt-4o-mini", "messages": [GOOD_MESSAGE], **fields}).encode()


def assert_openai_error(
    r: httpx.Response, status: int, code: str | None = None, param: str | None = None
) -> None:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param


@pytest.mark.parametrize(
    ("content", "code", "param"),
    [
        (b"", "invalid_json", None),
        (b"{", "invalid_json", None),
        (b"\xff\xfe\x00", "invalid_json", None),
        (b"[" * 100_000, "invalid_json", None),  # nesting deeper than the recursion limit
        (b"1" * 5000, "invalid_json", None),  # integer longer than Python will parse
        (b"null", "invalid_json", None),
        (b'"a string"', "invalid_json", None),
        (b"{}", "missing_required_parameter", "model"),
        (json.dumps({"model": "gpt-4o-mini"}).encode(), "missing_required_parameter", "messages"),
        (json.dumps({"model": 4, "messages": [GOOD_MESSAGE]}).encode(), "invalid_type", "model"),
        (body(messages="hi"), "invalid_type", "messages"),
        (body(messages=[]), "empty_array", "messages"),
        (body(messages=[1]), "invalid_type", "messages[0]"),
        (body(messages=[{"content": "x"}]), "missing_required_parameter", "messages[0].role"),
        (body(messages=[{"role": "wizard", "content": "x"}]), "invalid_value", "messages[0].role"),
        (body(messages=[{"role": ["user"], "content": "x"}]), "invalid_value", "messages[0].role"),
        (
            body(messages=[GOOD_MESSAGE, {"role": "user", "content": 5}]),
            "invalid_type",
            "messages[1].content",
        ),
        (body(messages=[{"role": "user"}]), "missing_required_parameter", "messages[0].content"),
        (
            body(messages=[{"role": "user", "content": [{"type": 1}]}]),
            "invalid_type",
            "messages[0].content[0].type",
        ),
        (
            body(messages=[{"role": "user", "content": [{"type": "text"}]}]),
            "invalid_type",
            "messages[0].content[0].text",
        ),
        (body(messages=[{"role": "user", "content": ["x"]}]), "invalid_type", "messages[0].content[0]"),
        (body(messages=[{"role": "user", "content": "x", "name": 5}]), "invalid_type", "messages[0].name"),
        (body(max_tokens="10"), "invalid_type", "max_tokens"),
        (body(max_tokens=True), "invalid_type", "max_tokens"),
        (body(max_tokens=1.5), "invalid_type", "max_tokens"),
        (body(max_tokens=0), "integer_below_min_value", "max_tokens"),
        (body(max_tokens=-3), "integer_below_min_value", "max_tokens"),
        (body(max_tokens=10**9), "invalid_value", "max_tokens"),
        (body(max_completion_tokens=[]), "invalid_type", "max_completion_tokens"),
        (body(n=0), "integer_below_min_value", "n"),
        (body(n=129), "integer_above_max_value", "n"),
        (body(n=2.0), "invalid_type", "n"),
        (body(n="2"), "invalid_type", "n"),
        (body(stream="yes"), "invalid_type", "stream"),
        (body(stream_options={"include_usage": True}), "invalid_value", "stream_options"),
        (body(stream=True, stream_options="x"), "invalid_type", "stream_options"),
        (
            body(stream=True, stream_options={"include_usage": 1}),
            "invalid_type",
            "stream_options.include_usage",
        ),
        (body(messages=[{"role": "user", "content": "x" * 600_000}]), "context_length_exceeded", "messages"),
    ],
)
def test_malformed_requests_get_400(content: bytes, code: str, param: str | None) -> None:
    r = send_raw(instant(), content, **{"content-type": "application/json"})
    assert_openai_error(r, 400, code, param)


@pytest.mark.parametrize("field", ["max_tokens", "n"])
def test_numbers_too_big_for_a_float_are_a_400_not_a_500(field: str) -> None:
    # JSON has no size limit on numbers; 10**400 once reached math.isfinite and raised OverflowError.
    content = json.dumps(chat()).encode()[:-1] + f', "{field}": {10**400}}}'.encode()
    r = send_raw(instant(), content, **{"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["param"] == field


def test_unknown_model_is_404() -> None:
    r = send_raw(instant(), json.dumps(chat(model="gpt-99")).encode())
    assert_openai_error(r, 404, "model_not_found")
    assert "gpt-99" in r.json()["error"]["message"]
    long = send_raw(instant(), json.dumps(chat(model="m" * 10_000)).encode())
    assert_openai_error(long, 404, "model_not_found")
    assert len(long.json()["error"]["message"]) < 300  # garbage is not echoed back in full


def test_body_too_large() -> None:
    app = instant(max_body_bytes=1000)
    big = json.dumps(chat("x" * 2000)).encode()
    assert_openai_error(send_raw(app, big), 413, "payload_too_large")

    async def chunked() -> httpx.Response:
        async def pieces() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"x" * 200  # no content-length: the limit is enforced while reading

        async with client_for(app) as c:
            return await c.post(CHAT, content=pieces())

    assert_openai_error(vrun(chunked()), 413, "payload_too_large")
    # A small body still works afterwards, and sent in pieces too.
    assert send_raw(app, json.dumps(chat()).encode()).status_code == 200


def test_absurd_header_values_are_tolerated() -> None:
    app = instant()
    sent: list[dict[str, Any]] = []
    huge = b"9" * 5000  # int() refuses strings this long; the server must not even try

    async def main() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": json.dumps(chat()).encode(), "more_body": False}

        async def send(message: Any) -> None:
            sent.append(dict(message))

        for headers in ([(b"x-stainless-retry-count", huge)], [(b"content-length", huge)]):
            scope = {"type": "http", "method": "POST", "path": CHAT, "headers": headers}
            await app(scope, receive, send)

    vrun(main())
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200, 413]


def test_bad_input_never_touches_the_buckets() -> None:
    app = instant(rpm=1)

    async def main() -> list[int]:
        async with client_for(app) as c:
            codes = [(await c.post(CHAT, content=b"nope")).status_code for _ in range(5)]
            codes.append((await c.post(CHAT, json=chat())).status_code)
            return codes

    assert vrun(main()) == [400] * 5 + [200]
    assert app.stats()["by_kind"]["rejected"] == 5


# -- generated malformed requests -----------------------------------------------------------------------

FUZZ_APP = instant(rpm=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    content=malformed_bodies(),
    headers=st.dictionaries(
        st.sampled_from(
            ["x-request-id", "x-stainless-retry-count", "authorization", "content-type", "x-anything"]
        ),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
        max_size=3,
    ),
)
def test_generated_malformed_requests_get_only_4xx(content: bytes, headers: dict[str, str]) -> None:
    r = send_raw(FUZZ_APP, content, **headers)
    assert 400 <= r.status_code < 500, (content, r.text)
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_server_still_healthy_after_the_fuzz() -> None:
    async def main() -> list[int]:
        async with client_for(FUZZ_APP) as c:
            return [(await c.get("/health")).status_code, (await c.post(CHAT, json=chat())).status_code]

    assert vrun(main()) == [200, 200]


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"{}",
        b'{"a": "\xc3\xa9"}',
        b'{"a": "\xed\xa0\x80"}',  # a lone surrogate, which json.loads lets through
        b'{"a": "\xff"}',
        b"{\x00}\x00",
        b"\xef\xbb\xbf{}",
        '{"x": 1}'.encode("utf-16"),
        '{"x": 1}'.encode("utf-16-le"),
        b"[1]",
        b"",
    ],
)
def test_bodies_are_decoded_as_json_loads_decodes_them(body: bytes) -> None:
    def outcome(decode: Callable[[bytes], object]) -> object:
        try:
            return decode(body)
        except ValueError as exc:
            return type(exc), str(exc)

    assert outcome(decode_json) == outcome(json.loads)
