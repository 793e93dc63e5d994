"""Events: what every limiter, client and server in throttle_lab says about what it does.

Everything interesting about rate limiting happens *over time*, so every piece of throttle_lab reports
each step of a request's life as an :class:`Event` -- a timestamp, a kind, who said it, which request::

    t=0.000  queued    TokenBucket   req 7
    t=2.500  granted   TokenBucket   req 7   {'waited': 2.5, 'tokens_left': 0.0}
    t=2.500  sent      client        req 7
    t=2.500  arrived   server        req 7
    t=3.120  response  client        req 7   {'status': 200}

Recording is an *observer*, not a base class.  Nothing is kept unless someone asks::

    >>> import asyncio
    >>> from throttle_lab import TokenBucket, record, run
    >>> async def main() -> None:
    ...     bucket = TokenBucket(rate=1.0, capacity=1)
    ...     for _ in range(3):
    ...         await bucket.acquire()
    >>> with record() as trace:
    ...     run(main())
    >>> [(e.t, e.kind) for e in trace.of_kind("granted")]
    [(0.0, 'granted'), (1.0, 'granted'), (2.0, 'granted')]

With nothing recording, :func:`emit` returns after one context-variable look-up, so instrumented code
costs next to nothing in production.  Recorders are context-local: tasks started inside ``with record()``
(and ``throttle_lab.run`` calls made there, even from a notebook) report to it; other threads do not.
"""

from __future__ import annotations

import contextvars
import enum
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .trace import Trace

__all__ = [
    "Event",
    "Kind",
    "current_request",
    "emit",
    "is_recording",
    "observe",
    "record",
    "request_scope",
]


class Kind(enum.StrEnum):
    """The kinds of event.  They are strings, so ``event.kind == "granted"`` works too."""

    # A limiter's view of a request.
    QUEUED = "queued"  # had to wait: capacity was not there (or others were ahead)
    GRANTED = "granted"  # capacity taken; detail["waited"] says for how long it waited
    RELEASED = "released"  # capacity given back (concurrency slots, refunds)
    CANCELLED = "cancelled"  # the waiter gave up (task cancelled, timeout) and left the queue
    REJECTED = "rejected"  # refused locally: can never fit, or an adaptive throttle said no
    ADJUSTED = "adjusted"  # a charge corrected afterwards (estimated tokens reconciled with usage)
    PAUSED = "paused"  # the whole limiter cools down until detail["until"]
    # A client's view.
    SENT = "sent"  # an attempt left for the server
    RESPONSE = "response"  # an attempt came back; detail["status"]
    HTTP_429 = "429"  # an attempt came back 429 Too Many Requests (the server refused it for now)
    RATE_LIMITED = "429"  # the 0.1 name of HTTP_429 (an alias: the same member)
    RETRY = "retry"  # a retry is scheduled after detail["delay"] seconds
    DONE = "done"  # the request finished successfully
    FAILED = "failed"  # the request gave up (retries exhausted, error)
    # The server's view (mock_server reports these as plain records).
    ARRIVED = "arrived"
    ACCEPTED = "accepted"
    LIMITED = "limited"
    COMPLETED = "completed"


_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True, init=False)
class Event:
    """One thing that happened, at loop time ``t``.

    Attributes:
        t: the loop's clock (virtual seconds under virtual time).
        kind: one of :class:`Kind` (plain strings are accepted, e.g. from the mock server's records).
        source: who reported it: a limiter's ``name``, ``"client"``, ``"server"``...
        request: which request it is about (``None`` for events about the limiter itself).
        weight: how much capacity it concerns: 1 for a request, the token count for TPM.
        detail: a small read-only mapping of extra facts (tokens left, status code, retry delay...).
    """

    t: float
    kind: str
    source: str
    request: Hashable | None = None
    weight: float = 1
    detail: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def __init__(
        self,
        t: float,
        kind: str,
        source: str,
        request: Hashable | None = None,
        weight: float = 1,
        detail: Mapping[str, Any] = _EMPTY,
    ) -> None:
        # What the generated __init__ of a frozen dataclass does -- one object.__setattr__ per field, each
        # a look-up and a generic call -- through the slots' own setters: a simulation makes ~8 events a
        # request, so this is a visible share of a simulated request.
        set_t, set_kind, set_source, set_request, set_weight, set_detail = _SETTERS
        set_t(self, t)
        set_kind(self, kind)
        set_source(self, source)
        set_request(self, request)
        set_weight(self, weight)
        set_detail(self, detail)

    def as_row(self) -> dict[str, Any]:
        """A flat dict (detail keys prefixed ``detail.``) for CSV files and DataFrames."""
        row: dict[str, Any] = {
            "t": self.t,
            "kind": str(self.kind),
            "source": self.source,
            "request": self.request,
            "weight": self.weight,
        }
        for key, value in self.detail.items():
            row[f"detail.{key}"] = value
        return row


