"""``POST /v1/embeddings``: spec shapes, deterministic unit vectors, limits, events, bad input, the SDK."""

from __future__ import annotations

import base64
import json
import math
import struct
import subprocess
import sys
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_server import MockServerApp, ServerConfig, create_app
from mock_server.schema import MAX_EMBEDDING_INPUTS
from mock_server.vectors import embedding
from tests.mock_server.helpers import (
    CHAT,
    EMBEDDINGS,
    ROOT,
    assert_matches_spec,
    chat,
    client_for,
    instant,
    json_values,
    real_server,
    sdk_client,
    vrun,
)

SMALL = "text-embedding-3-small"


def embed(model: str = SMALL, input: Any = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": model, "input": input, **extra}


def post(app: MockServerApp, *bodies: dict[str, Any] | bytes, **headers: str) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        async with client_for(app) as c:
            out = []
            for b in bodies:
                if isinstance(b, bytes):
                    out.append(await c.post(EMBEDDINGS, content=b, headers=headers))
                else:
                    out.append(await c.post(EMBEDDINGS, json=b, headers=headers))
            return out

    return vrun(main())


def vectors(r: httpx.Response) -> list[list[float]]:
    return [item["embedding"] for item in r.json()["data"]]


def norm(v: list[float]) -> float:
    return math.sqrt(math.fsum(x * x for x in v))


# -- shapes -----------------------------------------------------------------------------------------------


def test_response_shape_matches_the_spec() -> None:
    (r,) = post(instant(), embed(input=["hello world", "bye"]))
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert_matches_spec("CreateEmbeddingResponse", body)
    assert body["object"] == "list" and body["model"] == SMALL
    assert [(d["object"], d["index"]) for d in body["data"]] == [("embedding", 0), ("embedding", 1)]
    assert body["usage"] == {"prompt_tokens": 3 + 1, "total_tokens": 3 + 1}  # ceil(11/4) + ceil(3/4)


@pytest.mark.parametrize(
    ("model", "size"),
    [("text-embedding-3-small", 1536), ("text-embedding-3-large", 3072), ("text-embedding-ada-002", 1536)],
)
def test_native_sizes(model: str, size: int) -> None:
    (r,) = post(instant(), embed(model))
    (v,) = vectors(r)
    assert len(v) == size and abs(norm(v) - 1) < 1e-6


@pytest.mark.parametrize(
    ("value", "count", "tokens"),
    [
        ("abcdefgh", 1, 2),
        (["a", "bcdefghij"], 2, 1 + 3),
        ([1212, 318, 257], 1, 3),  # one text given as token ids
        ([[1212, 318], [13]], 2, 3),
    ],
)
def test_the_four_input_forms(value: Any, count: int, tokens: int) -> None:
    (r,) = post(instant(), embed(input=value))
    assert r.status_code == 200, r.text
    assert len(r.json()["data"]) == count and r.json()["usage"]["prompt_tokens"] == tokens


def test_user_and_a_null_encoding_format_are_accepted() -> None:
    (r,) = post(instant(), embed(user="user-1234", encoding_format=None))
    assert r.status_code == 200 and isinstance(vectors(r)[0], list)


# -- vectors ----------------------------------------------------------------------------------------------


def test_same_text_same_vector_other_text_other_vector() -> None:
    first, second = post(instant(seed=1), embed(input=["cat", "dog", "cat"]), embed(input="cat"))
    cat, dog, cat_again = vectors(first)
    assert cat == cat_again == vectors(second)[0]
    assert cat != dog
    # The seed plays no part, the model does.
    (other_seed,) = post(instant(seed=2), embed(input="cat"))
    (large,) = post(instant(), embed("text-embedding-3-large", input="cat", dimensions=1536))
    assert vectors(other_seed)[0] == cat and vectors(large)[0] != cat


def test_same_vector_in_another_process() -> None:
    # Python's hash() is salted per process; the vectors must not depend on it.
    code = (
        "import json; from mock_server.vectors import embedding; "
        "print(json.dumps(embedding('text-embedding-3-small', 'stable?', 1536, 16)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == embedding(SMALL, "stable?", 1536, 16)


def test_texts_and_token_arrays_never_collide() -> None:
    (r,) = post(instant(), embed(input=["1", "2"]))
    (t,) = post(instant(), embed(input=[[1], [2]]))
    assert vectors(r)[0] != vectors(t)[0]


def test_dimensions_shorten_the_native_vector() -> None:
    full, short = post(instant(), embed(input="hello"), embed(input="hello", dimensions=256))
    (v,) = vectors(full)
    (s,) = vectors(short)
    assert len(s) == 256 and abs(norm(s) - 1) < 1e-6
    # A prefix of the full vector, normalised again: the same direction in the first 256 axes.
    scale = norm(v[:256])
    assert all(abs(a / scale - b) < 1e-6 for a, b in zip(v[:256], s, strict=True))


def test_base64_is_little_endian_float32_of_the_same_values() -> None:
    floats, b64 = post(instant(), embed(input=["x", "y"]), embed(input=["x", "y"], encoding_format="base64"))
    for f, item in zip(vectors(floats), b64.json()["data"], strict=True):
        raw = base64.b64decode(item["embedding"])
        assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == f


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(min_size=1, max_size=200),
    other=st.text(min_size=1, max_size=200),
    dims=st.integers(min_value=1, max_value=64),
)
def test_vectors_are_deterministic_unit_and_distinct(text: str, other: str, dims: int) -> None:
    v = embedding(SMALL, text, 1536, dims)
    assert v == embedding(SMALL, text, 1536, dims)
    assert len(v) == dims and abs(norm(v) - 1) < 1e-5
    assert all(struct.unpack("<f", struct.pack("<f", x))[0] == x for x in v)  # exactly float32
    if other != text and dims >= 4:
        assert embedding(SMALL, other, 1536, dims) != v


@settings(max_examples=30, deadline=None)
@given(ids=st.lists(st.integers(min_value=0, max_value=200_000), min_size=1, max_size=50))
def test_token_array_vectors_are_deterministic_and_unit(ids: list[int]) -> None:
    v = embedding(SMALL, tuple(ids), 1536, 1536)
    assert v == embedding(SMALL, tuple(ids), 1536, 1536) and abs(norm(v) - 1) < 1e-5


# -- limits, latency, events ------------------------------------------------------------------------------


def test_tpm_charges_input_tokens_only() -> None:
    app = instant(tpm=60, window=60.0)
    # 40 chars = 10 tokens per input: five inputs are 50 tokens, a second request of 50 does not fit.
    text = "x" * 40
    ok, limited = post(app, embed(input=[text] * 5), embed(input=[text] * 5))
    assert ok.status_code == 200 and ok.headers["x-ratelimit-remaining-tokens"] == "10"
    assert limited.status_code == 429
    err = limited.json()["error"]
    assert (err["type"], err["code"]) == ("tokens", "rate_limit_exceeded")
    assert "Requested 50" in err["message"] and SMALL in err["message"]
    assert limited.headers["retry-after"] == "40" and limited.headers["retry-after-ms"] == "40000"
    assert limited.headers["x-request-id"].startswith("req_")
    accepted = next(e for e in app.events if e["kind"] == "accepted")
    assert accepted["weight"] == 50 and accepted["detail"]["prompt_tokens"] == 50
    assert accepted["detail"]["inputs"] == 5 and accepted["detail"]["model"] == SMALL


def test_embeddings_and_chat_share_the_buckets() -> None:
    app = instant(rpm=2)

    async def main() -> list[int]:
        async with client_for(app) as c:
            return [
                (await c.post(EMBEDDINGS, json=embed())).status_code,
                (await c.post(CHAT, json=chat())).status_code,
                (await c.post(EMBEDDINGS, json=embed())).status_code,
            ]

    assert vrun(main()) == [200, 200, 429]
    stats = app.stats()
    assert stats["by_status"] == {"200": 2, "429": 1}
    assert stats["by_kind"] == {"accepted": 2, "arrived": 3, "completed": 2, "limited": 1}


def test_events_and_latency_on_virtual_time() -> None:
    app = create_app(ServerConfig(ttft=0.5, per_token=0.1, jitter=0.0))

    async def main() -> tuple[float, httpx.Response]:
        async with client_for(app) as c:
            r = await c.post(EMBEDDINGS, json=embed(input=["a", "b"]), headers={"x-request-id": "mine"})
            import asyncio

            return asyncio.get_running_loop().time(), r

    t, r = vrun(main())
    assert t == pytest.approx(0.5)  # the time to first token; no output tokens to generate
    assert r.headers["openai-processing-ms"] == "500"
    assert [e["kind"] for e in app.events] == ["arrived", "accepted", "completed"]
    assert all(e["request"] == "mine" for e in app.events)
    assert all(e["detail"]["request_id"] == r.headers["x-request-id"] for e in app.events)
    completed = app.events[-1]
    assert completed["t"] == pytest.approx(0.5)
    assert completed["detail"]["status"] == 200 and completed["detail"]["total_tokens"] == 2


def test_injected_errors_hit_embeddings_too() -> None:
    app = instant(error_rate_503=1.0)
    (r,) = post(app, embed())
    assert r.status_code == 503 and r.json()["error"]["code"] == "service_unavailable"
    assert app.events[-1]["kind"] == "failed" and app.events[-1]["weight"] == 2


def test_quota_counts_embedding_tokens() -> None:
    app = instant(quota_tokens=3)
    ok, refused = post(app, embed(input="abcdefgh"), embed(input="abcdefgh"))
    assert ok.status_code == 200 and refused.status_code == 429
    assert refused.json()["error"]["code"] == "insufficient_quota"


# -- bad input --------------------------------------------------------------------------------------------


def raw(**fields: Any) -> bytes:
    return json.dumps({"model": SMALL, "input": "hi", **fields}).encode()


@pytest.mark.parametrize(
    ("content", "status", "code", "param"),
    [
        (b"{", 400, "invalid_json", None),
        (b"[]", 400, "invalid_json", None),
        (json.dumps({"input": "x"}).encode(), 400, "missing_required_parameter", "model"),
        (json.dumps({"model": SMALL}).encode(), 400, "missing_required_parameter", "input"),
        (raw(model=5), 400, "invalid_type", "model"),
        (raw(input=""), 400, "invalid_value", "input"),
        (raw(input=[]), 400, "empty_array", "input"),
        (raw(input=["a", ""]), 400, "invalid_value", "input[1]"),
        (raw(input=["a", 1]), 400, "invalid_type", "input[1]"),
        (raw(input=[1, "a"]), 400, "invalid_type", "input[1]"),
        (raw(input=[1, -2]), 400, "integer_below_min_value", "input[1]"),
        (raw(input=[1, True]), 400, "invalid_type", "input[1]"),
        (raw(input=[1.5]), 400, "invalid_type", "input[0]"),
        (raw(input=[[1], []]), 400, "empty_array", "input[1]"),
        (raw(input=[[1], [2, "x"]]), 400, "invalid_type", "input[1][1]"),
        (raw(input=[[1], 2]), 400, "invalid_type", "input[1]"),
        (raw(input=[None]), 400, "invalid_type", "input[0]"),
        (raw(input={"text": "x"}), 400, "invalid_type", "input"),
        (raw(input=["a"] * (MAX_EMBEDDING_INPUTS + 1)), 400, "array_above_max_length", "input"),
        (raw(input="x" * (4 * 8192 + 1)), 400, "context_length_exceeded", "input"),
        (raw(input=["x" * 4 * 8000] * 40), 400, "max_tokens_per_request", "input"),
        (raw(encoding_format="binary"), 400, "invalid_value", "encoding_format"),
        (raw(encoding_format=1), 400, "invalid_type", "encoding_format"),
        (raw(dimensions=0), 400, "integer_below_min_value", "dimensions"),
        (raw(dimensions="8"), 400, "invalid_type", "dimensions"),
        (raw(dimensions=1537), 400, "invalid_value", "dimensions"),
        (raw(model="text-embedding-ada-002", dimensions=8), 400, "invalid_value", "dimensions"),
        (raw(user=7), 400, "invalid_type", "user"),
        (raw(temperature=0.5), 400, "unknown_parameter", "temperature"),
        (raw(model="gpt-4o-mini"), 400, "invalid_value", "model"),
        (raw(model="text-embedding-9"), 404, "model_not_found", None),
    ],
)
def test_bad_input_gets_an_openai_shaped_4xx(
    content: bytes, status: int, code: str, param: str | None
) -> None:
    app = instant(max_body_bytes=10_000_000)
    (r,) = post(app, content)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert (error["code"], error["param"]) == (code, param)
    assert app.events[-1]["kind"] == "rejected" and app.events[-1]["weight"] == 0
    assert app.stats()["tokens_charged"] == 0


def test_the_request_limit_error_type_is_openais() -> None:
    (r,) = post(instant(max_body_bytes=10_000_000), raw(input=["x" * 4 * 8000] * 40))
    assert r.json()["error"]["type"] == "max_tokens_per_request"
    assert r.json()["error"]["message"] == "Requested 320000 tokens, max 300000 tokens per request"


def test_an_embedding_model_is_not_a_chat_model() -> None:
    async def main() -> httpx.Response:
        async with client_for(instant()) as c:
            return await c.post(CHAT, json=chat(model=SMALL))

    r = vrun(main())
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"


def test_oversize_body_and_wrong_method() -> None:
    app = instant(max_body_bytes=100)

    async def main() -> list[httpx.Response]:
        async with client_for(app) as c:
            return [await c.post(EMBEDDINGS, json=embed(input="x" * 200)), await c.get(EMBEDDINGS)]

    big, get = vrun(main())
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
    assert get.status_code == 405 and get.headers["allow"] == "POST"
    assert [e["detail"]["status"] for e in app.events if e["kind"] == "rejected"] == [413, 405]


def test_any_model_id_with_models_star_still_needs_an_embedding_model() -> None:
    ok, chatty = post(instant(models=()), embed(model="my-embedding-model"), embed(model="my-chat-model"))
    assert ok.status_code == 200 and len(vectors(ok)[0]) == 1536
    assert chatty.status_code == 400


FUZZ_APP = instant(rpm=5)

bad_embedding_bodies = st.one_of(
    st.binary(max_size=100).filter(lambda b: not b.strip().startswith(b"{")),
    st.fixed_dictionaries(
        {
            "model": st.just(SMALL),
            "input": json_values.filter(
                lambda v: not (isinstance(v, str) and v) and not (isinstance(v, list) and v)
            ),
        }
    ).map(lambda d: json.dumps(d).encode()),
    st.fixed_dictionaries(
        {
            "model": st.just(SMALL),
            "input": st.lists(json_values, min_size=2, max_size=4).filter(
                lambda v: len({type(x) for x in v}) > 1
            ),
        }
    ).map(lambda d: json.dumps(d).encode()),
    st.dictionaries(st.text(max_size=8), json_values, max_size=5)
    .filter(lambda d: "model" not in d or "input" not in d)
    .map(lambda d: json.dumps(d).encode()),
    st.builds(
        lambda extra: json.dumps({"model": SMALL, "input": "x", **extra}).encode(),
        st.dictionaries(
            st.sampled_from(["dimensions", "encoding_format", "user", "extra"]),
            json_values.filter(lambda v: v is not None and not isinstance(v, str | int)),
            min_size=1,
            max_size=2,
        ),
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=bad_embedding_bodies)
def test_generated_malformed_embedding_requests_get_only_4xx(content: bytes) -> None:
    (r,) = post(FUZZ_APP, content)
    assert 400 <= r.status_code < 500, (content, r.text)
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}


# -- the official SDK -------------------------------------------------------------------------------------


def test_sdk_float_base64_and_default_give_the_same_floats() -> None:
    app = instant()
    texts = ["the quick brown fox", "jumps"]

    async def main() -> tuple[Any, Any, Any]:
        async with sdk_client(app) as client:
            floats = await client.embeddings.create(model=SMALL, input=texts, encoding_format="float")
            b64 = await client.embeddings.create(model=SMALL, input=texts, encoding_format="base64")
            default = await client.embeddings.create(model=SMALL, input=texts)  # asks for base64, decodes
            return floats, b64, default

    floats, b64, default = vrun(main())
    as_floats = [d.embedding for d in floats.data]
    assert [d.embedding for d in default.data] == as_floats
    decoded = [list(struct.unpack(f"<{len(as_floats[0])}f", base64.b64decode(d.embedding))) for d in b64.data]
    assert decoded == as_floats
    requests = [e for e in app.events if e["kind"] == "accepted"]
    assert [e["detail"]["encoding_format"] for e in requests] == ["float", "base64", "base64"]
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == 5 + 2


def test_sdk_dimensions_and_token_arrays() -> None:
    async def main() -> tuple[Any, Any]:
        async with sdk_client(instant()) as client:
            short = await client.embeddings.create(model="text-embedding-3-large", input="hi", dimensions=64)
            tokens = await client.embeddings.create(model=SMALL, input=[[1, 2, 3], [4]])
            return short, tokens

    short, tokens = vrun(main())
    assert len(short.data[0].embedding) == 64
    assert len(tokens.data) == 2 and tokens.usage.prompt_tokens == 4


def test_sdk_rate_limit_error_without_retries() -> None:
    openai = pytest.importorskip("openai")
    app = instant(rpm=1)

    async def main() -> Any:
        async with sdk_client(app) as client:
            await client.embeddings.create(model=SMALL, input="one")
            with pytest.raises(openai.RateLimitError) as info:
                await client.embeddings.create(model=SMALL, input="two")
            return info.value

    err = vrun(main())
    assert err.status_code == 429 and err.code == "rate_limit_exceeded" and err.type == "requests"
    headers = err.response.headers
    assert headers["retry-after"] == "60" and headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-request-id"].startswith("req_") and headers["openai-version"] == "2020-10-01"
    assert [e["kind"] for e in app.events][-2:] == ["arrived", "limited"]


def test_sdk_bad_request_is_a_bad_request_error() -> None:
    openai = pytest.importorskip("openai")

    async def main() -> Any:
        async with sdk_client(instant()) as client:
            with pytest.raises(openai.BadRequestError) as info:
                await client.embeddings.create(model="text-embedding-ada-002", input="x", dimensions=8)
            return info.value

    assert vrun(main()).param == "dimensions"


# -- the real server ---------------------------------------------------------------------------------------


@pytest.mark.server
def test_sdk_embeddings_batch_completes_through_its_own_retries() -> None:
    """The classic batch job: many embedding calls at once against a TPM limit, the SDK retrying on 429s."""
    openai = pytest.importorskip("openai")
    import asyncio

    # 60,000 TPM enforced per second: a bucket of 1,000 tokens refilled 1,000/s; each call is 100 tokens.
    args = ("--tpm", "60000", "--window", "1", "--ttft", "0.01", "--per-token", "0", "--seed", "2")
    with real_server(*args) as (base, _):

        async def main() -> list[Any]:
            async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="sk-x", max_retries=15) as client:
                batch = [[f"document {i}-{j}".ljust(40, ".") for j in range(10)] for i in range(20)]
                return list(
                    await asyncio.gather(*(client.embeddings.create(model=SMALL, input=b) for b in batch))
                )

        results = asyncio.run(main())
        stats = httpx.get(base + "/stats").json()
    assert [len(r.data) for r in results] == [10] * 20
    assert all(r.usage.prompt_tokens == 100 for r in results)
    assert stats["by_status"]["200"] == 20 and stats["by_status"].get("429", 0) >= 5
    assert stats["tokens_charged"] == 20 * 100
