"""OpenAI's own OpenAPI spec as the judge: schemathesis fuzzes the real server on 127.0.0.1.

The spec (``tests/mock_server/spec/openai-openapi.yaml``, vendored with its MIT licence so a clean checkout
has it) describes every request body the real API accepts and every response it may send. Schemathesis
reads it, generates request bodies the spec calls valid (Hypothesis underneath: ~100 per operation,
shrunk to the smallest failing one), sends them to a real ``python -m mock_server`` and checks each answer:

* ``not_a_server_error`` -- never a 5xx (the mock injects none here: every fault rate is 0);
* ``status_code_conformance`` -- a status the spec documents for the operation;
* ``content_type_conformance`` / ``response_schema_conformance`` -- the body is the documented schema
  (``CreateChatCompletionResponse``, ``CreateEmbeddingResponse``, ``ErrorResponse``, ...);
* ``response_headers_conformance`` -- documented headers (``Retry-After`` on a 429) have their schema;
* and our own :func:`openai_error_shape` (every non-2xx) and :func:`sse_events_conform` (every stream).

Known strictness of the spec, handled here explicitly rather than by turning a check off:

1. **Undocumented error statuses.** The spec lists only ``200`` and ``429`` for these operations, though
   OpenAI answers bad input with 400 (and an unknown model with 404) in the same ``ErrorResponse``
   shape. :func:`spec_with_error_responses` adds exactly those two to each fuzzed operation, with the
   spec's own ``ErrorResponse`` schema, so ``status_code_conformance`` still fails on anything else
   (a 500, a 413 to a small body, a 401 without configured keys) and the 400/404 bodies are validated.
2. **Streams.** The spec gives ``text/event-stream`` the schema of one event's data, and chat streams end
   with ``data: [DONE]``, which is no chunk. :func:`sse_events_conform` checks the SSE framing and each
   payload against that schema itself; schemathesis' body check runs on every other body.
3. **Bodies the fuzzer would never get past the first check.** ``model`` is an open string in the spec,
   so nearly every generated id would be one the mock does not serve: all 404s, never a 200. And a
   generated ``CreateResponse`` nearly always carries an undefined top-level field or server-side state
   (``conversation``, ``prompt``): all 400s. :func:`servable` changes exactly those and nothing else.
   Unknown models and fields are covered by ``test_bad_input.py``.
4. **base64 embeddings.** The spec types ``embedding`` as an array of floats only; with
   ``encoding_format: base64`` the real API sends a string. :func:`base64_decoded` decodes it (checking
   it is float32 bytes) before the body is validated.

Generation is positive only: the mock deliberately accepts and ignores chat fields it does not model, so
"negative" bodies that only break an ignored field (``temperature: "x"``) rightly get a 200. Bad input is
fuzzed by ``test_bad_input.py`` and ``test_real_server.py``.
"""

from __future__ import annotations

import base64
import collections
import functools
import json
import re
import struct
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mock_server.config import DEFAULT_MODELS
from tests.mock_server.helpers import _nullable_as_null, real_server

pytestmark = pytest.mark.server

SPEC_PATH = Path(__file__).parent / "spec" / "openai-openapi.yaml"
OPERATIONS = ("createChatCompletion", "createEmbedding", "createResponse")
UNDOCUMENTED_ERRORS = {
    "400": "The request was malformed or invalid (undocumented in the spec; OpenAI's error guide lists it).",
    "404": "The model does not exist (undocumented in the spec; OpenAI's error guide lists it).",
}
MAX_EXAMPLES = 100
# Everything big enough not to refuse a fuzzed request (the buckets and headers still run), no latency.
GENEROUS = ("--rpm", "10000000", "--tpm", "10000000000", "--ttft", "0", "--per-token", "0", "--jitter", "0")
CHAT_MODELS = tuple(m for m in DEFAULT_MODELS if "embedding" not in m)
EMBEDDING_MODELS = tuple(m for m in DEFAULT_MODELS if "embedding" in m)


