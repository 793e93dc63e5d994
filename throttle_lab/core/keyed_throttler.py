"""KeyedThrottler: one independent :class:`~throttle_lab.Throttler` per API key, provider or model.

Providers enforce limits per key, so two keys must never wait for each other -- and a service that meets a
new key per user must not keep every throttler it ever made.  A throttler may be forgotten only when a fresh
one would behave exactly the same (:meth:`~throttle_lab.Throttler.at_rest`); forgetting a busy one would
hand its key a full, fresh budget: a burst above the limit.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterator

from .throttler import Permit, Throttler, ThrottlerStatistics
from .validation import check_positive

__all__ = ["KeyedThrottler"]


class KeyedThrottler:
    """One independent :class:`Throttler` per key (API key, provider, model...), made on first use.

    Limits are enforced per key by providers, so keys must never wait for each other::

        >>> throttlers = KeyedThrottler(lambda key: Throttler(max_concurrent=4, rpm=500, name=key))
        >>> throttlers["openai:key-a"] is throttlers["openai:key-a"]
        True
        >>> throttlers["openai:key-a"] is throttlers["anthropic:key-b"]
        False
        >>> throttlers
        <KeyedThrottler 2 keys: 'openai:key-a', 'anthropic:key-b'>

    One factory for several providers, each key with its provider's limits -- OpenAI's one token budget,
    Anthropic's input and output budgets (charged ``Tokens(input=…, output=…)``)::

        >>> LIMITS = {
        ...     "openai": dict(rpm=500, tpm=200_000),
        ...     "anthropic": dict(rpm=50, itpm=30_000, otpm=8_000),
        ... }
        >>> by_provider = KeyedThrottler(
        ...     lambda key: Throttler(max_concurrent=8, **LIMITS[key.split(":")[0]], name=key)
        ... )
        >>> by_provider["anthropic:team-1"]  # doctest: +ELLIPSIS
        <Throttler 'anthropic:team-1' in_flight=0/8 requests=? input_tokens=? output_tokens=? ...>
        >>> by_provider["openai:team-1"].tokens.max_weight  # a minute's budget (burst_seconds=60)
        200000.0

    Args:
        factory: makes the throttler for a key.
        max_keys: how many throttlers to keep (default 10,000; ``None``: no bound).  A throttler costs a few
            KB, so a service that sees a new key per user would otherwise grow without end.  Past the bound
            the least recently used throttlers that are :meth:`~Throttler.at_rest` are forgotten -- only
            those: one with requests waiting, in flight, paused or with a spent budget is kept (a fresh one
            in its place would let a burst through), so the count may exceed ``max_keys`` while that many
            keys are busy at once.
    """

    _SWEEP = 8  # least recently used throttlers looked at per insertion past the bound: O(1) amortised

    def __init__(self, factory: Callable[[str], Throttler], *, max_keys: int | None = 10_000) -> None:
        if not callable(factory):
            raise ValueError("factory must be a callable taking a key and returning a Throttler")
        if max_keys is not None:
            check_positive("max_keys", max_keys, integer=True)
        self._factory = factory
        self.max_keys = max_keys
        self._throttlers: OrderedDict[str, Throttler] = OrderedDict()

    def __getitem__(self, key: str) -> Throttler:
        throttlers = self._throttlers
        throttler = throttlers.get(key)
        if throttler is not None:
            throttlers.move_to_end(key)  # most recently used last
            return throttler
        throttler = self._factory(key)
        if not isinstance(throttler, Throttler):
            raise ValueError(f"factory returned {type(throttler).__name__}, not a Throttler")
        throttlers[key] = throttler
        if self.max_keys is not None and len(throttlers) > self.max_keys:
            self._evict_some()
        return throttler

    def _evict_some(self) -> None:
        throttlers = self._throttlers
        assert self.max_keys is not None
        for _ in range(min(self._SWEEP, len(throttlers) - 1)):
            if len(throttlers) <= self.max_keys:
                return
            key, oldest = next(iter(throttlers.items()))
            if oldest.at_rest():
                del throttlers[key]
            else:
                throttlers.move_to_end(key)  # busy: keep it, look at it again later

    def prune(self) -> int:
        """Forget every throttler that is at rest (see :meth:`Throttler.at_rest`); return how many."""
        idle = [key for key, throttler in self._throttlers.items() if throttler.at_rest()]
        for key in idle:
            del self._throttlers[key]
        return len(idle)

    async def acquire(self, key: str, tokens: float = 0) -> Permit:
        """``await keyed.acquire(key, tokens)``: the key's throttler's :meth:`Throttler.acquire`."""
        return await self[key].acquire(tokens)

    def __contains__(self, key: object) -> bool:
        return key in self._throttlers

    def __iter__(self) -> Iterator[str]:
        return iter(self._throttlers)

    def __len__(self) -> int:
        return len(self._throttlers)

    def statistics(self) -> dict[str, ThrottlerStatistics]:
        return {key: throttler.statistics() for key, throttler in self._throttlers.items()}

    def __repr__(self) -> str:
        shown = ", ".join(repr(key) for key in itertools.islice(self._throttlers, 5))
        more = len(self._throttlers) - 5
        count = len(self._throttlers)
        listing = f": {shown}" + (f" and {more:,} more" if more > 0 else "") if count else ""
        return f"<KeyedThrottler {count:,} key{'s' if count != 1 else ''}{listing}>"
