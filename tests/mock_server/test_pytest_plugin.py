"""The pytest plugin (``mock_server.pytest_plugin``), used as a user would: from test files of their own.

Each test writes a small test module with ``pytester`` and runs pytest on it in process with
``-p mock_server.pytest_plugin`` -- the entry point does the same once the package is installed -- then
asserts on the outcomes. The user's tests drive their client with ``asyncio.run``: the plugin needs no
async test framework.
"""

from __future__ import annotations

import pytest

pytest_plugins = ("pytester",)

PLUGIN = ("-p", "mock_server.pytest_plugin")


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(source)
    return pytester.runpytest(*PLUGIN, "-q", "-p", "no:cacheprovider", *args)


def test_in_process_fixture_serves_httpx_and_records_events(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import asyncio

        def test_chat(mock_provider):
            async def main():
                async with mock_provider.httpx_client() as client:
                    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
                    return await client.post("/v1/chat/completions", json={**body, "max_tokens": 5})
            r = asyncio.run(main())
            assert r.status_code == 200, r.text
            assert r.json()["object"] == "chat.completion"
            assert [e["kind"] for e in mock_provider.events()] == ["arrived", "accepted", "completed"]
            assert len(mock_provider.events("completed")) == 1
            assert mock_provider.stats()["by_status"] == {"200": 1}
            # the default: nothing limited, no latency
            assert mock_provider.config.rpm is None and mock_provider.config.ttft == 0

        def test_each_test_gets_its_own_provider(mock_provider):
            assert mock_provider.events() == []
        """,
    )
    result.assert_outcomes(passed=2)


def test_openai_client_through_the_fixture(pytester: pytest.Pytester) -> None:
    pytest.importorskip("openai")
    result = run(
        pytester,
        """
        import asyncio

        def test_sdk(mock_provider):
            async def main():
                async with mock_provider.openai_client(max_retries=0) as client:
                    completion = await client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=8)
                    vectors = await client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
                    return completion, vectors
            completion, vectors = asyncio.run(main())
            assert completion.choices[0].message.content
            assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 1536
            assert [e["detail"]["model"] for e in mock_provider.events("accepted")] == [
                "gpt-4o-mini", "text-embedding-3-small"]
        """,
    )
    result.assert_outcomes(passed=1)


def test_marker_configures_a_429_and_the_events_show_it(pytester: pytest.Pytester) -> None:
    pytest.importorskip("openai")
    result = run(
        pytester,
        """
        import asyncio
        import openai
        import pytest

        pytestmark = pytest.mark.mock_provider(tpm=1_000_000, seed=3)

        @pytest.mark.mock_provider(rpm=1)
        def test_second_request_is_limited(mock_provider):
            assert mock_provider.config.rpm == 1 and mock_provider.config.seed == 3  # merged, closest wins
            async def main():
                async with mock_provider.openai_client(max_retries=0) as client:
                    ask = dict(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
                    await client.chat.completions.create(**ask, max_tokens=5)
                    with pytest.raises(openai.RateLimitError) as info:
                        await client.chat.completions.create(**ask, max_tokens=5)
                    return info.value
            err = asyncio.run(main())
            assert err.code == "rate_limit_exceeded" and err.response.headers["retry-after"] == "60"
            (limited,) = mock_provider.events("limited")
            assert limited["detail"]["limit_type"] == "requests" and limited["detail"]["status"] == 429

        @pytest.mark.mock_provider(preset="lesson", ttft=0, per_token=0)
        def test_a_preset_with_overrides(mock_provider):
            # the lesson preset's 60 RPM; the module marker's tpm overrides the preset's 20,000
            assert (mock_provider.config.rpm, mock_provider.config.tpm) == (60, 1_000_000)
            assert mock_provider.config.ttft == 0

        def test_configure_inside_a_test(mock_provider):
            client = mock_provider.httpx_client()  # made before: follows the new app
            mock_provider.configure(max_body_bytes=10)
            r = asyncio.run(client.post("/v1/chat/completions", content=b"x" * 11))
            assert r.status_code == 413

        @pytest.mark.mock_provider(rmp=1)
        def test_a_typo_is_named(mock_provider):
            pass
        """,
    )
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.mock_provider: unknown option(s) rmp; use preset= or any of*"]
    )
    assert "pytest_plugin.py" not in result.stdout.str()  # one line, no traceback into the plugin


def test_config_fixture_can_be_overridden(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from mock_server.pytest_plugin import config_for

        @pytest.fixture
        def mock_provider_config():
            return config_for(rpm=7)
        """
    )
    result = run(
        pytester,
        """
        def test_directory_default(mock_provider):
            assert mock_provider.config.rpm == 7
        """,
    )
    result.assert_outcomes(passed=1)


@pytest.mark.server
def test_real_server_fixture(pytester: pytest.Pytester) -> None:
    pytest.importorskip("openai")
    result = run(
        pytester,
        """
        import asyncio
        import httpx
        import openai
        import pytest

        @pytest.mark.mock_provider(rpm=2)
        def test_over_http(mock_provider_server):
            assert mock_provider_server.url.startswith("http://127.0.0.1:")
            assert httpx.get(mock_provider_server.base_url + "/health").json() == {"status": "ok"}
            async def main():
                client = openai.AsyncOpenAI(base_url=mock_provider_server.url, api_key="k", max_retries=0)
                async with client:
                    ask = dict(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
                    for _ in range(2):
                        await client.chat.completions.create(**ask, max_tokens=5)
                    with pytest.raises(openai.RateLimitError):
                        await client.chat.completions.create(**ask, max_tokens=5)
            asyncio.run(main())
            assert len(mock_provider_server.events("completed")) == 2
            assert len(mock_provider_server.events("limited")) == 1
            assert mock_provider_server.stats()["by_status"] == {"200": 2, "429": 1}
        """,
    )
    result.assert_outcomes(passed=1)


def test_openai_missing_is_a_clear_error(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import sys

        def test_no_sdk(mock_provider, monkeypatch):
            monkeypatch.setitem(sys.modules, "openai", None)  # as if it were not installed
            try:
                mock_provider.openai_client()
            except ImportError as err:
                assert "pip install openai" in str(err)
            else:
                raise AssertionError("no ImportError")
        """,
    )
    result.assert_outcomes(passed=1)
