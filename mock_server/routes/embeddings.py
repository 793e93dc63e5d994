"""``POST /v1/embeddings``: vectors for texts or token arrays, rate limited like chat.

The life of the request — arrival, the key, validation, admission, events, headers, 429s — is
:class:`~mock_server.routes.limited.LimitedRoute`'s, exactly as for chat; this module says what is
embeddings about it:

=====================  ==========================================================================
parse                  :func:`~mock_server.schema.parse_embedding_request`: the spec's four forms of
                       ``input``, ``dimensions``, ``encoding_format``, ``user``; unknown fields → 400
charge                 the input tokens only (there is no output, so no ``max_tokens``), whatever
                       ``token_charge`` says
plan                   fault (an injected 5xx; no stream to cut) and latency (the time to first
                       token × jitter × load: there are no output tokens), from the seeded dice
serve                  one JSON ``list`` of ``embedding`` objects after the latency; vectors from
                       :mod:`mock_server.vectors` (deterministic, unit length)
=====================  ==========================================================================

The body is the spec's ``CreateEmbeddingResponse``: ``{"object": "list", "data": [{"object":
"embedding", "index": i, "embedding": [...] | "<base64>"}], "model": ..., "usage": {"prompt_tokens": N,
"total_tokens": N}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..asgi import encode_json
from ..dice import Dice
from ..faults import Fault, draw_fault
from ..latency import Latency, plan_latency
from ..schema import EmbeddingRequest, parse_embedding_request
from ..vectors import embedding, to_base64
from .limited import Exchange, LimitedRoute

__all__ = ["EMBEDDINGS_PATH", "Embeddings"]

EMBEDDINGS_PATH = "/v1/embeddings"


@dataclass(frozen=True, slots=True)
class _Plan:
    fault: Fault
    latency: Latency


class Embeddings(LimitedRoute[EmbeddingRequest, _Plan]):
    """The embeddings route of one app: an ASGI handler bound to the app's :class:`ServerState`."""

    path = EMBEDDINGS_PATH

    def parse(self, body: bytes) -> EmbeddingRequest:
        return parse_embedding_request(body, self._config)

    def charge(self, request: EmbeddingRequest) -> int:
        return request.prompt_tokens

    def describe(self, request: EmbeddingRequest) -> dict[str, Any]:
        return {
            "model": request.model,
            "prompt_tokens": request.prompt_tokens,
            "inputs": len(request.inputs),
            "dimensions": request.dimensions,
            "encoding_format": request.encoding_format,
        }

    def plan(self, request: EmbeddingRequest, seq: int, start: float) -> _Plan:
        # The same draws as chat makes first (two for the fault, one for the latency), in the same order.
        rng = Dice(self._config.seed, seq)
        fault = draw_fault(self._config, rng, False)
        return _Plan(fault, plan_latency(self._config, rng, 0, self._state.in_flight - 1))

    async def serve(self, exchange: Exchange[EmbeddingRequest, _Plan]) -> None:
        if await self.fail(exchange):
            return
        request = exchange.request
        data: list[dict[str, Any]] = []
        for index, item in enumerate(request.inputs):
            vector = embedding(request.model, item, request.native_dimensions, request.dimensions)
            encoded: str | list[float] = to_base64(vector) if request.encoding_format == "base64" else vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = request.prompt_tokens
        body = encode_json(
            {
                "object": "list",
                "data": data,
                "model": request.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        ).encode()
        done = {**exchange.detail, "status": 200, "completion_tokens": 0, "total_tokens": tokens}
        await self.reply_json(exchange, body, done)
