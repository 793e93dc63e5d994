"""pytest fixtures for testing *your own* client code against the mock provider.

Installed with the package as a ``pytest11`` entry point, so with ``throttle-lab`` installed every test
session has these (without it installed, load the plugin by hand: ``pytest -p mock_server.pytest_plugin``
or ``pytest_plugins = ["mock_server.pytest_plugin"]`` in your top-level ``conftest.py``):

``mock_provider``
    An in-process provider: the ASGI app (:class:`~mock_server.app.MockServerApp`) plus factories for
    clients wired to it -- :meth:`MockProvider.httpx_client` (an ``httpx.AsyncClient`` on
    ``httpx.ASGITransport``) and :meth:`MockProvider.openai_client` (the official ``openai.AsyncOpenAI``).
    No socket, no port, no thread. The app's clock is whatever loop runs it: real time under
    ``asyncio.run``, virtual time under a virtual-time loop (throttle_lab's ``run(..., virtual=True)``), where
    "wait 20 s for the limit" costs nothing.
``mock_provider_server``
    The same app served by uvicorn on a free ``127.0.0.1`` port in a background thread, for code that
    takes a URL (a subprocess, a library that builds its own client): ``.base_url``, ``.url`` (with
    ``/v1``), events read over HTTP from ``/events``. Stopped when the test ends.
``mock_provider_config``
    The :class:`~mock_server.config.ServerConfig` both use. Override it in a ``conftest.py`` to change the
    default for a directory; set it per test with the marker.

Configuring a test::

    @pytest.mark.mock_provider(rpm=2, tpm=10_000)             # any ServerConfig field
    @pytest.mark.mock_provider(preset="flaky", seed=3)         # a preset, with overrides
    @pytest.mark.mock_provider(limit_schedule=[(0.5, 1, None)])  # a brownout half a second in

Markers on the module (``pytestmark``), the class and the test are merged, the closest winning. Without a
``preset`` the base is ``instant``: nothing limited and **no latency**, so tests are fast unless they ask
for slowness; with a preset you get that preset's latency too (add ``ttft=0, per_token=0`` to drop it).
Inside a test, :meth:`MockProvider.configure` swaps in a new config (a fresh app: events start over;
clients already made follow the new app).

Asserting on what the server saw::

    def test_my_client_backs_off(mock_provider):
        ...
        assert len(mock_provider.events("limited")) == 1
        assert mock_provider.stats()["by_status"]["200"] == 3

Every event is a plain dict (``t``, ``kind``, ``request``, ``weight``, ``detail``); the kinds and their
details are listed in :mod:`mock_server.events`. Like the rest of ``mock_server``, this module imports
nothing from ``throttle_lab``; ``openai`` and ``uvicorn`` are imported only by the fixture that needs them.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest

from .app import MockServerApp, create_app
from .asgi import Receive, Scope, Send
from .config import ServerConfig
from .events import EventRecord

__all__ = [
    "MARKER",
    "MockProvider",
    "MockProviderServer",
    "config_for",
    "mock_provider",
    "mock_provider_config",
    "mock_provider_server",
]

MARKER = "mock_provider"
"""The marker's name: ``@pytest.mark.mock_provider(**config)``."""

BASE_PRESET = "instant"
"""The preset a test gets when its marker names none: no limits, no latency."""

IN_PROCESS_URL = "http://mock-provider"
"""The base URL of in-process clients (any host works on an ASGI transport; this one reads well)."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(preset=None, **fields): configure the mock provider of this test (mock_server): "
        "any ServerConfig field (rpm, tpm, window, max_concurrent, error_rate_500, limit_schedule, ...) "
        f"over the named preset (default: {BASE_PRESET!r}, no limits and no latency)",
    )


# -- configuration ----------------------------------------------------------------------------------


def config_for(preset: str | None = None, **fields: Any) -> ServerConfig:
    """The config a marker with these arguments means: ``preset`` (default ``instant``) plus ``fields``.

    An unknown field is a ``ValueError`` naming it and the valid ones; so is an invalid value (the one
    :class:`ServerConfig` raises, naming the argument). Lists are accepted where the config
    wants tuples (``models``, ``api_keys``, ``limit_schedule``), as a marker is easier to write with them.
    """
    name = BASE_PRESET if preset is None else preset
    config = ServerConfig.preset(name, **_checked(fields))
    if preset is None:
        config = dataclasses.replace(config, preset_name=None)  # the base is an implementation detail
    return config


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` if each names a :class:`ServerConfig` field, with lists made tuples; else ValueError."""
    known = {f.name for f in dataclasses.fields(ServerConfig)} - {"preset_name"}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)}; use preset= or any of {', '.join(sorted(known))}"
        )
    return {name: _tuples(value) if isinstance(value, list) else value for name, value in fields.items()}


