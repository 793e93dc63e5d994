"""Tests for throttle_lab.client.backoff: bounds, seeding, the hint rule, reset, and argument checks."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from throttle_lab.client.backoff import (
    Backoff,
    DecorrelatedJitter,
    EqualJitter,
    ExponentialBackoff,
    FullJitter,
    OpenAIBackoff,
)

Factory = Callable[[int], Backoff]

# Every strategy, built from a seed (ExponentialBackoff has no randomness and ignores it).
FACTORIES: dict[str, Factory] = {
    "exponential": lambda seed: ExponentialBackoff(base=0.5, factor=2.0, cap=8.0),
    "full": lambda seed: FullJitter(base=0.5, cap=8.0, seed=seed),
    "equal": lambda seed: EqualJitter(base=0.5, cap=8.0, seed=seed),
    "decorrelated": lambda seed: DecorrelatedJitter(base=0.5, cap=8.0, seed=seed),
    "openai": lambda seed: OpenAIBackoff(seed=seed),
}
JITTERED = [name for name in FACTORIES if name != "exponential"]
SEEDS = range(25)
ATTEMPTS = 60


def schedule(attempt: int, base: float = 0.5, cap: float = 8.0) -> float:
    return min(cap, base * 2.0**attempt)


# ----------------------------------------------------------------------------------------------------------
# Bounds, per strategy, over many attempts and seeds
# ----------------------------------------------------------------------------------------------------------


def test_exponential_exact_values() -> None:
    backoff = ExponentialBackoff(base=0.5, factor=2.0, cap=8.0)
    assert [backoff.delay(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert [ExponentialBackoff(base=1.0, factor=3.0, cap=100.0).delay(n) for n in range(6)] == [
        1.0,
        3.0,
        9.0,
        27.0,
        81.0,
        100.0,
    ]
    assert ExponentialBackoff(base=2.0, factor=1.0, cap=5.0).delay(40) == 2.0  # factor 1: constant


@pytest.mark.parametrize("seed", SEEDS)
def test_full_jitter_bounds(seed: int) -> None:
    backoff = FullJitter(base=0.5, cap=8.0, seed=seed)
    for n in range(ATTEMPTS):
        assert 0.0 <= backoff.delay(n) <= schedule(n)


@pytest.mark.parametrize("seed", SEEDS)
def test_equal_jitter_bounds(seed: int) -> None:
    backoff = EqualJitter(base=0.5, cap=8.0, seed=seed)
    for n in range(ATTEMPTS):
        assert schedule(n) / 2 <= backoff.delay(n) <= schedule(n)


@pytest.mark.parametrize("seed", SEEDS)
def test_decorrelated_jitter_bounds(seed: int) -> None:
    backoff = DecorrelatedJitter(base=0.5, cap=8.0, seed=seed)
    previous = 0.5
    for n in range(ATTEMPTS):
        delay = backoff.delay(n)
        assert 0.5 <= delay <= 8.0
        assert delay <= previous * 3.0  # grows at most threefold from the previous wait
        previous = delay


@pytest.mark.parametrize("seed", SEEDS)
def test_openai_bounds(seed: int) -> None:
    backoff = OpenAIBackoff(seed=seed)
    for n in range(ATTEMPTS):
        assert 0.75 * schedule(n) < backoff.delay(n) <= schedule(n)


def test_openai_first_retries_match_the_sdk_ranges() -> None:
    delays = [[OpenAIBackoff(seed=seed).delay(n) for n in range(5)] for seed in SEEDS]
    for row in delays:
        assert 0.375 < row[0] <= 0.5
        assert 0.75 < row[1] <= 1.0
        assert 6.0 < row[4] <= 8.0


def test_jitter_actually_spreads() -> None:
    # The point of jitter: clients with different seeds do not retry in lockstep.
    for name in JITTERED:
        firsts = {FACTORIES[name](seed).delay(3) for seed in SEEDS}
        assert len(firsts) == len(SEEDS), name


def test_full_jitter_mean_is_about_half_the_schedule() -> None:
    backoff = FullJitter(base=1.0, cap=4.0, seed=123)
    draws = [backoff.delay(10) for _ in range(4000)]
    assert sum(draws) / len(draws) == pytest.approx(2.0, rel=0.05)


@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("attempt", [1_000, 10_000, 10**100])
def test_huge_attempts_do_not_overflow(name: str, attempt: int) -> None:
    delay = FACTORIES[name](0).delay(attempt)
    assert math.isfinite(delay)
    assert 0.0 <= delay <= 8.0


def test_huge_factor_does_not_overflow() -> None:
    assert ExponentialBackoff(base=1.0, factor=1e300, cap=30.0).delay(5) == 30.0


# ----------------------------------------------------------------------------------------------------------
# Seeding
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("seed", [0, 1, 42])
def test_same_seed_same_sequence(name: str, seed: int) -> None:
    first = [FACTORIES[name](seed).delay(n % 8) for n in range(40)]
    again = [FACTORIES[name](seed).delay(n % 8) for n in range(40)]
    assert first == again


@pytest.mark.parametrize("name", JITTERED)
def test_different_seeds_differ(name: str) -> None:
    a, b = FACTORIES[name](1), FACTORIES[name](2)
    assert [a.delay(n) for n in range(10)] != [b.delay(n) for n in range(10)]


@pytest.mark.parametrize("name", JITTERED)
def test_global_random_is_neither_used_nor_disturbed(name: str) -> None:
    random.seed(99)
    expected = [random.random() for _ in range(3)]
    random.seed(99)
    backoff = FACTORIES[name](7)
    for n in range(10):
        backoff.delay(n)
    assert [random.random() for _ in range(3)] == expected
    # ...and reseeding the global generator does not change ours.
    random.seed(0)
    first = [FACTORIES[name](7).delay(n) for n in range(5)]
    random.seed(12345)
    assert [FACTORIES[name](7).delay(n) for n in range(5)] == first


def test_seed_none_is_allowed() -> None:
    assert 0.0 <= FullJitter(seed=None).delay(2) <= 2.0


DEFAULT_SEEDED: dict[str, Callable[[], Backoff]] = {
    "full": FullJitter,
    "equal": EqualJitter,
    "decorrelated": DecorrelatedJitter,
    "openai": OpenAIBackoff,
}


@pytest.mark.parametrize("name", list(DEFAULT_SEEDED))
def test_without_a_seed_two_instances_draw_differently(name: str) -> None:
    # A fixed default seed would make every client that omits it wait in step with every other.
    a, b = DEFAULT_SEEDED[name](), DEFAULT_SEEDED[name]()
    assert [a.delay(n) for n in range(10)] != [b.delay(n) for n in range(10)]
    assert "seed=None" in repr(a)


# ----------------------------------------------------------------------------------------------------------
# Never earlier than the server's hint
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("hint", [0.0, 0.1, 3.0, 7.99, 30.0, 120.0])
def test_hint_is_a_lower_bound(name: str, hint: float) -> None:
    backoff = FACTORIES[name](0)
    for n in range(10):
        assert backoff.delay(n, hint=hint) >= hint


@pytest.mark.parametrize("name", list(FACTORIES))
def test_hint_above_cap_wins_exactly(name: str) -> None:
    # cap bounds our own guess, not the server's instruction.
    assert FACTORIES[name](0).delay(20, hint=45.0) == 45.0


def test_small_hint_leaves_the_computed_delay() -> None:
    assert ExponentialBackoff().delay(3, hint=1.0) == 4.0
    assert ExponentialBackoff().delay(3, hint=None) == 4.0
    assert ExponentialBackoff().delay(0, hint=0) == 0.5


def test_hint_does_not_feed_the_decorrelated_chain() -> None:
    hinted, plain = DecorrelatedJitter(seed=5), DecorrelatedJitter(seed=5)
    assert hinted.delay(0, hint=60.0) == 60.0
    plain.delay(0)
    assert hinted.delay(1) == plain.delay(1)


# ----------------------------------------------------------------------------------------------------------
# reset()
# ----------------------------------------------------------------------------------------------------------


def test_decorrelated_reset_restarts_the_chain() -> None:
    backoff = DecorrelatedJitter(base=1.0, cap=1000.0, seed=3)
    for n in range(30):
        backoff.delay(n)
    backoff.reset()
    assert 1.0 <= backoff.delay(1) <= 3.0  # drawn from [base, 3·base] again


def test_decorrelated_attempt_zero_restarts_the_chain() -> None:
    backoff = DecorrelatedJitter(base=1.0, cap=1000.0, seed=3)
    for n in range(30):
        backoff.delay(n)
    assert 1.0 <= backoff.delay(0) <= 3.0


def test_decorrelated_without_reset_keeps_growing() -> None:
    backoff = DecorrelatedJitter(base=1.0, cap=1e9, seed=3)
    delays = [backoff.delay(n) for n in range(40)]
    assert delays[-1] > 1000.0  # the chain carries on from the previous wait


@pytest.mark.parametrize("name", list(FACTORIES))
def test_reset_does_not_replay_the_jitter(name: str) -> None:
    backoff = FACTORIES[name](11)
    first = [backoff.delay(n) for n in range(5)]
    backoff.reset()
    second = [backoff.delay(n) for n in range(5)]
    if name == "exponential":
        assert first == second
    else:
        assert first != second  # fresh draws, so consecutive requests do not repeat each other


# ----------------------------------------------------------------------------------------------------------
# Protocol, repr and invalid arguments
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FACTORIES))
def test_every_strategy_is_a_backoff(name: str) -> None:
    assert isinstance(FACTORIES[name](0), Backoff)


def test_reprs() -> None:
    assert repr(ExponentialBackoff()) == "ExponentialBackoff(base=0.5, factor=2.0, cap=8.0)"
    assert repr(FullJitter(1.0, 10.0, seed=4)) == "FullJitter(base=1.0, cap=10.0, seed=4)"
    assert repr(OpenAIBackoff(seed=2)) == "OpenAIBackoff(seed=2)"
    backoff = EqualJitter(base=2.0, cap=4.0)
    assert (backoff.base, backoff.cap) == (2.0, 4.0)


BAD_CONSTRUCTIONS: list[tuple[str, Callable[[], object], str]] = [
    ("base zero", lambda: FullJitter(base=0.0), "base"),
    ("base negative", lambda: EqualJitter(base=-1.0), "base"),
    ("base nan", lambda: DecorrelatedJitter(base=math.nan), "base"),
    ("base inf", lambda: ExponentialBackoff(base=math.inf), "base"),
    ("cap zero", lambda: FullJitter(base=0.5, cap=0.0), "cap"),
    ("cap inf", lambda: FullJitter(base=0.5, cap=math.inf), "cap"),
    ("cap nan", lambda: ExponentialBackoff(cap=math.nan), "cap"),
    ("cap below base", lambda: EqualJitter(base=2.0, cap=1.0), "cap"),
    ("cap below base (exp)", lambda: ExponentialBackoff(base=2.0, cap=1.0), "cap"),
    ("factor below one", lambda: ExponentialBackoff(factor=0.5), "factor"),
    ("factor nan", lambda: ExponentialBackoff(factor=math.nan), "factor"),
    ("factor inf", lambda: ExponentialBackoff(factor=math.inf), "factor"),
    ("base as bool", lambda: FullJitter(base=True), "base"),
]


@pytest.mark.parametrize(
    ("label", "build", "argument"), BAD_CONSTRUCTIONS, ids=[b[0] for b in BAD_CONSTRUCTIONS]
)
def test_invalid_configuration(label: str, build: Callable[[], object], argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        build()


@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("attempt", [-1, -100, 1.5, True])
def test_invalid_attempt(name: str, attempt: int) -> None:
    with pytest.raises(ValueError, match="attempt"):
        FACTORIES[name](0).delay(attempt)


@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("hint", [-0.1, math.nan, math.inf])
def test_invalid_hint(name: str, hint: float) -> None:
    with pytest.raises(ValueError, match="hint"):
        FACTORIES[name](0).delay(0, hint=hint)
