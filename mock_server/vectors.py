"""Deterministic embedding vectors: the same model and input give the same unit vector, anywhere, always.

A real embedding model maps text to a direction in space. The mock has no model, but it keeps the promises
client code relies on — the same text always gives the same vector (across runs, processes and machines),
different texts give different ones, and every vector has length 1 — by deriving the vector from a stable
hash (SHAKE-256, never Python's salted ``hash()``) of the model id and the input::

    key    = "mock_server embedding" ␀ model ␀ ("t" + text | "i" + token ids)
    bytes  = shake_256(key).digest(4 · native size)       →  native size uint32, little-endian
    x[i]   = 2 · u[i] / 2³² − 1                            (uniform in [-1, 1))
    vector = x[:dimensions] / ‖x[:dimensions]‖             →  float32

Asking for fewer ``dimensions`` (text-embedding-3-*) keeps a prefix of the native vector and normalises it
again, which is how OpenAI describes shortening its embeddings; so a shortened vector points the same way
as the start of the full one. The seed plays no part: an embedding is a function of its input, not a
random draw. Texts and token arrays never collide (there is no tokenizer to say which ids a text has).

Components are rounded to float32, because that is what the ``base64`` encoding carries (little-endian
float32 bytes); the ``float`` encoding sends the same float32 values as JSON numbers, so both encodings
decode to identical floats.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct

from .schema import EmbeddingInput

__all__ = ["embedding", "to_base64"]

_PREFIX = b"mock_server embedding\0"
_SCALE = 2.0 / 2**32


def _key(model: str, item: EmbeddingInput) -> bytes:
    if isinstance(item, str):
        tail = b"t" + item.encode("utf-8", "surrogatepass")
    else:
        tail = b"i" + ",".join(map(str, item)).encode()
    return _PREFIX + model.encode("utf-8", "surrogatepass") + b"\0" + tail


def embedding(model: str, item: EmbeddingInput, native: int, dimensions: int) -> list[float]:
    """The unit vector of ``item`` under ``model``: ``dimensions`` float32 values (a prefix of ``native``).

    >>> v = embedding("text-embedding-3-small", "hello", 1536, 8)
    >>> len(v), round(math.fsum(x * x for x in v), 5), v == embedding("text-embedding-3-small", "hello", 9, 8)
    (8, 1.0, True)
    """
    # The whole native vector is hashed even when a prefix is asked for, so shortening is a truncation.
    digest = hashlib.shake_256(_key(model, item)).digest(4 * native)
    values = [u * _SCALE - 1.0 for u in struct.unpack_from(f"<{dimensions}I", digest)]
    norm = math.sqrt(math.fsum(x * x for x in values))
    if norm == 0.0:  # every component exactly 0: about one chance in 2**32 per dimension, but never a 500
        values[0], norm = 1.0, 1.0
    # Round to float32 (what base64 carries) by a round trip through its bytes.
    return list(struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *(x / norm for x in values))))


def to_base64(vector: list[float]) -> str:
    """The ``base64`` encoding of a vector: its float32 values as little-endian bytes, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
