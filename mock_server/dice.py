"""Each request's random numbers, fixed by ``(seed, arrival number)``.

Reproducibility is the point: the same seed and the same order of arrivals must give the same faults,
the same text and the same latencies, run after run, whatever else happens in between. So a request does
not draw from one shared generator (whose state would depend on every earlier request) but from its own
dice, made by hashing ``"<seed>/<arrival number>"``::

    blake2b("0/17") → 64 bytes → 7-byte slices → numbers in [0, 1)

Hashing is also cheaper than seeding a Mersenne Twister per request (whose 624-word state must be
initialised every time), which matters on the server's busiest path.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

__all__ = ["Dice", "Rng"]

_STEP = 7  # bytes per number: 56 bits, all exactly representable in a float's 53-bit mantissa after scaling
_SCALE = 2.0**-56


class Rng(Protocol):
    """What the seeded parts of the server need from a random source (``random.Random`` also fits)."""

    def random(self) -> float: ...

    def uniform(self, a: float, b: float) -> float: ...

    def randrange(self, stop: int, /) -> int: ...


class Dice:
    """Deterministic random numbers for one request. Not for anything secret."""

    __slots__ = ("_digest", "_pos", "_source")

    def __init__(self, seed: int, seq: int) -> None:
        self._source = b"%d/%d" % (seed, seq)
        self._digest = hashlib.blake2b(self._source, digest_size=64).digest()
        self._pos = 0

    def _next(self) -> int:
        pos = self._pos
        if pos + _STEP > len(self._digest):
            # Out of bytes: chain another block (rare; a request uses about six numbers).
            self._digest = hashlib.blake2b(self._digest + self._source, digest_size=64).digest()
            pos = 0
        self._pos = pos + _STEP
        return int.from_bytes(self._digest[pos : pos + _STEP], "little")

    def random(self) -> float:
        """A float in [0, 1)."""
        return self._next() * _SCALE

    def uniform(self, a: float, b: float) -> float:
        """A float between ``a`` and ``b``."""
        return a + (b - a) * self.random()

    def randrange(self, stop: int, /) -> int:
        """An int in ``range(stop)`` (the modulo bias of 56 bits over small ranges is negligible)."""
        if stop < 1:
            raise ValueError(f"randrange() needs stop >= 1, got {stop}")
        return self._next() % stop

    def hex(self, nbytes: int = 12) -> str:
        """``2 * nbytes`` hex digits (for ids); consumes numbers like any other draw."""
        return "".join(f"{self._next():014x}" for _ in range(-(-nbytes // _STEP)))[: 2 * nbytes]
