"""The redis-server helper: start on a free loopback port, stop, restart on the same port, crash, clean up."""

from __future__ import annotations

import os

import pytest

from throttle_lab.shared import server as server_module
from throttle_lab.shared.server import INSTALL_HINT, RedisServer, redis_server_version


def test_start_stop_restart_kill(redis_server: RedisServer) -> None:
    server = RedisServer()
    assert "no port yet" in repr(server) and not server.ping()
    with server:
        port, url = server.port, server.url
        assert url == f"redis://127.0.0.1:{port}/0" and port != redis_server.port
        assert server.running and server.ping() and server.pid
        data_dir = server._dir
        assert data_dir is not None and os.path.isdir(data_dir)
        server.restart()
        assert server.port == port and server.ping()
        server.restart(crash=True)
        assert server.port == port and server.ping()
        server.kill()
        assert not server.running and not server.ping()
        assert "stopped" in repr(server)
        server.start()
        assert server.ping()
    assert not server.running and not os.path.exists(data_dir)


def test_a_taken_port_is_a_clear_error(redis_server: RedisServer) -> None:
    with pytest.raises(RuntimeError, match=f"did not start on 127.0.0.1:{redis_server.port}"):
        RedisServer(redis_server.port).start()


def test_missing_binary_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "redis_server_path", lambda: None)
    with pytest.raises(FileNotFoundError, match="apt-get install redis-server"):
        RedisServer()
    assert "brew install redis" in INSTALL_HINT
    assert server_module.redis_server_version() is None


def test_version_and_bad_port(redis_server: RedisServer) -> None:
    version = redis_server_version()
    assert version is not None and version >= (5,)  # the scripts' TIME-then-write needs >= 5 or 3.2 + flag
    with pytest.raises(ValueError, match="port"):
        RedisServer(70_000)