def _tuples(values: list[Any]) -> tuple[Any, ...]:
    # ``limit_schedule=[[0.5, 1, None]]`` as readily as ``((0.5, 1, None),)``.
    return tuple(tuple(v) if isinstance(v, list) else v for v in values)


def _marker_options(node: pytest.Item) -> dict[str, Any]:
    """The keyword arguments of every ``mock_provider`` marker on ``node``, the closest winning."""
    options: dict[str, Any] = {}
    for marker in reversed(list(node.iter_markers(MARKER))):  # farthest (module) first
        if marker.args:
            raise ValueError(f"keyword arguments only (rpm=..., preset=...), got {marker.args!r}")
        options.update(marker.kwargs)
    return options


@pytest.fixture
def mock_provider_config(request: pytest.FixtureRequest) -> ServerConfig:
    """The :class:`ServerConfig` of this test: its ``mock_provider`` markers over the ``instant`` preset.

    Override this fixture to give a whole directory another default (call :func:`config_for` in it to
    keep the markers working, or return any ``ServerConfig`` to ignore them).
    """
    try:
        return config_for(**_marker_options(request.node))
    except ValueError as err:
        # The test's setup fails with one line naming the marker, not a traceback into this plugin.
        pytest.fail(f"@pytest.mark.{MARKER}: {err}", pytrace=False)


# -- in process -------------------------------------------------------------------------------------


def _select(records: Iterable[EventRecord], kind: str | Iterable[str] | None) -> list[EventRecord]:
    if kind is None:
        return list(records)
    kinds = {kind} if isinstance(kind, str) else set(kind)
    return [record for record in records if record["kind"] in kinds]


class MockProvider:
    """An in-process mock provider for one test: the app, its config, what it saw, and client factories.

    ``app`` is a :class:`~mock_server.app.MockServerApp`; everything it offers (``set_limits``,
    ``on_event``, ``reset``, ...) is there too. Clients from the factories send every request to whatever
    ``app`` is *now*, so they survive :meth:`configure`.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.app: MockServerApp = create_app(config)
        self.base_url = IN_PROCESS_URL
        """Where the in-process clients point (``/v1`` is appended for the OpenAI SDK)."""

    def __repr__(self) -> str:
        return f"<MockProvider {self.app!r}>"

    @property
    def config(self) -> ServerConfig:
        """The config the current app was built from."""
        return self.app.config

    @property
    def url(self) -> str:
        """The OpenAI-style base URL, ``<base_url>/v1``."""
        return self.base_url + "/v1"

    def configure(self, preset: str | None = None, **fields: Any) -> ServerConfig:
        """Start over with another config: ``preset`` (default: the current config) plus ``fields``.

        A new app, so events, counts and buckets start afresh; clients already made follow it.
        Returns the new config.
        """
        if preset is None:
            config = dataclasses.replace(self.app.config, **_checked(fields))
        else:
            config = config_for(preset, **fields)
        self.app = create_app(config)
        return config

    # -- what the server saw ----------------------------------------------------------------------

    def events(self, kind: str | Iterable[str] | None = None) -> list[EventRecord]:
        """The event records so far (a copy), only those of ``kind`` (a kind or several) if given.

        ``mock_provider.events("limited")`` are the 429s, ``events(("completed", "failed"))`` the ends.
        """
        return _select(self.app.events, kind)

    def stats(self) -> dict[str, Any]:
        """Counts by status and kind, the limits and bucket levels (``app.stats()``, ``GET /stats``)."""
        return self.app.stats()

    # -- clients ------------------------------------------------------------------------------------

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def transport(self) -> httpx.ASGITransport:
        """An ``httpx`` transport that serves requests with the app, in process (for your own client)."""
        return httpx.ASGITransport(app=self._asgi)

    def httpx_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` wired to the app (``base_url`` preset; other ``kwargs`` are passed on).

        Use it as ``async with mock_provider.httpx_client() as client:`` on the loop of your test.
        """
        kwargs.setdefault("base_url", self.base_url)
        return httpx.AsyncClient(transport=self.transport(), **kwargs)

    def openai_client(self, **kwargs: Any) -> Any:
        """The official ``openai.AsyncOpenAI`` wired to the app; ``kwargs`` go to its constructor.

        ``api_key`` defaults to the first configured key (or ``"sk-mock"``), ``base_url`` to :attr:`url`;
        ``max_retries`` is the SDK's own default (2) unless you pass one. Raises ``ImportError`` saying
        what to install when the ``openai`` package is missing.
        """
        openai = _import_openai()
        kwargs.setdefault("base_url", self.url)
        kwargs.setdefault("api_key", self.config.api_keys[0] if self.config.api_keys else "sk-mock")
        kwargs.setdefault("http_client", httpx.AsyncClient(transport=self.transport()))
        return openai.AsyncOpenAI(**kwargs)