def spec_with_error_responses(path: Path = SPEC_PATH) -> dict[str, Any]:
    """The spec, with the 400 and 404 OpenAI really sends documented on the fuzzed operations.

    Nothing else changes: the added responses point at the spec's own ``ErrorResponse`` schema, so their
    bodies are validated exactly as a documented 429's is.
    """
    yaml = pytest.importorskip("yaml")
    with path.open(encoding="utf-8") as f:
        spec: dict[str, Any] = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    for item in spec["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and operation.get("operationId") in OPERATIONS:
                for status, description in UNDOCUMENTED_ERRORS.items():
                    operation["responses"].setdefault(
                        status,
                        {
                            "description": description,
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
                            },
                        },
                    )
    return spec


SPEC = spec_with_error_responses()
# JSON-clean (YAML gives dates for some examples) and with OpenAPI 3.0's ``nullable`` read as JSON Schema.
SPEC_COMPONENTS = json.loads(json.dumps(_nullable_as_null(SPEC["components"]), default=str))
schema = schemathesis.openapi.from_dict(SPEC).include(operation_id=list(OPERATIONS))
schema.config.generation.update(modes=[GenerationMode.POSITIVE])
# The coverage phase sends every boundary case the schema defines -- thousands for CreateResponse, not
# bounded by max_examples; the spec's own examples and ~100 fuzzed bodies per operation are the budget.
schema.config.phases.update(phases=["examples", "fuzzing"])
# Read whole streams (schemathesis keeps the first 20 events by default).
schema.config.max_stream_events = 1_000_000


def servable(path: str, body: Any) -> Any:
    """``body`` made one the mock can serve, changing only what the spec leaves open (no. 3 above).

    * ``model``: the generated id if the mock serves it, else one of the operation's family.
    * Responses API only: top-level fields ``CreateResponse`` does not define are dropped (hypothesis
      adds some, as the ``allOf`` cannot forbid them; OpenAI and the mock answer "Unknown parameter"),
      and so are ``conversation``, ``prompt`` and ``previous_response_id`` (state kept on OpenAI's
      side, which the mock answers with a 400 saying so); an absent or empty ``input`` becomes a short
      text (the spec lets ``prompt`` or ``conversation`` stand in for it).

    Applied in the test rather than as a ``map_body`` hook: schemathesis runs body hooks for generated
    bodies, not for the spec's own examples (one such example reached the server with ``model: ""``).
    Deterministic in the body, so Hypothesis replays and shrinks the same request.
    """
    if not isinstance(body, dict):
        return body
    family = EMBEDDING_MODELS if path == "/embeddings" else CHAT_MODELS
    if body.get("model") not in family:
        body = {**body, "model": family[len(json.dumps(body, sort_keys=True, default=str)) % len(family)]}
    if path == "/responses":
        body = {k: v for k, v in body.items() if k in RESPONSE_FIELDS and k not in STATEFUL_FIELDS}
        if not body.get("input"):
            body["input"] = "Say something."
    return body


def _create_response_fields() -> frozenset[str]:
    schemas = SPEC["components"]["schemas"]
    fields: set[str] = set()
    for part in schemas["CreateResponse"]["allOf"]:
        definition = schemas[part["$ref"].rsplit("/", 1)[1]] if "$ref" in part else part
        fields |= set(definition.get("properties", {}))
    return frozenset(fields)


RESPONSE_FIELDS = _create_response_fields()
STATEFUL_FIELDS = frozenset({"conversation", "prompt", "previous_response_id"})


# -- our own checks -------------------------------------------------------------------------------


@schemathesis.check
def openai_error_shape(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any) -> None:
    """Every non-2xx body is ``{"error": {"message", "type", "param", "code"}}`` and nothing else.

    Stricter than the spec's ``ErrorResponse`` (which allows extra keys): these four are what every
    client parses, and the mock promises exactly them on every route and status.
    """
    if 200 <= response.status_code < 300:
        return
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, f"not OpenAI-shaped: {response.text[:300]}"
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    assert error["param"] is None or isinstance(error["param"], str), error
    assert error["code"] is None or isinstance(error["code"], str), error


_SSE_EVENT = re.compile(r"(?:event: [^\n]+\n)?data: [^\n]*")


def is_event_stream(response: schemathesis.Response) -> bool:
    return "text/event-stream" in response.headers.get("content-type", [""])[0]


