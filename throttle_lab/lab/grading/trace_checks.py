"""Grading a recorded run: the promises a trace must show (no window over the limit, no 429s...)."""

from __future__ import annotations

from ...core.trace import Trace
from .report import Report


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

    ``min_utilisation`` asks for at least that fraction of the binding limit in steady state (after the
    first ``window``).
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
    # The server enforces its limits itself (that is what the 429s are); what the client controls is how
    # much of them it uses.  Measure after the first window, once any stored-up burst is spent.
    ratios = []
    steady = [e for e in accepted if e.t >= window]
    duration = steady[-1].t - window if len(steady) > 1 else 0.0
    for limit, weighted in ((rpm, False), (tpm, True)):
        if limit is not None and duration > 0:
            amount = sum(e.weight for e in steady) if weighted else len(steady)
            ratios.append(amount / duration * 60.0 / limit)
    if min_utilisation is not None:
        if rpm is None and tpm is None:
            raise ValueError("min_utilisation needs the limits: pass rpm= and/or tpm=")
        if not ratios:
            report.add(
                f"at least {min_utilisation:.0%} of the binding limit",
                False,
                f"nothing accepted after the first {window:g} s to measure",
                "the run must last well past the first minute to measure a steady rate",
            )
            return report
        best = max(ratios)
        report.add(
            f"at least {min_utilisation:.0%} of the binding limit",
            best >= min_utilisation,
            f"{best:.1%} in steady state",
            "you are leaving capacity unused: wait less, or exactly as long as needed",
        )
    return report
