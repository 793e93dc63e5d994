"""The throttler's split token budgets (Anthropic's ITPM and OTPM): one all-or-nothing reservation."""

from __future__ import annotations

import asyncio
import pickle
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from throttle_lab import Event, Throttler, TokenBucket, Tokens, record, run

from ..helpers import Request, drive


def test_tokens_is_a_number_that_carries_its_parts() -> None:
    charge = Tokens(input=120, output=512)
    assert charge == 632 and charge.input == 120 and charge.output == 512
    assert repr(charge) == "Tokens(input=120, output=512)"
    assert type(charge + 1) is float  # arithmetic gives plain numbers: only the object carries the split
    again = pickle.loads(pickle.dumps(charge))
    assert (again, again.input, again.output) == (632, 120, 512)


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), True, "5", None])
def test_tokens_parts_must_be_non_negative_finite_numbers(bad: object) -> None:
    with pytest.raises(ValueError, match="input must be a non-negative finite number"):
        Tokens(bad, 1)  # deliberately wrong, as a caller's bug would be
    with pytest.raises(ValueError, match="output must be"):
        Tokens(1, bad)


def test_output_binds_when_replies_are_long() -> None:
    # ITPM 600/min over 1 s: 10 held, 10/s; OTPM 120/min over 1 s: 2 held, 2/s.  Each request reads 2 and
    # may write 2: input would allow 5 at once, output allows 1, then one every second.
    requests = [Request(f"r{i}", weight=Tokens(2, 2)) for i in range(4)]
    out = drive(lambda: Throttler(itpm=600, otpm=120, burst_seconds=1), requests)
    assert list(out.granted.values()) == [0.0, 1.0, 2.0, 3.0]


def test_input_binds_when_prompts_are_long() -> None:
    requests = [Request(f"r{i}", weight=Tokens(10, 1)) for i in range(4)]
    out = drive(lambda: Throttler(itpm=600, otpm=120, burst_seconds=1), requests)
    assert list(out.granted.values()) == [0.0, 1.0, 2.0, 3.0]


def test_requests_still_count_beside_the_token_budgets() -> None:
    requests = [Request(f"r{i}", weight=Tokens(1, 1)) for i in range(4)]
    out = drive(lambda: Throttler(rpm=60, itpm=6_000, otpm=6_000, burst_seconds=1), requests)
    assert list(out.granted.values()) == [0.0, 1.0, 2.0, 3.0]


def test_all_or_nothing_input_is_not_taken_while_output_is_missing() -> None:
    async def main() -> tuple[float | None, float, float]:
        throttler = Throttler(itpm=600, otpm=60, burst_seconds=1)  # output: 1 held, 1 per second
        await throttler.acquire(Tokens(1, 1))
        waiter = asyncio.create_task(throttler.acquire(Tokens(4, 1)))
        await asyncio.sleep(0.5)
        input_while_waiting = throttler.statistics().input_tokens_level
        await waiter
        return input_while_waiting, asyncio.get_running_loop().time(), throttler.statistics().tokens_granted

    # 10 held - 1 taken + 5 refilled (capped at 10): none of the waiter's 4 taken before its grant at 1.0.
    assert run(main()) == (10.0, 1.0, 7.0)


def test_a_combined_tpm_budget_applies_too() -> None:
    requests = [Request(f"r{i}", weight=Tokens(3, 3)) for i in range(3)]
    out = drive(lambda: Throttler(tpm=360, itpm=6_000, otpm=6_000, burst_seconds=1), requests)
    # tpm 360/min over 1 s: 6 held, 6/s -> one 6-token request a second.
    assert list(out.granted.values()) == [0.0, 1.0, 2.0]


def test_a_plain_number_is_refused_where_the_parts_matter() -> None:
    async def main() -> None:
        throttler = Throttler(itpm=600, otpm=60)
        with pytest.raises(ValueError, match=r"meters input and output tokens separately.*Tokens\(input"):
            await throttler.acquire(40)
        permit = await throttler.acquire()  # no tokens at all is still fine
        assert permit.tokens == Tokens(0, 0)
        with pytest.raises(ValueError, match="reconcile with Tokens"):
            permit.reconcile(10)

    run(main())