@functools.cache
def stream_event_validator(path: str) -> jsonschema_rs.Draft202012Validator:
    """A validator for one ``data:`` payload of ``path``'s stream: the schema the spec gives the stream.

    jsonschema-rs (what schemathesis itself validates with): a stream may hold thousands of events, each
    checked against ``ResponseStreamEvent``, an ``anyOf`` of some fifty variants.
    """
    responses = SPEC["paths"][path]["post"]["responses"]
    schema_ref = responses["200"]["content"]["text/event-stream"]["schema"]
    return jsonschema_rs.Draft202012Validator({"components": SPEC_COMPONENTS, **schema_ref})


@schemathesis.check
def sse_events_conform(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any) -> None:
    """A ``text/event-stream`` body: whole SSE events, each ``data:`` payload valid against the spec.

    Spec strictness no. 2, handled here instead of by ``response_schema_conformance`` (which this module
    runs on every other body): the spec gives the stream's media type the schema of *one event's data*
    (``CreateChatCompletionStreamResponse``, ``ResponseStreamEvent``) -- OpenAPI 3.1 has no way to say
    "a sequence of these" -- while schemathesis validates its parsed ``{"event", "data"}`` envelope
    against it. And chat streams end with ``data: [DONE]``, which is no chunk. So: the framing is
    ``[event: name\n]data: ...\n\n`` throughout, chat ends with exactly one ``[DONE]``, and every
    other payload is JSON valid against the spec's event schema.
    """
    if not is_event_stream(response):
        return
    assert not response.stream_cut_short, "the stream was read only in part: raise max_stream_events"
    text = response.text
    assert text.endswith("\n\n"), f"the stream does not end with a blank line: {text[-200:]!r}"
    blocks = text.split("\n\n")[:-1]
    assert blocks, "an empty stream"
    payloads = []
    for block in blocks:
        assert _SSE_EVENT.fullmatch(block), f"not an SSE event: {block[:200]!r}"
        payloads.append(block.split("data: ", 1)[1])
    if case.operation.path == "/chat/completions":
        assert payloads[-1] == "[DONE]" and payloads.count("[DONE]") == 1, payloads[-3:]
        payloads = payloads[:-1]
    validator = stream_event_validator(case.operation.path)
    for n, payload in enumerate(payloads):
        errors = list(validator.iter_errors(json.loads(payload)))
        assert not errors, f"event {n}: " + "; ".join(
            f"{list(e.instance_path)}: {e.message[:200]}" for e in errors[:3]
        )


@schemathesis.check
def body_conforms(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any) -> bool | None:
    """schemathesis' ``response_schema_conformance`` on every body but a stream (see above)."""
    if is_event_stream(response):
        return None
    return response_schema_conformance(ctx, response, case)


def base64_decoded(response: schemathesis.Response) -> schemathesis.Response:
    """An embeddings answer with every base64 ``embedding`` decoded to the floats it encodes.

    Spec strictness no. 4: ``Embedding.embedding`` is "a list of floats" in the spec, though with
    ``encoding_format: base64`` OpenAI (and the official SDK, which asks for it by default) sends the
    little-endian float32 bytes as a base64 string. Decoding checks the string is exactly that; the
    decoded body is then validated against the spec like any other.
    """
    if response.status_code != 200 or "application/json" not in response.headers.get("content-type", [""])[0]:
        return response
    body = response.json()
    data = body.get("data") if isinstance(body, dict) and body.get("object") == "list" else None
    if not isinstance(data, list) or not any(isinstance(item.get("embedding"), str) for item in data):
        return response
    for item in data:
        raw = base64.b64decode(item["embedding"], validate=True)
        assert raw and len(raw) % 4 == 0, f"not float32 bytes: {item['embedding'][:60]!r}"
        item["embedding"] = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    content = json.dumps(body).encode()
    headers = {**response.headers, "content-length": [str(len(content))]}
    return schemathesis.Response(
        status_code=response.status_code,
        headers=headers,
        content=content,
        request=response.request,
        elapsed=response.elapsed,
        verify=response.verify,
        message=response.message,
        http_version=response.http_version,
        encoding=response.encoding,
    )


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    body_conforms,
    openai_error_shape,
    sse_events_conform,
]


# -- the server -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """One real server for the module, limits too generous to 429 a fuzzer, and no latency."""
    for path in ("/chat/completions", "/responses"):
        stream_event_validator(path)  # built now, so no example pays for it against the deadline
    with real_server(*GENEROUS, "--max-events", "1000") as (base, _):
        yield base


