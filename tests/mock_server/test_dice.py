"""Per-request dice: deterministic from (seed, arrival number), uniform enough, never exhausted."""

from __future__ import annotations

import statistics

import pytest

from mock_server.dice import Dice


def draws(seed: int, seq: int, n: int = 20) -> list[float]:
    dice = Dice(seed, seq)
    return [dice.random() for _ in range(n)]


def test_same_seed_and_arrival_same_numbers() -> None:
    assert draws(0, 1) == draws(0, 1)
    assert draws(0, 1) != draws(0, 2)
    assert draws(0, 1) != draws(1, 1)
    assert draws(-1, 1) != draws(1, 1)


def test_ranges_and_rough_uniformity() -> None:
    values = [x for seq in range(2000) for x in draws(7, seq, 5)]
    assert all(0.0 <= x < 1.0 for x in values)
    assert statistics.mean(values) == pytest.approx(0.5, abs=0.02)
    dice = Dice(3, 4)
    assert all(2.0 <= dice.uniform(2.0, 3.0) <= 3.0 for _ in range(50))  # chains past one digest
    picks = {Dice(0, seq).randrange(5) for seq in range(200)}
    assert picks == {0, 1, 2, 3, 4}
    with pytest.raises(ValueError):
        dice.randrange(0)


def test_hex_ids() -> None:
    ids = {Dice(0, seq).hex(12) for seq in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 24 and int(i, 16) >= 0 for i in ids)


def test_each_draw_is_the_next_seven_bytes_of_the_chained_digests() -> None:
    """The numbers are pinned to the digests: 7-byte little-endian slices of blake2b("seed/seq"), then of
    blake2b(digest + "seed/seq") once 9 draws have used 63 of its 64 bytes."""
    import hashlib

    source = b"5/42"
    first = hashlib.blake2b(source, digest_size=64).digest()
    second = hashlib.blake2b(first + source, digest_size=64).digest()
    expected = [
        int.from_bytes(block[k : k + 7], "little") for block in (first, second) for k in range(0, 63, 7)
    ]
    dice = Dice(5, 42)
    assert [dice._next() for _ in range(18)] == expected
    ids = Dice(5, 42)
    assert ids.hex(12) == f"{expected[0]:014x}{expected[1]:014x}"[:24]
    assert ids.hex(20) == "".join(f"{n:014x}" for n in expected[2:5])[:40]