# The slots' descriptors, in field order (the class is final only after @dataclass(slots=True) rebuilt it).
_SETTERS: tuple[Callable[[Event, Any], None], ...] = tuple(
    getattr(Event, name).__set__ for name in Event.__dataclass_fields__
)

Observer = Callable[[Event], None]

# The observers active in this context.  A tuple, so entering a nested `record()` never mutates what an
# enclosing context sees.
_OBSERVERS: contextvars.ContextVar[tuple[Observer, ...]] = contextvars.ContextVar(
    "throttle_lab_observers", default=()
)
# `_OBSERVERS.get`, bound once: the "is anyone recording?" test on every grant.  Modules import and call
# this name.  Had they imported `_OBSERVERS` and called `_OBSERVERS.get()`, CPython would compile the call
# as an attribute load on an imported name -- a new bound method object on every call, about a tenth of
# an uncontended `async with slot()`.
_observers = _OBSERVERS.get
# The request id events default to; set by clients around one request's life.
_REQUEST: contextvars.ContextVar[Hashable | None] = contextvars.ContextVar(
    "throttle_lab_request", default=None
)


def is_recording() -> bool:
    """True when some observer would receive an emitted event (lets callers skip building details)."""
    return bool(_OBSERVERS.get())


def emit(
    t: float,
    kind: str,
    source: str,
    request: Hashable | None = None,
    weight: float = 1,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Report an event to every active observer; does almost nothing when none is active.

    ``request`` defaults to the id set by the innermost :func:`request_scope`.
    """
    observers = _OBSERVERS.get()
    if not observers:
        return
    if request is None:
        request = _REQUEST.get()
    # Store plain strings (not Kind members): events print, compare and export as the text they are.
    event = Event(t, str(kind), source, request, weight, MappingProxyType(dict(detail)) if detail else _EMPTY)
    for observer in observers:
        observer(event)


@contextmanager
def observe(observer: Observer) -> Iterator[Observer]:
    """Call ``observer(event)`` for every event emitted in this context (a live feed, e.g. a progress bar)."""
    token = _OBSERVERS.set((*_OBSERVERS.get(), observer))
    try:
        yield observer
    finally:
        _OBSERVERS.reset(token)


@contextmanager
def record() -> Iterator[Trace]:
    """Collect every event emitted inside the ``with`` block into a :class:`~throttle_lab.Trace`.

    Recorders nest: an inner ``record()`` sees its own events, and the outer one sees them too.
    """
    from .trace import Trace  # trace.py builds on this module, so import it lazily

    trace = Trace()
    with observe(trace.append):
        yield trace


def current_request() -> Hashable | None:
    """The request id set by the innermost :func:`request_scope`, if any."""
    return _REQUEST.get()


class request_scope:  # lower case: used like the function it was, `with request_scope(id):`
    """Attribute every event emitted inside to ``request`` (limiters don't need to be told the id).

    A small class rather than ``@contextmanager``: a client enters one or two per request, and the
    generator version cost several times the context-variable work it wraps.
    """

    __slots__ = ("_request", "_token")

    def __init__(self, request: Hashable) -> None:
        self._request = request

    def __enter__(self) -> Hashable:
        self._token = _REQUEST.set(self._request)
        return self._request

    def __exit__(self, *exc_info: object) -> None:
        _REQUEST.reset(self._token)