@pytest.fixture(scope="module")
def statuses() -> Iterator[collections.Counter[tuple[str, int, str]]]:
    """What the fuzzer got back, by operation, status and media type; printed at the end (``-s``)."""
    counter: collections.Counter[tuple[str, int, str]] = collections.Counter()
    yield counter
    print("\nspec fuzz statuses:", dict(sorted(counter.items())))


@functools.cache
def route_exists(base: str, path: str) -> bool:
    """Whether the server serves ``path`` at all (a 404 ``unknown_url`` means no such route)."""
    r = httpx.post(base + "/v1" + path, content=b"{}", headers={"content-type": "application/json"})
    return not (r.status_code == 404 and r.json()["error"]["code"] == "unknown_url")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,
)
@pytest.mark.timeout(120)
def test_every_answer_conforms_to_the_spec(
    case: schemathesis.Case[Any], server: str, statuses: collections.Counter[tuple[str, int, str]]
) -> None:
    if not route_exists(server, case.operation.path):
        pytest.skip(f"POST /v1{case.operation.path} is not served yet (a 404 unknown_url)")
    case.body = servable(case.operation.path, case.body)
    response = case.call(base_url=server + "/v1", timeout=15)
    media_type = response.headers.get("content-type", ["-"])[0].split(";")[0]
    statuses[(case.operation.path, response.status_code, media_type)] += 1
    case.validate_response(base64_decoded(response), checks=CHECKS)


STREAMING = schema.exclude(operation_id="createEmbedding")  # nothing streams on embeddings
STREAM_EXAMPLES = 30


@STREAMING.parametrize()
@settings(
    max_examples=STREAM_EXAMPLES,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,
)
@pytest.mark.timeout(120)
def test_every_stream_conforms_to_the_spec(
    case: schemathesis.Case[Any], server: str, statuses: collections.Counter[tuple[str, int, str]]
) -> None:
    """The same bodies with ``stream: true``: the generator rarely picks it, and streams are other code."""
    if not route_exists(server, case.operation.path):
        pytest.skip(f"POST /v1{case.operation.path} is not served yet (a 404 unknown_url)")
    body = servable(case.operation.path, case.body)
    case.body = {**body, "stream": True} if isinstance(body, dict) else body
    response = case.call(base_url=server + "/v1", timeout=15)
    media_type = response.headers.get("content-type", ["-"])[0].split(";")[0]
    statuses[(case.operation.path + " stream", response.status_code, media_type)] += 1
    case.validate_response(response, checks=CHECKS)


def test_the_fuzzer_reached_the_happy_path(statuses: collections.Counter[tuple[str, int, str]]) -> None:
    """A fuzz that only ever hears 400 would pass every check above and prove little: at least a tenth of
    the generated bodies of each operation must have been served (200)."""
    for path in ("/chat/completions", "/embeddings", "/responses"):
        total = sum(n for (p, _, _), n in statuses.items() if p == path)
        if total == 0:
            pytest.skip(f"{path} was not fuzzed in this run")
        served = sum(n for (p, status, _), n in statuses.items() if p == path and status == 200)
        assert served >= total / 10, (path, dict(statuses))


# -- a 429 conforms too -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict_server() -> Iterator[str]:
    with real_server("--rpm", "1", "--ttft", "0", "--per-token", "0", "--jitter", "0") as (base, _):
        yield base


def test_a_429_conforms_to_the_spec(strict_server: str) -> None:
    bodies: dict[str, dict[str, Any]] = {
        "/chat/completions": {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 5,
        },
        "/embeddings": {"model": "text-embedding-3-small", "input": "hi"},
    }
    answers = []
    for path, body in bodies.items():
        case = schema[path]["POST"].Case(body=body, media_type="application/json")
        for _ in range(2):  # the first may take the only request of the minute; the second cannot
            response = case.call(base_url=strict_server + "/v1", timeout=15)
            case.validate_response(response, checks=CHECKS)
            answers.append(response.status_code)
        assert response.status_code == 429, response.text
        assert int(response.headers["retry-after"][0]) >= 1
    assert answers.count(200) == 1 and answers.count(429) == 3
