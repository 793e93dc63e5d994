"""mock_server: an LLM provider (OpenAI- and Anthropic-compatible) that rate-limits like the real ones.

Use it in-process, on virtual time, through ``httpx.ASGITransport``::

    from mock_server import ServerConfig, create_app
    app = create_app(ServerConfig(rpm=60, tpm=40_000, seed=0))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock")

or as a real HTTP server: ``python -m mock_server --port 8000 --rpm 180 --tpm 90000 --window 1``.
It serves ``POST /v1/chat/completions``, ``POST /v1/responses``, ``POST /v1/embeddings``, Anthropic's
``POST /v1/messages`` (and ``/v1/messages/count_tokens``) and ``GET /v1/models`` (plus its own
``/health``, ``/stats`` and ``/events``). It imports nothing from ``throttle_lab``: its event records are
plain dicts that any trace model can adopt.
"""

from mock_server.app import CHAT_PATH, EMBEDDINGS_PATH, EventRecord, MockServerApp, create_app
from mock_server.buckets import RefillingBucket, format_duration
from mock_server.cli import build_parser, main
from mock_server.config import PRESETS, ServerConfig
from mock_server.policy import KEEP, Limits
from mock_server.tokens import estimate_tokens, messages_input_tokens, prompt_tokens

__all__ = [
    "CHAT_PATH",
    "EMBEDDINGS_PATH",
    "KEEP",
    "PRESETS",
    "EventRecord",
    "Limits",
    "MockServerApp",
    "RefillingBucket",
    "ServerConfig",
    "build_parser",
    "create_app",
    "estimate_tokens",
    "format_duration",
    "main",
    "messages_input_tokens",
    "prompt_tokens",
]
