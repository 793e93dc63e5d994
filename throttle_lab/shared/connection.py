"""A shared limiter's line to Redis: one client per event loop, scripts run by SHA, a bare ``TIME``.

A URL makes the limiter's own client, on the loop that first uses it, with short timeouts, no retries and
few connections (why few: ``_MAX_CONNECTIONS``); a ``redis.asyncio.Redis`` you pass is used as it is.
Scripts go as ``EVALSHA`` (the SHA, not the source, on every call), loaded on first use and again when the
server answers ``NOSCRIPT`` (it restarted, or its script cache was flushed).

What to do when Redis does not answer is not decided here: see :mod:`throttle_lab.shared.faults`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ..core.validation import check_positive
from ._redis import NoBackoff, Retry, aioredis, redis_errors
from .scripts import LuaScript

__all__ = ["RedisConnection"]

# Connections per limiter and event loop (its own client's pool); more callers wait for a free one, in
# order.  Few on purpose: with fifty in flight, all fifty commands are written before the loop reads the
# first reply, so a caller granted at once by the first script proceeds only after the whole burst was sent
# (30 ms for fifty, here) -- later than any margin.  With eight, replies come back in step with the sends
# (the first after 2-4 ms) and a burst costs a quarter of the CPU (measured in benchmarks/README.md).
_MAX_CONNECTIONS = 8


def _text(value: Any) -> str:
    """A reply's bytes or string as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _arg(value: float) -> str:
    """A number as script argument text that Lua's ``tonumber`` reads back exactly."""
    return repr(value) if isinstance(value, float) else str(value)


class RedisConnection:
    """The client one limiter talks to Redis through, and the scripts it has loaded there.

    Args:
        redis: a ``redis://``, ``rediss://`` or ``unix://`` URL, or a ``redis.asyncio.Redis``.
        timeout: seconds to wait for Redis (connect and reply), for a client made from a URL.
    """

    __slots__ = ("_client", "_given", "_load_lock", "_loaded", "_url", "script_loads", "timeout")

    def __init__(self, redis: str | aioredis.Redis, timeout: float) -> None:
        if isinstance(redis, str):
            if not redis.startswith(("redis://", "rediss://", "unix://")):
                raise ValueError(f"redis must be a redis:// URL or a redis.asyncio.Redis, got {redis!r}")
            self._url: str | None = redis
            self._given: aioredis.Redis | None = None
        elif isinstance(redis, aioredis.Redis):
            self._url = None
            self._given = redis
        else:
            raise ValueError(f"redis must be a redis:// URL or a redis.asyncio.Redis, got {redis!r}")
        self.timeout = check_positive("timeout", timeout)
        self._client: aioredis.Redis | None = None  # made on first use (see client)
        self._load_lock: asyncio.Lock | None = None
        self._loaded: set[str] = set()  # names of the scripts loaded on the server
        self.script_loads = 0

    def bind(self) -> None:
        """A new event loop: a client's connections belong to the loop that made them, so the next call
        makes a new client."""
        self._client = None
        self._load_lock = asyncio.Lock()

    def client(self) -> aioredis.Redis:
        """The client to use now: the one given, or this limiter's own (made on first use)."""
        if self._given is not None:
            return self._given
        if self._client is None:
            assert self._url is not None
            # A blocking pool: a thousand callers at once wait their turn for one of a few connections,
            # rather than failing with "Too many connections".
            pool = aioredis.BlockingConnectionPool.from_url(
                self._url,
                max_connections=_MAX_CONNECTIONS,
                timeout=self.timeout,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                # No retries underneath us: a retried EVALSHA could book twice, and an outage should reach
                # the fault policy now, not after a second of backoff.
                retry=Retry(NoBackoff(), 0),
            )
            self._client = aioredis.Redis.from_pool(pool)
        return self._client

    def where(self) -> str:
        """Where Redis is (host:port or a socket path), for messages."""
        try:
            kwargs = self.client().connection_pool.connection_kwargs
        except Exception:  # pragma: no cover - an exotic client
            return "?"
        if "path" in kwargs:
            return str(kwargs["path"])
        return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"

    async def call(self, script: LuaScript, keys: list[str], args: list[str]) -> Any:
        """EVALSHA by SHA; load the script first if this limiter has not yet, and again on NOSCRIPT."""
        client = self.client()
        if script.name not in self._loaded:
            await self._load(client, script)
        try:
            return await client.evalsha(script.sha, len(keys), *keys, *args)
        except redis_errors.NoScriptError:
            # The server restarted or its script cache was flushed: load again and retry once.
            self._loaded.discard(script.name)
            await self._load(client, script)
            return await client.evalsha(script.sha, len(keys), *keys, *args)

    async def _load(self, client: aioredis.Redis, script: LuaScript) -> None:
        assert self._load_lock is not None
        async with self._load_lock:  # many first callers at once: load once
            if script.name in self._loaded:
                return
            sha = _text(await client.script_load(script.source))
            if sha != script.sha:  # pragma: no cover - would mean a broken server
                raise RuntimeError(f"SCRIPT LOAD answered {sha}, expected {script.sha}")
            self.script_loads += 1
            self._loaded.add(script.name)

    def forget_scripts(self) -> None:
        """After a failure: a server that comes back may have forgotten our scripts."""
        self._loaded.clear()

    async def time_us(self) -> int:
        """Redis's clock (``TIME``), in microseconds."""
        seconds, micros = await self.client().time()
        return int(seconds) * 1_000_000 + int(micros)

    async def drop_idle(self) -> None:
        """After a failure, the pool's idle connections are most likely dead too (a restarted server closed
        them all): drop them, or each would fail one more request after Redis is back."""
        if self._given is None and self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.connection_pool.disconnect(inuse_connections=False)

    async def aclose(self) -> None:
        """Close the client if this limiter made it (a client you passed stays yours to close)."""
        if self._client is not None and self._given is None:
            client, self._client = self._client, None
            await client.aclose()
