"""mock_server: an OpenAI-compatible LLM provider that rate-limits like the real one.

Use it in-process, on virtual time, through ``httpx.ASGITransport``::

    from mock_server import ServerConfig, create_app
    app = create_app(ServerConfig(rpm=60, tpm=40_000, seed=0))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock")

or as a real HTTP server: ``python -m mock_server --port 8000 --rpm 180 --tpm 90000 --window 1``.
It serves ``POST /v1/chat/completions``, ``POST /v1/embeddings`` and ``GET /v1/models`` (plus its own
``/health``, ``/stats`` and ``/events``). It imports nothing from ``throttle_lab``: its event records are
plain dicts that any trace model can adopt.
"""

from mock_server.app import CHAT_PATH, EMBEDDINGS_PATH, EventRecord, MockServerApp, create_app
from mock_server.buckets import RefillingBucket, format_duration
from mock_server.cli import build_parser, main
from mock_server.config import PRESETS, ServerConfig
from mock_server.policy import KEEP, Limits
from mock_server.tokens import estimate_tokens, prompt_tokens

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
    "prompt_tokens",
]
