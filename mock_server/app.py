"""The ASGI application: one object you can call, serve and inspect.

A raw ASGI3 callable — no framework — because the server must stay fast enough that it is never the
bottleneck of an experiment, and because the whole request path fits in a few short modules:

=========================  ==================================================================================
:mod:`mock_server.app`     this module: the ASGI entry point (HTTP, lifespan) and the controls a caller uses
:mod:`.routes`             which handler serves which path; :mod:`.routes.limited` is the life of a request
:mod:`.state`              what the routes share: the clock, the policy, the event log, the counts
:mod:`.asgi`               reading bodies within a size limit; sending JSON, errors and SSE
:mod:`.events`             event records: their kinds and detail keys, trimming, the observer
=========================  ==================================================================================

All time comes from the running loop (``loop.time()``), and all waiting is ``asyncio.sleep``, so the same
app runs in real time under uvicorn and in virtual time in-process (through ``httpx.ASGITransport``).
The only wall clock is the ``created`` field of response bodies, which is a Unix timestamp by contract.
"""

from __future__ import annotations

from typing import Any

from .asgi import Receive, Scope, Send
from .config import ServerConfig
from .events import EventRecord, Observer
from .policy import KEEP, Keep, Limits
from .routes import CHAT_PATH, EMBEDDINGS_PATH, build_router
from .state import ServerState

__all__ = ["CHAT_PATH", "EMBEDDINGS_PATH", "EventRecord", "MockServerApp", "create_app"]


def create_app(config: ServerConfig | None = None) -> MockServerApp:
    """Build the mock provider for ``config`` (defaults: :class:`ServerConfig()`, nothing limited)."""
    return MockServerApp(config if config is not None else ServerConfig())


class MockServerApp:
    """An OpenAI-compatible provider as an ASGI3 application (``await app(scope, receive, send)``).

    Attributes a caller may use:

    ``events``
        Every event record so far, appended as they happen (trimmed to the newest ``max_events``); the
        kinds and their details are listed in :mod:`mock_server.events`.
    ``on_event``
        Optional callable given each record as it is appended (an observer, e.g. a live plot).
    ``config``
        The :class:`ServerConfig` the app was built from.

    The app's clock is the loop it runs on. When it finds itself on a *different* loop than before (a new
    ``run(...)``), that loop's clock has another origin: buckets start full again and the limit schedule
    starts over. Limits set with :meth:`set_limits`, the quota used, events and counts are kept until
    :meth:`reset`.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._state = ServerState(config)
        self._router = build_router(self._state)

    def __repr__(self) -> str:
        state = self._state
        limits = state.policy.limits
        anthropic = ""
        if limits.itpm is not None or limits.otpm is not None:
            anthropic = f"itpm={limits.itpm} otpm={limits.otpm} "
        return (
            f"<MockServerApp rpm={limits.rpm} tpm={limits.tpm} {anthropic}window={self.config.window:g}s "
            f"max_concurrent={limits.max_concurrent} arrivals={state.arrivals} in_flight={state.in_flight} "
            f"events={len(state.log)}>"
        )

    # -- what the app recorded --------------------------------------------------------------------

    @property
    def events(self) -> list[EventRecord]:
        """Every event record so far (the live list: it grows as requests are served)."""
        return self._state.log.records

    @property
    def on_event(self) -> Observer | None:
        """Called with each event record as it is appended; an exception it raises is logged, not raised."""
        return self._state.log.observer

    @on_event.setter
    def on_event(self, observer: Observer | None) -> None:
        self._state.log.observer = observer

    def events_since(self, since: int = 0) -> dict[str, Any]:
        """Event records numbered ``since`` and later (numbering counts every record since :meth:`reset`).

        Returns ``{"events": [...], "next": N, "dropped": D}``: pass ``next`` back as ``since`` to poll for
        only new records; ``dropped`` counts records already trimmed away by ``max_events``. Served at
        ``GET /events?since=N`` so a client of the real server can overlay the server's view on its own.
        """
        return self._state.log.since(since)

    def stats(self) -> dict[str, Any]:
        """Counts and current bucket levels, as JSON-friendly data (also served at ``GET /stats``)."""
        return self._state.stats()

    # -- controls ---------------------------------------------------------------------------------

    def set_limits(
        self,
        *,
        rpm: int | Keep | None = KEEP,
        tpm: int | Keep | None = KEEP,
        max_concurrent: int | Keep | None = KEEP,
        itpm: int | Keep | None = KEEP,
        otpm: int | Keep | None = KEEP,
    ) -> Limits:
        """Change limits now, keeping current usage; ``None`` = unlimited, omitted = unchanged.

        ``itpm``/``otpm`` are the Anthropic route's input/output token limits. Raises ``ValueError``
        naming the argument for an invalid value. Returns the limits in force.
        """
        state = self._state
        return state.policy.set_limits(
            state.peek(), rpm=rpm, tpm=tpm, max_concurrent=max_concurrent, itpm=itpm, otpm=otpm
        )

    def wall_time(self, loop_time: float) -> float:
        """The Unix time the app shows for ``loop_time`` (Anthropic's RFC 3339 ``reset`` headers).

        Loop time is the source of truth; it is mapped to the wall once per clock origin, so on virtual
        time ``wall_time(t) - wall_time(0)`` is exactly ``t``.
        """
        return self._state.wall_time(loop_time)

    @property
    def limits(self) -> Limits:
        """The limits in force right now."""
        return self._state.policy.limits

    def reset(self) -> None:
        """Forget events, counts, buckets, the epoch and the arrival numbering (limits back to config)."""
        self._state.reset()

    # -- ASGI entry point -------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._router(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._state.clock()  # fixes the epoch: the limit schedule counts from server start
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