def _import_openai() -> Any:
    try:
        import openai
    except ImportError as err:
        raise ImportError(
            "mock_provider.openai_client() needs the official OpenAI SDK: pip install openai "
            "(or use mock_provider.httpx_client(), which needs nothing more)"
        ) from err
    return openai


@pytest.fixture
def mock_provider(mock_provider_config: ServerConfig) -> MockProvider:
    """An in-process mock provider configured by this test's ``mock_provider`` marker."""
    return MockProvider(mock_provider_config)


# -- a real server ----------------------------------------------------------------------------------


class MockProviderServer:
    """The mock provider served by uvicorn on ``127.0.0.1`` in a background thread.

    The socket is bound (port 0: the kernel picks a free one) before uvicorn starts, so no other process
    can take the port in between. ``app`` is the very app being served; :meth:`events` reads them over
    HTTP, as any client of a real server would.
    """

    def __init__(self, config: ServerConfig, *, startup_timeout: float = 10.0) -> None:
        import uvicorn  # only the real server needs it

        self.app: MockServerApp = create_app(config)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        """``http://127.0.0.1:<port>``: the mock's own routes (``/health``, ``/events``) live here."""
        uv_config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="on",
            access_log=False,
            timeout_graceful_shutdown=2,  # a stream a test left open must not hold up its teardown
        )
        self._server = uvicorn.Server(uv_config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="mock-provider", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the mock provider did not start on {self.base_url}")
            time.sleep(0.01)

    def __repr__(self) -> str:
        return f"<MockProviderServer {self.base_url} {self.app!r}>"

    @property
    def config(self) -> ServerConfig:
        return self.app.config

    @property
    def url(self) -> str:
        """The OpenAI-style base URL, ``http://127.0.0.1:<port>/v1``: give it to your client."""
        return self.base_url + "/v1"

    def events(self, kind: str | Iterable[str] | None = None) -> list[EventRecord]:
        """The event records so far, read from ``GET /events`` (only those of ``kind`` if given)."""
        records: list[EventRecord] = httpx.get(self.base_url + "/events", timeout=10).json()["events"]
        return _select(records, kind)

    def stats(self) -> dict[str, Any]:
        """``GET /stats``: counts by status and kind, limits, bucket levels."""
        stats: dict[str, Any] = httpx.get(self.base_url + "/stats", timeout=10).json()
        return stats

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to finish (open requests get a moment to end) and wait for its thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._socket.close()


@pytest.fixture
def mock_provider_server(mock_provider_config: ServerConfig) -> Iterator[MockProviderServer]:
    """A real HTTP mock provider on a free ``127.0.0.1`` port for this test; stopped afterwards."""
    server = MockProviderServer(mock_provider_config)
    try:
        yield server
    finally:
        server.stop()
