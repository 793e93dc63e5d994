"""Designs: *how* a client sends -- which limiter, which retry policy, adaptive or not.

A :class:`Design` is a name, a one-line description and a recipe.  The recipe, ``build()``, makes a fresh
:class:`ClientStack` for every run -- fresh because a limiter's locks and timers belong to the event loop
they were made in, and every run gets a new loop::

    Design("gcra", build=lambda: ClientStack(GCRA(per_minute=30, burst=5), seeded_retry()), description=...)
                      │
                      │  called inside the run, once
                      ▼
    ClientStack(limiter, retry, aimd, client_throttle)
                      │
                      ▼
    ThrottledTransport(inner, limiter=..., retry=..., aimd=..., client_throttle=...)  ──> the server

Any limiter makes a design (anything with ``slot(weight)``: ours, the article's, a learner's own class).
The built-in ones range from "no limiter at all" and the article's throttler to ours and the adaptive
ones; :data:`DESIGNS` lists their names and one-line descriptions, and :func:`make_design` builds one for
the client's limits (``simulate`` configures the client to the server's limits unless told otherwise).

**How to add a built-in design**: add one :class:`BuiltIn` entry to ``_BUILT_IN`` at the bottom of this
module -- its name, its one-line description, its default concurrency if it caps concurrency, the retry
policy it uses unless the caller passes one, how to build its stack from the client's limits and how to
describe one so configured.  ``DESIGNS``, ``make_design``, ``simulate``'s ``meta["client"]``, the CLI and
the widgets all read it from there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ...client.adaptive import AIMD, ClientSideThrottle
from ...client.backoff import FullJitter, OpenAIBackoff
from ...client.retry import RetryPolicy
from ...core.limiters.concurrency import ConcurrencyLimiter
from ...core.limiters.token_bucket import TokenBucket
from ...core.throttler import Throttler
from ..naive import RateThenSemaphore

__all__ = [
    "DESIGNS",
    "BuiltIn",
    "ClientLimits",
    "ClientStack",
    "Design",
    "DesignParts",
    "built_in",
    "make_design",
    "seeded_retry",
]


@dataclass
class ClientStack:
    """What a design builds for one run: the pieces ``ThrottledTransport`` is stacked from.

    Attributes:
        limiter: what each send waits for (any throttle_lab limiter, or anything with ``slot(weight)``);
            ``None`` sends at once.
        retry: what to do after a 429 or a 5xx (``None``: answers come back as they are, no retries).
        aimd: steers the limiter's rate from the answers (cut on a 429, creep up on success).
        client_throttle: refuses requests locally while the server is refusing many (the SRE throttle).
    """

    limiter: Any = None
    retry: RetryPolicy | None = None
    aimd: AIMD | None = None
    client_throttle: ClientSideThrottle | None = None


#: The name ``ClientStack`` had before 0.2; it is the same class and stays (lessons and users type it).
DesignParts = ClientStack


@dataclass
class Design:
    """A named way of sending requests: ``build()`` makes its pieces (inside the run's event loop)."""

    name: str
    build: Callable[[], ClientStack]
    description: str = ""

    def __repr__(self) -> str:
        return f"<Design {self.name!r}: {self.description}>"


def seeded_retry(seed: int = 0) -> RetryPolicy:
    """``RetryPolicy()`` with its jitter pinned to ``seed``, for runs that must repeat exactly.

    ``RetryPolicy()``'s own backoff is seeded from the operating system, so that two clients never wait in
    step; an experiment, a grader or a plotted lesson must give the same trace every time instead.
    (``seed=0`` draws what the default drew before it was seeded per policy.)
    """
    return RetryPolicy(backoff=FullJitter(base=0.5, cap=30.0, seed=seed))


# ---------------------------------------------------------------------------------------------- registry
@dataclass(frozen=True, slots=True)
class ClientLimits:
    """The limits a built-in design is configured to: what the *client* believes, not what the server does.

    ``window`` is the span over which a per-minute budget may burst (set it to the server's).
    """

    rpm: float | None = None
    tpm: float | None = None
    max_concurrent: int | None = None
    window: float = 60.0

    @property
    def concurrency(self) -> int:
        """``max_concurrent`` for a design that always caps it (its entry gives a default)."""
        if self.max_concurrent is None:
            raise ValueError("this design needs max_concurrent (give its BuiltIn a default_concurrency)")
        return self.max_concurrent

    def rpm_or(self, default: float) -> float:
        """``rpm``, or ``default`` for a design that needs a rate when the client was given none."""
        return self.rpm if self.rpm is not None else default


@dataclass(frozen=True, slots=True)
class BuiltIn:
    """One built-in design, described once.

    Attributes:
        name: what users pass to ``simulate``/``compare``/``make_design`` and the CLI.
        description: one line for menus and help (:data:`DESIGNS`).
        build: the stack for one run, from the limits and the retry policy in force.
        detail: the description of a design so configured (``trace.meta["description"]``, plot titles).
        retry: the retry policy used unless the caller passes one (called once per run: fresh jitter).
        default_concurrency: ``max_concurrent`` when the caller gives none, for designs that always cap it.
    """

    name: str
    description: str
    build: Callable[[ClientLimits, RetryPolicy], ClientStack]
    detail: Callable[[ClientLimits], str]
    retry: Callable[[], RetryPolicy]
    default_concurrency: int | None = None


def built_in(name: str) -> BuiltIn:
    """The registry entry of a built-in design (``ValueError`` naming the choices for an unknown one)."""
    entry = _BUILT_IN.get(name)
    if entry is None:
        raise ValueError(f"design must be one of {sorted(_BUILT_IN)}, got {name!r}")
    return entry


def make_design(
    name: str,
    *,
    rpm: float | None = None,
    tpm: float | None = None,
    max_concurrent: int | None = None,
    window: float = 60.0,
    retry: RetryPolicy | None = None,
) -> Design:
    """Build one of the named designs (see :data:`DESIGNS`) for the given client-side limits.

    ``rpm``/``tpm``/``max_concurrent`` are what the *client* is configured to; ``window`` the span over
    which it lets a per-minute budget burst (set it to the server's).

    >>> make_design("semaphore", max_concurrent=4)
    <Design 'semaphore': at most 4 in flight, no rate limit; the SDK's default retries>
    """
    entry = built_in(name)
    if max_concurrent is None:
        max_concurrent = entry.default_concurrency
    limits = ClientLimits(rpm, tpm, max_concurrent, window)

    def build() -> ClientStack:
        return entry.build(limits, retry if retry is not None else entry.retry())

    return Design(name, build, entry.detail(limits))


# ---------------------------------------------------------------------------------------------- built-ins
def _sdk_retry() -> RetryPolicy:
    # The official SDKs' defaults: 2 retries, 0.5·2^n s capped at 8 s with up to 25 % jitter, and no
    # shared pause (each request waits on its own).
    return RetryPolicy(max_attempts=3, backoff=OpenAIBackoff(seed=0), pause_on_429=False)


class _HintOrFixed:
    """The article's retry wait: exactly the server's ``retry-after`` if given, else a fixed 5 s."""

    def __init__(self, default: float = 5.0) -> None:
        self.default = default

    def delay(self, attempt: int, hint: float | None = None) -> float:
        return hint if hint is not None else self.default

    def reset(self) -> None:
        return None


def _article_retry() -> RetryPolicy:
    return RetryPolicy(max_attempts=3, backoff=_HintOrFixed(), pause_on_429=False)


def _article_rate(limits: ClientLimits) -> int:
    return int(limits.rpm_or(60))  # the article's class counts whole requests per minute


def _adaptive(limits: ClientLimits, retry: RetryPolicy) -> ClientStack:
    ceiling = limits.rpm_or(600.0)
    # Requests are paced smoothly (a one-second burst at most): a rate the controller lowers must show up
    # in the traffic at once, not after a minute's worth of stored-up burst has drained.
    pacing = TokenBucket(per_minute=ceiling, capacity=max(1.0, ceiling / 60.0), name="adaptive.requests")
    throttler = Throttler(
        limits.max_concurrent, None, limits.tpm, window=limits.window, requests=pacing, name="adaptive"
    )
    # AIMD works per second: start at the ceiling, never below a tenth of it, add back a fiftieth of it
    # per success, halve on a 429 (at most once per 2 s, so one burst of 429s is one cut).
    aimd = AIMD(
        ceiling / 60.0,
        floor=ceiling / 600.0,
        ceiling=ceiling / 60.0,
        increase=ceiling / 60.0 / 50.0,
        decrease=0.5,
        cooldown=2.0,
    )
    aimd.on_change = lambda rate: throttler.set_limits(rpm=rate * 60.0)
    return ClientStack(throttler, retry, aimd=aimd)


_BUILT_IN: Mapping[str, BuiltIn] = {
    entry.name: entry
    for entry in (
        BuiltIn(
            "unthrottled",
            "no limiter at all; retries like the official SDKs",
            build=lambda limits, retry: ClientStack(retry=retry),
            detail=lambda limits: "no limiter; the SDK's default retries",
            retry=_sdk_retry,
        ),
        BuiltIn(
            "semaphore",
            "concurrency only (the article's first snippet)",
            build=lambda limits, retry: ClientStack(
                ConcurrencyLimiter(limits.concurrency, name="semaphore"), retry
            ),
            detail=lambda limits: (
                f"at most {limits.concurrency} in flight, no rate limit; the SDK's default retries"
            ),
            retry=_sdk_retry,
            default_concurrency=10,
        ),
        BuiltIn(
            "article",
            "the article's combined throttler: rate first, then semaphore; sleep retry-after",
            build=lambda limits, retry: ClientStack(
                RateThenSemaphore(limits.concurrency, _article_rate(limits)), retry
            ),
            detail=lambda limits: (
                f"the article's rate-then-semaphore throttler ({_article_rate(limits)}/min, "
                f"{limits.concurrency} at once), each task sleeping out its own retry-after"
            ),
            retry=_article_retry,
            default_concurrency=10,
        ),
        BuiltIn(
            "throttler",
            "throttle_lab.Throttler: one reservation at send time, shared cool-down, backoff",
            build=lambda limits, retry: ClientStack(
                Throttler(limits.max_concurrent, limits.rpm, limits.tpm, window=limits.window), retry
            ),
            detail=lambda limits: (
                f"Throttler(max_concurrent={limits.max_concurrent}, rpm={limits.rpm}, tpm={limits.tpm}, "
                f"window={limits.window:g}) with a shared cool-down and backoff"
            ),
            retry=seeded_retry,
        ),
        BuiltIn(
            "adaptive",
            "a Throttler whose rate AIMD learns from 429s",
            build=_adaptive,
            detail=lambda limits: (
                f"AIMD steering a throttler's rate below {limits.rpm_or(600.0):g}/min: "
                "halve on 429, creep up on success"
            ),
            retry=seeded_retry,
        ),
        BuiltIn(
            "sre",
            "the SRE client-side adaptive throttle",
            build=lambda limits, retry: ClientStack(
                ConcurrencyLimiter(limits.concurrency, name="semaphore"),
                retry,
                client_throttle=ClientSideThrottle(),
            ),
            detail=lambda limits: (
                "the SRE client-side throttle: refuse locally as the server's acceptance ratio falls"
            ),
            retry=_sdk_retry,
            default_concurrency=10,
        ),
    )
}

#: The built-in designs, by name: their one-line descriptions, in the order menus list them.
DESIGNS: Mapping[str, str] = {name: entry.description for name, entry in _BUILT_IN.items()}
