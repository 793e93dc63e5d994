"""KeyedThrottler: one throttler per key, never waiting for each other, forgetting only keys at rest."""

from __future__ import annotations

import asyncio

import pytest

from throttle_lab import KeyedThrottler, Throttler, run


def test_keyed_throttlers_never_wait_for_each_other() -> None:
    async def main() -> dict[str, list[float]]:
        keyed = KeyedThrottler(lambda key: Throttler(rpm=60, window=1, name=key))
        loop = asyncio.get_running_loop()
        times: dict[str, list[float]] = {"a": [], "b": []}

        async def call(key: str) -> None:
            await keyed.acquire(key)
            times[key].append(loop.time())

        await asyncio.gather(*(call(k) for k in "aabbab"))
        assert set(keyed) == {"a", "b"} and len(keyed) == 2 and "a" in keyed
        return times

    assert run(main()) == {"a": [0.0, 1.0, 2.0], "b": [0.0, 1.0, 2.0]}


def test_keyed_factory_must_make_throttlers() -> None:
    keyed = KeyedThrottler(lambda key: "nope")  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="not a Throttler"):
        keyed["x"]


def test_keyed_throttler_forgets_keys_at_rest_beyond_its_bound() -> None:
    async def main() -> tuple[int, list[str]]:
        keyed = KeyedThrottler(lambda key: Throttler(max_concurrent=2, rpm=600, window=1), max_keys=3)
        busy = await keyed["busy"].acquire()  # in flight: must never be forgotten
        for i in range(20):
            keyed[f"idle-{i}"]  # never used: at rest
        await asyncio.sleep(1)
        assert "busy" in keyed
        busy.release()
        await asyncio.sleep(1)  # its bucket refills: now at rest too
        for i in range(20, 25):
            keyed[f"idle-{i}"]
        return len(keyed), list(keyed)

    size, keys = run(main())
    assert size == 3 and keys == ["idle-22", "idle-23", "idle-24"]


def test_keyed_throttler_keeps_a_spent_budget() -> None:
    # Forgetting a throttler whose budget is spent would hand the key a fresh, full bucket: a burst.
    async def main() -> float:
        keyed = KeyedThrottler(lambda key: Throttler(rpm=60, window=1), max_keys=1)
        loop = asyncio.get_running_loop()
        await keyed.acquire("a")
        keyed["b"]
        await keyed.acquire("a")  # still the same, spent throttler: waits for its refill
        return loop.time()

    assert run(main()) == 1.0


def test_keyed_throttler_prune_and_bounded_repr() -> None:
    keyed = KeyedThrottler(lambda key: Throttler(rpm=60), max_keys=None)
    for i in range(1000):
        keyed[f"k{i}"]
    text = repr(keyed)
    assert text == "<KeyedThrottler 1,000 keys: 'k0', 'k1', 'k2', 'k3', 'k4' and 995 more>"
    assert keyed.prune() == 1000 and len(keyed) == 0
    assert repr(keyed) == "<KeyedThrottler 0 keys>"
    with pytest.raises(ValueError, match="max_keys"):
        KeyedThrottler(lambda key: Throttler(rpm=60), max_keys=0)
