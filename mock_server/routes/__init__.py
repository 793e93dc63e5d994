"""The server's routes: which handler answers which path, and the table that says so.

A *handler* is an ASGI callable for one path, ``await handler(scope, receive, send)``, usually a bound
method or an object built with the app's :class:`~mock_server.state.ServerState` — the one thing every
route shares (clock, policy, event log, counts). Each module here serves one family of endpoints:

==================  =====================================================================================
:mod:`.chat`        ``POST /v1/chat/completions`` (OpenAI chat, JSON and SSE): rate limited, recorded
:mod:`.info`        ``/health``, ``/stats``, ``/events``, ``/v1/models[/{id}]``: read-only, not recorded
==================  =====================================================================================

How to add a route
------------------
Write the handler in the module of its family (or a new one), then add one line to :func:`build_router`.
Pass ``methods=("GET", "HEAD")`` (or whatever it accepts) and the router answers any other method with a
405 for you; pass ``methods=None`` if the handler checks the method itself — the chat route does, so that
a wrong method is recorded as a ``rejected`` event like any other bad request.

How to add a dialect (Anthropic messages, OpenAI responses, ...)
-----------------------------------------------------------------
A dialect is a new module here, ``routes/<dialect>.py``, with a handler class built from the state, and a
line in :func:`build_router` for its path. Follow :mod:`.chat` for the life of a limited request:

1. ``now = state.clock()``, ``seq = state.arrive()`` and an ``arrived`` event;
2. read the body with :func:`~mock_server.asgi.read_body` and validate it in the dialect's own schema
   module (bad input raises :class:`~mock_server.errors.ApiError`, answered before any limit is asked);
3. ``state.policy.admit(...)``, then answer a refusal or plan and serve the reply, drawing every random
   choice from ``Dice(seed, seq)``, and keep ``state.in_flight``, ``state.by_status`` and the events
   up to date.

Error bodies, rate-limit headers and SSE framing are the dialect's own; what is shared lives outside
``routes/`` (:mod:`~mock_server.asgi`, :mod:`~mock_server.policy`, :mod:`~mock_server.latency`, ...), so a
new dialect touches no other route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..asgi import Receive, Scope, Send, method_not_allowed, respond_error, unknown_url
from ..state import ServerState
from .chat import CHAT_PATH, ChatCompletions
from .info import MODELS_PATH, Info

__all__ = ["CHAT_PATH", "Handler", "Route", "Router", "build_router"]

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]

_READ = ("GET", "HEAD")


@dataclass(frozen=True, slots=True)
class Route:
    """A handler and the methods it accepts (``None``: it checks the method itself)."""

    handler: Handler
    methods: tuple[str, ...] | None


class Router:
    """Finds the route for a path: an exact path first, then the longest matching prefix.

    Calling the router answers the request: 404 ``unknown_url`` for a path nothing serves, 405 for a
    method the route does not accept, else whatever the handler says.
    """

    def __init__(self) -> None:
        self._exact: dict[str, Route] = {}
        self._prefixes: list[tuple[str, Route]] = []

    def add(self, path: str, handler: Handler, *, methods: tuple[str, ...] | None) -> None:
        """Serve ``path`` exactly."""
        self._exact[path] = Route(handler, methods)

    def add_prefix(self, prefix: str, handler: Handler, *, methods: tuple[str, ...] | None) -> None:
        """Serve every path that starts with ``prefix`` (e.g. ``/v1/models/`` for ``/v1/models/{id}``)."""
        self._prefixes.append((prefix, Route(handler, methods)))
        self._prefixes.sort(key=lambda entry: len(entry[0]), reverse=True)

    def find(self, path: str) -> Route | None:
        """The route serving ``path``, or None."""
        route = self._exact.get(path)  # a dict lookup: the chat route costs no more than a comparison
        if route is not None:
            return route
        for prefix, candidate in self._prefixes:
            if path.startswith(prefix):
                return candidate
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        route = self.find(path)
        if route is None:
            await respond_error(send, unknown_url(method, path))
        elif route.methods is not None and method not in route.methods:
            await respond_error(send, method_not_allowed(method, path, ", ".join(route.methods)))
        else:
            await route.handler(scope, receive, send)


def build_router(state: ServerState) -> Router:
    """Every route of one app, bound to its state. Add a route or a dialect here (see the module docs)."""
    router = Router()
    router.add(CHAT_PATH, ChatCompletions(state), methods=None)  # records a wrong method as an event

    info = Info(state)
    router.add("/health", info.health, methods=_READ)
    router.add("/stats", info.stats, methods=_READ)
    router.add("/events", info.events, methods=_READ)
    router.add(MODELS_PATH, info.models, methods=_READ)
    router.add_prefix(MODELS_PATH + "/", info.model, methods=_READ)
    return router
