"""Fixtures for the shared-limiter tests: a real redis-server on a free loopback port.

Every test here talks to a real Redis (no fakes): one server for the whole session, a fresh key per test so
tests never see each other's state, and a server of its own for the tests that stop, crash or restart it.
Where ``redis-server`` is not installed the tests skip, saying how to install it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

pytest.importorskip("redis", reason="the shared limiters need the redis package: pip install -e '.[redis]'")

from throttle_lab.shared.server import INSTALL_HINT, RedisServer, redis_server_path


def _require_binary() -> None:
    if redis_server_path() is None:
        pytest.skip(INSTALL_HINT)


@pytest.fixture
def redis_binary() -> None:
    """For tests that make their own RedisServer: skip where there is no redis-server."""
    _require_binary()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session (tests must not stop it: use ``own_server`` for that)."""
    _require_binary()
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def key() -> str:
    """A key no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A redis-server for this test alone, persisting every write (state survives ``restart()``)."""
    _require_binary()
    with RedisServer(appendonly=True) as server:
        yield server


@pytest.fixture
def own_cache_server() -> Iterator[RedisServer]:
    """A redis-server for this test alone, without persistence (a restart forgets everything)."""
    _require_binary()
    with RedisServer(appendonly=False) as server:
        yield server
