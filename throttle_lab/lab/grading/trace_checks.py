"""Grading a recorded run: the promises a trace must show (no window over the limit, no 429s...)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass

from ...core.events import Event
from ...core.trace import Trace
from .report import Report

__all__ = ["TokenCharge", "check_trace", "token_charges"]


def check_trace(
    trace: Trace | None,
    *,
    rpm: float | None = None,
    tpm: float | None = None,
    max_429s: int = 0,
    min_utilisation: float | None = None,
    window: float = 60.0,
) -> Report:
    """Grade a run by what the *server* saw: no 429s (or at most ``max_429s``), limits kept, rate achieved.

    ``min_utilisation`` asks for at least that share of what the binding limit allowed over the run (the
    utilisation :meth:`Trace.summary <throttle_lab.core.trace.Trace.summary>` defines; ``window`` is the
    server's enforcement window).
    """
    title = "check_trace"
    if trace is None:
        return Report(title, attempted=False, note="run your experiment and pass its trace.")
    report = Report(title)
    limited = (
        trace.filter(kind="429", source="client").count()
        or trace.filter(kind="limited", source="server").count()
    )
    report.add(
        f"at most {max_429s} 429s",
        limited <= max_429s,
        f"{limited} 429s",
        "reserve capacity before sending, and honour retry-after across all tasks",
    )
    accepted = trace.filter(kind="accepted", source="server")
    if not len(accepted):
        report.add("the server accepted requests", False, "none", "did your code send anything?")
        return report
    if min_utilisation is not None:
        if rpm is None and tpm is None:
            raise ValueError("min_utilisation needs the limits: pass rpm= and/or tpm=")
        # The one definition of utilisation (Trace.summary): what the run completed, as a share of what
        # the binding limit allowed over the makespan (a window's worth at the start, then its rate).
        # Against a server that keeps its limits it cannot pass 100 %, so a figure above it is a breach.
        summary = trace.summary(rpm, tokens_per_minute=tpm, window=window)
        share = summary.utilisation or 0.0
        over = share > 1.0 + 1e-9
        report.add(
            f"at least {min_utilisation:.0%} of the binding limit",
            min_utilisation <= share and not over,
            f"{share:.1%} of the {summary.binding or 'requests'} it allowed"
            + (" -- more than it allows: the limit was broken" if over else ""),
            "the limit was broken: keep every window under it"
            if over
            else "you are leaving capacity unused: wait less, or exactly as long as needed",
        )
    return report


@dataclass(frozen=True, slots=True)
class TokenCharge:
    """One request's tokens, as the client's limiter booked them and as the server charged them."""

    request: Hashable
    reserved: float
    """What the limiter took when it granted the attempt the server admitted (the estimate)."""
    booked: float
    """What it holds in the end: ``reserved`` plus any reconciling (``adjusted`` events) after that grant."""
    charged: float
    """What the server took at admission (its ``accepted`` event's weight)."""
    prompt_tokens: float
    max_tokens: float
    total_tokens: float | None
    """The ``usage.total_tokens`` the server answered with (None if it never completed)."""


def token_charges(trace: Trace, *, limiter: str = "throttler") -> list[TokenCharge]:
    """Line up, request by request, the tokens ``limiter`` booked with those the server charged.

    Only requests the server admitted count; for a request tried several times, the grant that counts is
    the last one before its admission.  A grader reads the mistakes from the differences: nothing
    reserved, an estimate short of ``prompt + max_tokens``, or a reconcile down to ``total_tokens``.
    """
    grants: dict[Hashable, list[Event]] = defaultdict(list)
    adjustments: dict[Hashable, list[Event]] = defaultdict(list)
    for event in trace.filter(kind=("granted", "adjusted"), source=limiter):
        (grants if event.kind == "granted" else adjustments)[event.request].append(event)
    usage = {e.request: e.detail.get("total_tokens") for e in trace.filter(kind="completed", source="server")}
    charges = []
    for accepted in trace.filter(kind="accepted", source="server"):
        request = accepted.request
        before = [g for g in grants.get(request, ()) if g.t <= accepted.t + 1e-9]
        if not before:
            continue  # not sent through this limiter (another client on the key)
        grant = before[-1]
        adjusted = sum(a.weight for a in adjustments.get(request, ()) if a.t >= grant.t - 1e-9)
        total = usage.get(request)
        charges.append(
            TokenCharge(
                request,
                grant.weight,
                grant.weight + adjusted,
                accepted.weight,
                float(accepted.detail.get("prompt_tokens") or 0),
                float(accepted.detail.get("max_tokens") or 0),
                float(total) if total is not None else None,
            )
        )
    return charges
