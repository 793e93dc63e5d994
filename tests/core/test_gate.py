"""The gate contract (core/gate.py): every limiter admits one request at a time, the same way."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from throttle_lab import Permit, Throttler, TokenBucket, run
from throttle_lab.core.gate import UNMETERED, ChargeTokens, CoolsDown, RequestGate

from .test_conformance import FACTORIES


@pytest.mark.parametrize("kind", sorted(FACTORIES))
def test_every_limiter_is_a_request_gate(kind: str) -> None:
    async def main() -> Any:
        gate = FACTORIES[kind]()
        assert isinstance(gate, RequestGate)
        async with gate.admit(3) as admission:
            admission.reconcile(3)  # always safe to call
            return admission, gate

    admission, gate = run(main())
    if isinstance(gate, Throttler):
        assert isinstance(admission, Permit) and admission.released  # released when the block ended
        assert isinstance(gate, CoolsDown)
    else:
        assert admission is UNMETERED  # a plain limiter counts requests: one unit, nothing to reconcile
        assert gate.statistics().granted == 1
        assert not isinstance(gate, CoolsDown)


def test_a_plain_limiter_charges_one_unit_per_request_and_charge_tokens_makes_it_a_meter() -> None:
    async def main() -> tuple[float, float]:
        per_request, per_token = TokenBucket(rate=1, capacity=100), TokenBucket(rate=1, capacity=100)
        async with per_request.admit(40):
            pass
        async with ChargeTokens(per_token).admit(40):
            pass
        return per_request.tokens(), per_token.tokens()

    assert run(main()) == (99.0, 60.0)


def test_charge_tokens_needs_a_limiter() -> None:
    with pytest.raises(ValueError, match="slot"):
        ChargeTokens(object())  # type: ignore[arg-type]


def test_the_throttler_is_no_limiter_subclass_but_shares_the_waiting_room() -> None:
    from throttle_lab import Limiter
    from throttle_lab.core.waiting_room import WaitingRoom

    assert not issubclass(Throttler, Limiter) and issubclass(Throttler, WaitingRoom)
    assert issubclass(TokenBucket, WaitingRoom)
    assert asyncio.iscoroutinefunction(Throttler.acquire)
