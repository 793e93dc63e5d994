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
_BITS = 8 * _STEP
_MASK = (1 << _BITS) - 1


class Rng(Protocol):
    """What the seeded parts of the server need from a random source (``random.Random`` also fits)."""

    def random(self) -> float: ...

    def uniform(self, a: float, b: float) -> float: ...

    def randrange(self, stop: int, /) -> int: ...


class Dice:
    """Deterministic random numbers for one request. Not for anything secret."""

    __slots__ = ("_block", "_digest", "_left", "_source")

    def __init__(self, seed: int, seq: int) -> None:
        self._source = b"%d/%d" % (seed, seq)
        self._refill(hashlib.blake2b(self._source, digest_size=64).digest())

    def _refill(self, digest: bytes) -> None:
        # The digest as one little-endian integer: its k-th 7-byte slice is then ``block >> 56k`` masked,
        # so each draw is a shift and a mask rather than a slice and an int.from_bytes call.  The numbers
        # are the same as slicing would give: slice k holds bytes 7k..7k+6, the little-endian digits of
        # exactly those bits.
        self._digest = digest
        self._block = int.from_bytes(digest, "little")
        self._left = len(digest) // _STEP

    def _next(self) -> int:
        if not self._left:
            # Out of bytes: chain another block (rare; a request uses about six numbers).
            self._refill(hashlib.blake2b(self._digest + self._source, digest_size=64).digest())
        self._left -= 1
        block = self._block
        self._block = block >> _BITS
        return block & _MASK

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