def test_a_part_larger_than_its_whole_budget_fails_at_once() -> None:
    async def main() -> int:
        throttler = Throttler(itpm=600, otpm=60, burst_seconds=1)  # output budget: 1 token held
        with pytest.raises(ValueError, match=r"output tokens 2 exceed .*output_tokens can ever grant \(1"):
            await throttler.acquire(Tokens(1, 2))
        with pytest.raises(ValueError, match="input tokens 11 exceed"):
            await throttler.acquire(Tokens(11, 1))
        return throttler.statistics().rejected

    assert run(main()) == 2


def test_reconciling_the_output_gives_the_unused_reply_budget_back() -> None:
    async def main() -> list[float]:
        throttler = Throttler(otpm=600, itpm=60_000, burst_seconds=1)  # output: 10 held, 10 per second
        loop = asyncio.get_running_loop()
        first = await throttler.acquire(Tokens(5, 10))  # charged max_tokens=10 at admission
        times = [loop.time()]

        async def second() -> None:
            await throttler.acquire(Tokens(5, 10))
            times.append(loop.time())

        task = asyncio.create_task(second())
        await asyncio.sleep(0.2)  # 2 output tokens refilled: the second waits for 8 more
        first.reconcile(Tokens(5, 2))  # the reply used 2: 8 come back, the waiter goes now
        await task
        return times

    assert run(main()) == [0.0, 0.2]


def test_reconcile_is_capped_per_budget_and_recorded() -> None:
    async def main() -> tuple[float, float, list[Event]]:
        throttler = Throttler(itpm=600, otpm=60, burst_seconds=1)
        with record() as trace:
            permit = await throttler.acquire(Tokens(4, 1))
            permit.reconcile(Tokens(2**31, 1))  # a bogus usage: capped at the input budget (10)
        return permit.tokens.input, permit.tokens.output, [e for e in trace if e.kind == "adjusted"]

    spent_in, spent_out, adjusted = run(main())
    assert (spent_in, spent_out) == (10, 1)
    assert len(adjusted) == 1 and adjusted[0].weight == 6 and adjusted[0].detail["input_tokens_left"] == -0.0


def test_a_cancelled_waiter_in_the_middle_takes_nothing() -> None:
    requests = [
        Request("a", weight=Tokens(1, 2)),
        Request("b", at=0.1, weight=Tokens(1, 2), cancel_at=0.5),
        Request("c", at=0.2, weight=Tokens(1, 2)),
    ]
    out = drive(lambda: Throttler(itpm=6_000, otpm=120, burst_seconds=1), requests)
    assert out.cancelled == ["b"]
    assert out.granted == {"a": 0.0, "c": 1.0}


def test_pause_drains_both_budgets_and_set_limits_changes_them() -> None:
    async def main() -> tuple[list[float], str]:
        throttler = Throttler(itpm=600, otpm=120, burst_seconds=1)
        loop = asyncio.get_running_loop()
        throttler.pause(1)  # a 429: both buckets emptied, and nothing goes for 1 s
        throttler.set_limits(otpm=60)  # output now refills at 1 per second
        times = []
        for _ in range(3):
            await throttler.acquire(Tokens(1, 1))
            times.append(loop.time())
        return times, repr(throttler)

    times, shown = run(main())
    assert times == [1.0, 2.0, 3.0]
    assert "input_tokens=" in shown and "output_tokens=" in shown


def test_invalid_budgets_are_refused() -> None:
    with pytest.raises(ValueError, match="itpm"):
        Throttler(itpm=0)
    with pytest.raises(ValueError, match="otpm"):
        Throttler(otpm=float("nan"))
    with pytest.raises(ValueError, match="give itpm= or input_tokens=, not both"):
        Throttler(itpm=10, input_tokens=TokenBucket(rate=1, capacity=1))


