"""The routes that only inform: ``/health``, ``/stats``, ``/events`` and ``/v1/models``.

They read the server's state and never change it: they are not rate limited, not counted in
``by_status`` and not recorded as events, so polling them while an experiment runs leaves it untouched.
The router lets only ``GET`` and ``HEAD`` reach them, and adds the service headers to their answers.

With API keys configured, the model routes need one, as OpenAI's do (401, not recorded); ``/health``,
``/stats`` and ``/events`` never do: they are the mock's own, for whoever runs it (a readiness probe, an
experiment watching the server), not part of the API a client under test calls.

=========================  ======================================================================
``GET /health``            ``{"status": "ok"}``: the server is up (what a readiness probe polls)
``GET /stats``             :meth:`ServerState.stats`: counts, limits, every key's bucket levels, quota
``GET /events?since=N``    event records numbered N and later, with ``next`` and ``dropped``
``GET /v1/models``         the OpenAI model list (``config.models``)
``GET /v1/models/{id}``    one model object, or 404 ``model_not_found``
=========================  ======================================================================

A model request with an ``anthropic-version`` header (every Anthropic SDK call has one) is answered in
Anthropic's shape instead (:mod:`mock_server.anthropic_models`): its key is ``x-api-key`` or a bearer
token, and its errors are ``{"type": "error", ...}`` (401 ``authentication_error``, 404
``not_found_error``).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from ..anthropic_errors import AnthropicError
from ..anthropic_keys import check_anthropic_key
from ..anthropic_models import model_list, model_object
from ..asgi import Receive, Scope, Send, encode_json, respond, respond_error, respond_json
from ..errors import ApiError, model_not_found
from ..keys import check_key
from ..state import ServerState
from ..validation import describe, parse_count

__all__ = ["MODELS_PATH", "Info"]

MODELS_PATH = "/v1/models"
_MODEL_CREATED = 1_700_000_000  # a fixed "created" for model objects: they do not change between runs
_HEALTHY = b'{"status":"ok"}'


def _model_object(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": _MODEL_CREATED, "owned_by": "mock_server"}


class Info:
    """The informational handlers of one app, each an ASGI handler (``await info.health(scope, ...)``)."""

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._models = state.config.models
        self._keys = frozenset(state.config.api_keys)
        # Anthropic's list shows the Claude ids first: what an Anthropic client looks for.
        self._claude_first = tuple(sorted(self._models, key=lambda m: not m.startswith("claude-")))
        # The list never changes for a given config: encode it once.
        self._models_body = encode_json(
            {"object": "list", "data": [_model_object(m) for m in self._models]}
        ).encode()

    async def health(self, scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 200, _HEALTHY, [])

    async def stats(self, scope: Scope, receive: Receive, send: Send) -> None:
        await respond_json(send, self._state.stats())

    async def events(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        since = parse_count(query.get("since", ["0"])[-1])  # the last one wins, as most servers do
        if since is None:
            rule = describe(integer=True, minimum=0)
            await respond_error(
                send, ApiError(f"'since' must be {rule}.", param="since", code="invalid_value")
            )
            return
        await respond_json(send, self._state.log.since(since))

    async def _refused(self, scope: Scope, send: Send) -> bool:
        """Answer 401 if keys are configured and the request has none of them; True if it did."""
        if not self._keys:
            return False
        try:
            check_key(dict(scope["headers"]).get(b"authorization"), self._keys)
        except ApiError as err:
            await respond_error(send, err)
            return True
        return False

    async def _anthropic(self, scope: Scope, send: Send, model: str | None) -> None:
        """The model list (``model`` None) or one model, the Anthropic way."""
        try:
            if self._keys:
                check_anthropic_key(dict(scope["headers"]), self._keys)
            if model is None:
                data = model_list(self._claude_first, scope.get("query_string", b""))
            elif model and (not self._models or model in self._models):
                data = model_object(model)
            else:
                raise AnthropicError(f"model: {model[:100]}", status=404)
        except AnthropicError as err:
            await respond(send, err.status, err.body(), [])
            return
        await respond_json(send, data)

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _is_anthropic(scope):
            await self._anthropic(scope, send, None)
            return
        if await self._refused(scope, send):
            return
        await respond(send, 200, self._models_body, [])

    async def model(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``/v1/models/{id}``: everything after the prefix is the id, slashes included."""
        model: str = scope["path"][len(MODELS_PATH) + 1 :]
        if _is_anthropic(scope):
            await self._anthropic(scope, send, model)
            return
        if await self._refused(scope, send):
            return
        if model and (not self._models or model in self._models):
            await respond_json(send, _model_object(model))
            return
        await respond_error(send, model_not_found(model))


def _is_anthropic(scope: Scope) -> bool:
    return any(name == b"anthropic-version" for name, _ in scope["headers"])
