"""The contract between limiters and the code that sends requests: room for one request, and its receipt.

The transport, the experiments and the graders do not care which limiter they hold; they ask one question
per request and keep what they are handed until the request is over::

    async with gate.admit(tokens=estimate) as admission:   # waits, in line, until the request may go
        response = await send(request)
        admission.reconcile(charged_tokens)                 # the server said what it really counted
    # leaving the block releases whatever the gate holds (a concurrency slot)

* A :class:`~throttle_lab.Throttler` charges the request's tokens (TPM), one request (RPM) and a slot, and
  hands out a :class:`~throttle_lab.Permit`, whose ``reconcile`` corrects the token books.
* A plain limiter (:class:`~throttle_lab.TokenBucket`, :class:`~throttle_lab.SlidingWindowLog`, ...) counts
  one unit per request and hands out :data:`UNMETERED`: nothing to reconcile.  Wrap it in
  :class:`ChargeTokens` to make it a token meter instead.
* The shared (Redis) limiters do the same, deciding in Redis.

A gate that can also cool down after a 429 (:meth:`Throttler.pause`) says so by having ``pause``
(:class:`CoolsDown`).  Each of these is a :class:`typing.Protocol`: mypy checks that every limiter fits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["UNMETERED", "Admission", "AsyncBlock", "ChargeTokens", "CoolsDown", "RequestGate", "Slotted"]

T_co = TypeVar("T_co", covariant=True)


class AsyncBlock(Protocol[T_co]):
    """What ``async with`` needs, and no more: ``__aenter__`` and ``__aexit__`` that return something to
    await.

    Wider than :class:`contextlib.AbstractAsyncContextManager`, whose two methods must be coroutines: a
    limiter's ``slot()`` returns an already finished future when the capacity is there (no coroutine is
    created on the uncontended path), a coroutine only when it must wait.  ``@asynccontextmanager``
    blocks fit too.
    """

    def __aenter__(self) -> Awaitable[T_co]: ...

    def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
        /,
    ) -> Awaitable[bool | None]: ...


class Admission(Protocol):
    """What a gate hands out for one request."""

    def reconcile(self, actual_tokens: float) -> None:
        """Replace the request's estimated token charge by what the server counted."""
        ...


@runtime_checkable
class RequestGate(Protocol):
    """Anything that can admit a request of ``tokens`` estimated tokens (every throttle_lab limiter)."""

    def admit(self, tokens: float = 0, /) -> AsyncBlock[Admission]:
        """Wait in line until the request may go; hold what it takes until the block ends."""
        ...


@runtime_checkable
class CoolsDown(Protocol):
    """A gate with a shared cool-down: a 429 holds every request, not just the one that got it."""

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` from now."""
        ...


class _Unmetered:
    """The admission of a gate that does not meter tokens: reconciling changes nothing."""

    __slots__ = ()

    def reconcile(self, actual_tokens: float) -> None:
        return None

    def __repr__(self) -> str:
        return "UNMETERED"


#: The admission plain limiters hand out: they count requests, so there are no tokens to reconcile.
UNMETERED: Admission = _Unmetered()


class Slotted(Protocol):
    """The 0.1 contract: anything with ``slot(weight)`` (a limiter, a naive design, a learner's gate)."""

    def slot(self, weight: float = ..., /) -> AsyncBlock[Any]: ...


class ChargeTokens:
    """Make any limiter a token meter: each request takes its estimated tokens, not one unit.

    >>> import asyncio
    >>> from throttle_lab import TokenBucket, run
    >>> async def main() -> list[float]:
    ...     gate = ChargeTokens(TokenBucket(rate=100, capacity=300))   # 100 tokens a second
    ...     loop = asyncio.get_running_loop()
    ...     times = []
    ...     for _ in range(3):
    ...         async with gate.admit(200):
    ...             times.append(loop.time())
    ...     return times
    >>> run(main())
    [0.0, 1.0, 3.0]

    A request that names no tokens (``admit(0)``) takes one unit, so it still counts.  The tokens charged are
    not reconciled afterwards: a plain limiter cannot correct a past grant (a :class:`~throttle_lab.Throttler`
    can).
    """

    def __init__(self, limiter: Slotted) -> None:
        if not callable(getattr(limiter, "slot", None)):
            raise ValueError(f"ChargeTokens needs a limiter with slot(weight), got {limiter!r}")
        self.limiter = limiter

    @asynccontextmanager
    async def admit(self, tokens: float = 0) -> AsyncIterator[Admission]:
        async with self.limiter.slot(tokens if tokens > 0 else 1):
            yield UNMETERED

    def __repr__(self) -> str:
        return f"ChargeTokens({self.limiter!r})"
