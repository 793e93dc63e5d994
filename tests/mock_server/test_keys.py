"""API keys: 401s in OpenAI's words, recorded and never charged; per-key limits; which routes need a key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mock_server import MockServerApp, ServerConfig, build_parser
from mock_server.cli import API_KEYS_ENV, config_from_args
from mock_server.keys import bearer_token, mask_key
from tests.mock_server.helpers import (
    CHAT,
    EMBEDDINGS,
    chat,
    client_for,
    instant,
    real_server,
    sdk_client,
    vrun,
)

GOOD = "sk-good-0123456789"
OTHER = "sk-other-abcdef"
MISSING_START = "You didn't provide an API key. You need to provide your API key in an Authorization header"


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def calls(app: MockServerApp, *requests: tuple[str, str, dict[str, str]]) -> list[httpx.Response]:
    """``(method, path, headers)`` each, in order; POSTs send a valid body for their route."""

    async def main() -> list[httpx.Response]:
        async with client_for(app) as c:
            out = []
            for method, path, headers in requests:
                body: dict[str, Any] | None = None
                if path == CHAT:
                    body = chat()
                elif path == EMBEDDINGS:
                    body = {"model": "text-embedding-3-small", "input": "hi"}
                out.append(await c.request(method, path, json=body, headers=headers))
            return out

    return vrun(main())


def assert_401(r: httpx.Response, code: str | None) -> dict[str, Any]:
    assert r.status_code == 401, r.text
    error: dict[str, Any] = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] is None and error["code"] == code
    assert r.headers["x-request-id"].startswith("req_") and r.headers["openai-version"] == "2020-10-01"
    return error


def test_without_keys_any_key_or_none_is_fine() -> None:
    responses = calls(
        instant(), ("POST", CHAT, {}), ("POST", CHAT, bearer("whatever")), ("GET", "/v1/models", {})
    )
    assert [r.status_code for r in responses] == [200, 200, 200]


@pytest.mark.parametrize("path", [CHAT, EMBEDDINGS])
def test_missing_and_wrong_keys_get_401(path: str) -> None:
    app = instant(api_keys=(GOOD, OTHER), rpm=2)
    missing, not_bearer, wrong, good, other = calls(
        app,
        ("POST", path, {}),
        ("POST", path, {"authorization": GOOD}),  # no "Bearer": no key given
        ("POST", path, bearer("sk-abcdefghijklmnop")),
        ("POST", path, bearer(GOOD)),
        ("POST", path, {"authorization": f"bearer   {OTHER} "}),
    )
    assert assert_401(missing, None)["message"].startswith(MISSING_START)
    assert assert_401(not_bearer, None)["message"].startswith(MISSING_START)
    message = assert_401(wrong, "invalid_api_key")["message"]
    assert message == (
        "Incorrect API key provided: sk-abc***. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
    assert "sk-abcdefghijklmnop" not in message
    assert good.status_code == other.status_code == 200
    # Recorded as "rejected" and never charged: the two good requests fit in rpm=2.
    rejected = [e for e in app.events if e["kind"] == "rejected"]
    assert [(e["detail"]["status"], e["detail"]["code"]) for e in rejected] == [
        (401, None),
        (401, None),
        (401, "invalid_api_key"),
    ]
    assert all(e["weight"] == 0 for e in rejected)
    assert app.stats()["by_status"] == {"200": 2, "401": 3}


def test_the_key_is_checked_before_the_method_and_the_body() -> None:
    app = instant(api_keys=(GOOD,))

    async def main() -> list[httpx.Response]:
        async with client_for(app) as c:
            return [await c.get(CHAT), await c.post(CHAT, content=b"not json")]

    get, garbage = vrun(main())
    assert get.status_code == garbage.status_code == 401


def test_which_routes_need_a_key() -> None:
    app = instant(api_keys=(GOOD,))
    public = calls(app, ("GET", "/health", {}), ("GET", "/stats", {}), ("GET", "/events", {}))
    assert [r.status_code for r in public] == [200, 200, 200]
    models, model, with_key = calls(
        app,
        ("GET", "/v1/models", {}),
        ("GET", "/v1/models/gpt-5-mini", bearer("nope")),
        ("GET", "/v1/models", bearer(GOOD)),
    )
    assert_401(models, None)
    assert_401(model, "invalid_api_key")
    assert with_key.status_code == 200
    assert app.events == []  # the informational routes are never recorded, 401 or not


def test_per_key_limits_keep_working_with_keys() -> None:
    app = instant(api_keys=(GOOD, OTHER), per_key=True, rpm=1)
    first, second, other = calls(
        app, ("POST", CHAT, bearer(GOOD)), ("POST", CHAT, bearer(GOOD)), ("POST", CHAT, bearer(OTHER))
    )
    assert (first.status_code, second.status_code, other.status_code) == (200, 429, 200)
    assert len({e["detail"]["key"] for e in app.events}) == 2
    assert len(app.stats()["keys"]) == 2


def test_a_401_does_not_open_a_key_bucket() -> None:
    app = instant(api_keys=(GOOD,), per_key=True, rpm=1)
    calls(app, *[("POST", CHAT, bearer(f"sk-wrong-{i}")) for i in range(5)])
    assert app.stats()["keys"] == {}


def test_bearer_token_and_masking() -> None:
    assert bearer_token(b"Bearer  sk-1 ") == "sk-1"
    assert bearer_token(b"BEARER sk-1") == "sk-1"
    assert bearer_token(b"Bearer ") is None and bearer_token(b"") is None and bearer_token(b"sk-1") is None
    assert mask_key("sk-abcdefghij") == "sk-abc***"
    assert mask_key("ab") == "a***" and mask_key("a") == "***"


@pytest.mark.parametrize("bad", [("",), ("has space",), ("tab\t",), "sk-a", (1,), ("é",)])
def test_invalid_keys_in_the_config(bad: Any) -> None:
    with pytest.raises(ValueError, match="api_keys"):
        ServerConfig(api_keys=bad)


def test_organization_header() -> None:
    (r, models) = calls(instant(organization="org-mock"), ("POST", CHAT, {}), ("GET", "/v1/models", {}))
    assert r.headers["openai-organization"] == models.headers["openai-organization"] == "org-mock"
    (plain,) = calls(instant(), ("POST", CHAT, {}))
    assert "openai-organization" not in plain.headers
    with pytest.raises(ValueError, match="organization"):
        ServerConfig(organization="")


# -- the command line -------------------------------------------------------------------------------------


def config_of(*argv: str, env: dict[str, str] | None = None) -> ServerConfig:
    return config_from_args(build_parser().parse_args(list(argv)), env or {})


def test_cli_keys_from_options_or_the_environment() -> None:
    assert config_of("--api-key", "sk-1", "--api-key", "sk-2").api_keys == ("sk-1", "sk-2")
    assert config_of(env={API_KEYS_ENV: " sk-1, ,sk-2 "}).api_keys == ("sk-1", "sk-2")
    # Options win over the environment; no keys anywhere means any key is fine.
    assert config_of("--api-key", "sk-3", env={API_KEYS_ENV: "sk-1"}).api_keys == ("sk-3",)
    assert config_of().api_keys == ()
    assert config_of("--organization", "org-1").organization == "org-1"


# -- the official SDK -------------------------------------------------------------------------------------


def test_sdk_raises_authentication_error() -> None:
    openai = pytest.importorskip("openai")
    app = instant(api_keys=(GOOD,))

    async def main() -> list[Any]:
        errors = []
        for key in ("sk-wrong-key-123", ""):
            async with sdk_client(app, key=key or "placeholder", retries=2) as client:
                if not key:
                    client = client.with_options(default_headers={"Authorization": ""})
                with pytest.raises(openai.AuthenticationError) as info:
                    await client.chat.completions.create(
                        model="gpt-5-mini", messages=[{"role": "user", "content": "hi"}]
                    )
                errors.append(info.value)
        async with sdk_client(app, key=GOOD) as client:
            page = await client.models.list()
            errors.append([m.id for m in page.data])
        return errors

    wrong, missing, models = vrun(main())
    assert wrong.status_code == 401 and wrong.code == "invalid_api_key" and "sk-wro***" in wrong.message
    assert missing.status_code == 401 and missing.code is None
    assert "gpt-5-mini" in models
    assert app.stats()["arrivals"] == 2  # a 401 is not retried by the SDK


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[str]:
    with real_server("--api-key", GOOD, "--ttft", "0", "--per-token", "0") as (base, _):
        yield base


@pytest.mark.server
def test_real_server_with_keys(keyed_server: str) -> None:
    openai = pytest.importorskip("openai")
    import asyncio

    async def main() -> tuple[Any, Any]:
        async with openai.AsyncOpenAI(base_url=keyed_server + "/v1", api_key="sk-nope", max_retries=0) as bad:
            with pytest.raises(openai.AuthenticationError) as info:
                await bad.embeddings.create(model="text-embedding-3-small", input="x")
        async with openai.AsyncOpenAI(base_url=keyed_server + "/v1", api_key=GOOD, max_retries=0) as good:
            result = await good.embeddings.create(model="text-embedding-3-small", input="x")
        return info.value, result

    err, result = asyncio.run(main())
    assert err.code == "invalid_api_key" and len(result.data[0].embedding) == 1536
    assert httpx.get(keyed_server + "/stats").status_code == 200  # the mock's own routes need no key
    assert httpx.get(keyed_server + "/v1/models").status_code == 401
