"""The workload: *what* is sent and *when* -- seeded, so the same numbers come back on every run.

A :class:`Workload` is a recipe; :meth:`Workload.items` turns it into the list of :class:`WorkItem` s, one per
request, each with its arrival time (seconds after the start), its prompt and its ``max_tokens``::

    Workload(requests=6, arrival=..., per_minute=60, seed=0).items()

    "burst"    ██████ ........................   all six at t = 0
    "steady"   █ . █ . █ . █ . █ . █ ..........   one every 60/per_minute s
    "poisson"  █ ██ .. █ . ██ .................   random gaps, per_minute on average
    "bursts"   ███ ...... ███ .................   groups of burst_size, per_minute on average

Every random draw comes from one ``random.Random(seed)``, in request order, so two designs raced with
``compare`` meet exactly the same requests, and a lesson's printed numbers never change.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal, get_args

from ...core.validation import check_positive

__all__ = ["Arrival", "WorkItem", "Workload"]

Arrival = Literal["burst", "steady", "poisson", "bursts"]
_ARRIVALS: tuple[str, ...] = get_args(Arrival)
# Prompts are this sentence repeated and cut to length: about 4 characters a token, which is what the mock
# server (and the client's estimate) count.
_FILLER = "the quick brown fox jumps over a lazy dog while rate limits tick "


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One request of a workload: sent ``at`` seconds after the start, with this prompt and ``max_tokens``."""

    request_id: str
    at: float  # seconds after the start
    prompt: str
    max_tokens: int

    def body(self, model: str = "gpt-4o-mini", stream: bool = False) -> dict[str, Any]:
        """The OpenAI chat-completions request body for this item."""
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": self.prompt}],
            "max_tokens": self.max_tokens,
        }
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}  # the final chunk then reports real usage
        return body


@dataclass(frozen=True)
class Workload:
    """Seeded traffic.

    Args:
        requests: how many.
        arrival: ``"burst"`` (all at t=0), ``"steady"`` (evenly at ``per_minute``), ``"poisson"``
            (random gaps averaging ``per_minute``), ``"bursts"`` (groups of ``burst_size``, ``per_minute`` on
            average).
        per_minute: the arrival rate for the non-burst patterns.
        burst_size: requests per group for ``"bursts"``.
        prompt_tokens: (low, high) range of prompt sizes, in tokens (about 4 characters each).
        max_tokens: (low, high) range of ``max_tokens``.
        stream: ask for streamed responses.
        model: the model name sent.
        seed: the same seed gives the same workload.
    """

    requests: int = 200
    arrival: Arrival = "burst"
    per_minute: float = 120.0
    burst_size: int = 20
    prompt_tokens: tuple[int, int] = (20, 200)
    max_tokens: tuple[int, int] = (50, 200)
    stream: bool = False
    model: str = "gpt-4o-mini"
    seed: int = 0

    def __post_init__(self) -> None:
        _check_count("requests", self.requests)
        if self.arrival not in _ARRIVALS:
            raise ValueError(f"arrival must be burst, steady, poisson or bursts, got {self.arrival!r}")
        check_positive("per_minute", self.per_minute)
        _check_count("burst_size", self.burst_size)
        for name in ("prompt_tokens", "max_tokens"):
            low, high = getattr(self, name)
            if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high):
                raise ValueError(f"{name} must be a (low, high) pair of whole numbers with 0 <= low <= high")

    def items(self) -> list[WorkItem]:
        """The requests, in arrival order (the same list for the same seed)."""
        rng = random.Random(self.seed)
        gap = 60.0 / self.per_minute
        items = []
        t = 0.0
        for i in range(self.requests):
            if self.arrival == "burst":
                at = 0.0
            elif self.arrival == "steady":
                at = i * gap
            elif self.arrival == "poisson":
                at = t
                t += rng.expovariate(1.0 / gap)
            else:  # bursts: a group every burst_size gaps
                at = (i // self.burst_size) * self.burst_size * gap
            # Sizes are drawn for every pattern, in this order, so changing the arrival pattern keeps the
            # same prompts and max_tokens -- except "poisson", whose gaps come from the same generator.
            prompt_tokens = rng.randint(*self.prompt_tokens)
            max_tokens = rng.randint(*self.max_tokens)
            items.append(WorkItem(f"req-{i + 1}", at, _prompt_of(prompt_tokens, i), max_tokens))
        return items


def _check_count(name: str, value: object) -> None:
    # Not check_positive(integer=True): that takes 2.0, and range(2.0) would fail later, far from the cause.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")


def _prompt_of(tokens: int, index: int) -> str:
    text = f"Request {index}: " + _FILLER * (tokens * 4 // len(_FILLER) + 1)
    return text[: max(1, tokens * 4)]