# -- properties: random arrivals, charges and cancellations on virtual time ---------------------------

ITPM, OTPM, RPM, SPAN = 1_200.0, 600.0, 240.0, 1.0  # per minute, over 1 s: 20 / 10 / 4 held
BUDGETS = {"input": ITPM / 60, "output": OTPM / 60, "requests": RPM / 60}  # refill per second = held

charges = st.lists(
    st.tuples(
        st.floats(0, 6, allow_nan=False).map(lambda t: round(t, 2)),  # arrival
        st.integers(0, 20),  # input tokens
        st.integers(0, 10),  # output tokens
        st.one_of(st.none(), st.floats(0, 8, allow_nan=False)),  # cancel at
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(charges)
def test_no_budget_is_ever_exceeded_and_grants_are_fifo(
    raw: list[tuple[float, int, int, float | None]],
) -> None:
    requests = [
        Request(f"r{i}", at=at, weight=Tokens(i_tokens, o_tokens), cancel_at=cancel)
        for i, (at, i_tokens, o_tokens, cancel) in enumerate(raw)
    ]
    out = drive(lambda: Throttler(rpm=RPM, itpm=ITPM, otpm=OTPM, burst_seconds=SPAN), requests)
    assert set(out.granted) | set(out.cancelled) == {r.name for r in requests}
    events = out.events
    entered = list(dict.fromkeys(e.request for e in events if e.kind in ("queued", "granted")))
    granted_order = [e.request for e in events if e.kind == "granted"]
    assert granted_order == [r for r in entered if r in set(granted_order)]
    # A token bucket's promise for each budget: over any span [a, b], granted <= held + rate x (b - a).
    refunded = {e.request for e in events if e.kind == "cancelled" and e.detail.get("after_grant")}
    weights = {r.name: r.weight for r in requests}
    grants = [(e.t, e.request) for e in events if e.kind == "granted" and e.request not in refunded]
    for budget, rate in BUDGETS.items():
        held = rate * SPAN

        def units(name: object, which: str = budget) -> float:
            charge = weights[str(name)]
            assert isinstance(charge, Tokens)
            return 1.0 if which == "requests" else charge.input if which == "input" else charge.output

        for i, (start, _) in enumerate(grants):
            total = 0.0
            for end, name in grants[i:]:
                total += units(name)
                assert total <= held + rate * (end - start) + 1e-9, (budget, start, end, total)


# -- the real-loop tier: the split budgets' promise at the callers, with callers that take CPU time ----


@pytest.mark.realloop
def test_split_budgets_hold_at_the_callers_on_a_real_loop() -> None:
    itpm, otpm, span = 12_000.0, 6_000.0, 0.1  # input: 200/s, holds 20; output: 100/s, holds 10
    charges = [Tokens(1 + i % 5, 1 + (i * 3) % 4) for i in range(200)]

    def burn(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    async def main() -> list[tuple[float, Tokens]]:
        throttler = Throttler(itpm=itpm, otpm=otpm, burst_seconds=span)
        loop = asyncio.get_running_loop()
        started: list[tuple[float, Tokens]] = []

        async def caller(i: int, charge: Tokens) -> None:
            async with throttler.slot(charge):
                started.append((loop.time(), charge))
                burn(0.15 if i in (30, 110) else 0.004 if i % 7 == 0 else 0.0002)

        await asyncio.gather(*(caller(i, c) for i, c in enumerate(charges)))
        return started

    started = asyncio.run(main())
    assert len(started) == len(charges)
    for per_minute, part in ((itpm, "input"), (otpm, "output")):
        rate, held = per_minute / 60, per_minute / 60 * span
        ordered = sorted(started, key=lambda s: s[0])
        for i, (first, _) in enumerate(ordered):
            total = 0.0
            for at, charge in ordered[i:]:
                total += charge.input if part == "input" else charge.output
                assert total <= held + rate * (at - first) + 1e-6, (part, first, at, total)
