"""The server's routes: which handler answers which path, and the table that says so.

A *handler* is an ASGI callable for one path, ``await handler(scope, receive, send)``, usually a bound
method or an object built with the app's :class:`~mock_server.state.ServerState` — the one thing every
route shares (clock, policy, event log, counts). Each module here serves one family of endpoints:

=====================  ==================================================================================
:mod:`.limited`        the life of a rate-limited request, shared by every limited route (no path of its own)
:mod:`.chat`           ``POST /v1/chat/completions`` (OpenAI chat, JSON and SSE): rate limited, recorded
:mod:`.embeddings`     ``POST /v1/embeddings`` (vectors, float or base64): rate limited, recorded
:mod:`.responses_api`  ``POST /v1/responses`` (OpenAI Responses: JSON or typed SSE events, function calls,
                       ``text.format``): rate limited, recorded
:mod:`.messages`       ``POST /v1/messages`` and ``/v1/messages/count_tokens`` (Anthropic Messages: JSON
                       or typed SSE events, ``tool_use``; Anthropic's errors, keys, headers and its
                       three budgets, RPM/ITPM/OTPM): rate limited, recorded (count_tokens: neither)
:mod:`.info`           ``/health``, ``/stats``, ``/events``, ``/v1/models[/{id}]``: read-only, not recorded
=====================  ==================================================================================

Every response carries ``x-request-id``, ``openai-processing-ms`` and ``openai-version``
(:func:`~mock_server.asgi.service_headers`): a limited route sets them itself (its id is the one its events
carry); for every other route — and for the router's own 404 and 405 — the router adds them.

How to add a route
------------------
Write the handler in the module of its family (or a new one), then add one line to :func:`build_router`.
Pass ``methods=("GET", "HEAD")`` (or whatever it accepts) and the router answers any other method with a
405 for you; pass ``methods=None`` if the handler checks the method itself — the limited routes do, so
that a wrong method is recorded as a ``rejected`` event like any other bad request — and
``own_headers=True`` if it sends the service headers itself (else the router adds them).

How to add a limited route or a dialect (OpenAI responses, Anthropic messages, ...)
-----------------------------------------------------------------------------------
Subclass :class:`~.limited.LimitedRoute` in a new module here, ``routes/<name>.py`` (see :mod:`.embeddings`
for the smallest one, :mod:`.chat` for a stream), and add a line to :func:`build_router` with
``methods=None``. The subclass fills in five hooks — ``parse`` (validate the body in a schema module:
bad input raises :class:`~mock_server.errors.ApiError`, answered before any limit is asked), ``charge``
(tokens against TPM), ``describe`` (fields for the events), ``plan`` (fault and latency, and whatever else
is random, from ``Dice(seed, seq)``) and ``serve`` — and inherits the rest: the API key check, the method
check, the body size limit, admission, the 429s, every header and every event. So keys, limits, headers,
events and ``/stats`` behave the same on every route, and a new route touches no other.

A dialect whose error bodies or rate-limit headers are not OpenAI's writes its own life instead, as
:mod:`.messages` does (Anthropic: ``{"type": "error", ...}`` bodies, ``x-api-key``, ``request-id``,
``anthropic-ratelimit-*`` headers): it shares the state (the same per-key buckets, event log, counts and
clock) and the helpers, not :class:`~.limited.LimitedRoute`. What is shared lives outside ``routes/``
(:mod:`~mock_server.asgi`, :mod:`~mock_server.policy`, :mod:`~mock_server.latency`, ...).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..anthropic_errors import anthropic_error_body
from ..asgi import (
    Message,
    Receive,
    Scope,
    Send,
    method_not_allowed,
    random_request_id,
    respond,
    respond_error,
    service_headers,
    unknown_url,
)
from ..state import ServerState
from .chat import CHAT_PATH, ChatCompletions
from .embeddings import EMBEDDINGS_PATH, Embeddings
from .info import MODELS_PATH, Info
from .messages import COUNT_TOKENS_PATH, MESSAGES_PATH, Messages
from .responses_api import RESPONSES_PATH, Responses

__all__ = ["CHAT_PATH", "EMBEDDINGS_PATH", "Handler", "Route", "Router", "build_router"]

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]

_READ = ("GET", "HEAD")


@dataclass(frozen=True, slots=True)
class Route:
    """A handler and the methods it accepts (``None``: it checks the method itself)."""

    handler: Handler
    methods: tuple[str, ...] | None
    own_headers: bool = False
    """The handler sends the service headers itself (the limited routes: their id is their events')."""


class Router:
    """Finds the route for a path: an exact path first, then the longest matching prefix.

    Calling the router answers the request: 404 ``unknown_url`` for a path nothing serves, 405 for a
    method the route does not accept, else whatever the handler says.
    """

    def __init__(self, organization: str | None = None) -> None:
        self._exact: dict[str, Route] = {}
        self._prefixes: list[tuple[str, Route]] = []
        self._organization = organization.encode() if organization is not None else None

    def add(
        self, path: str, handler: Handler, *, methods: tuple[str, ...] | None, own_headers: bool = False
    ) -> None:
        """Serve ``path`` exactly."""
        self._exact[path] = Route(handler, methods, own_headers)

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
        if route is not None and route.own_headers:
            await route.handler(scope, receive, send)  # the hot path: no wrapper
            return
        headers = service_headers(random_request_id(), 0, self._organization)
        if route is None and any(name == b"anthropic-version" for name, _ in scope["headers"]):
            # An Anthropic client gets its own dialect's 404 (``not_found_error``), not OpenAI's.
            body = anthropic_error_body("not_found_error", f"Not found: {method[:20]} {path[:200]}")
            await respond(send, 404, body, [(b"request-id", random_request_id().encode())])
        elif route is None:
            await respond_error(send, unknown_url(method, path), headers)
        elif route.methods is not None and method not in route.methods:
            await respond_error(send, method_not_allowed(method, path, ", ".join(route.methods)), headers)
        else:

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", ()), *headers]
                await send(message)

            await route.handler(scope, receive, send_with_headers)


def build_router(state: ServerState) -> Router:
    """Every route of one app, bound to its state. Add a route or a dialect here (see the module docs)."""
    router = Router(state.config.organization)
    # The limited routes check the method themselves, so that a wrong one is recorded as an event too.
    router.add(CHAT_PATH, ChatCompletions(state), methods=None, own_headers=True)
    router.add(EMBEDDINGS_PATH, Embeddings(state), methods=None, own_headers=True)
    router.add(RESPONSES_PATH, Responses(state), methods=None, own_headers=True)
    # Anthropic's Messages dialect: its own life (errors, keys and limits are Anthropic's), same state.
    messages = Messages(state)
    router.add(MESSAGES_PATH, messages, methods=None, own_headers=True)
    router.add(COUNT_TOKENS_PATH, messages.count_tokens, methods=None, own_headers=True)

    info = Info(state)
    router.add("/health", info.health, methods=_READ)
    router.add("/stats", info.stats, methods=_READ)
    router.add("/events", info.events, methods=_READ)
    router.add(MODELS_PATH, info.models, methods=_READ)
    router.add_prefix(MODELS_PATH + "/", info.model, methods=_READ)
    return router
