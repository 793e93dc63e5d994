"""Trace: an ordered list of events, and the questions plots and graders ask of it.

A trace is what :func:`throttle_lab.record` hands you.  It answers questions *about time*::

    trace.max_in_window("granted", 60)   # the most grants in any 60 s span -- over the limit?
    trace.rolling("sent", 60)            # requests per minute, sampled through the run, for a plot
    trace.spans()                        # per request: when it queued, got through, was sent, finished
    trace.summary(limit_per_minute=60)   # completed, 429s, retries, makespan, achieved rate, wait p50/p99

and exports to rows, CSV, JSON or a pandas DataFrame.  Windows are half-open, ``[t, t + window)``, the
same convention the limiters use: a grant at ``t = 0`` and one at ``t = 60`` are in different minutes.

>>> from throttle_lab import Event, Trace
>>> trace = Trace([Event(0.0, "granted", "demo", 1), Event(30.0, "granted", "demo", 2),
...                Event(60.0, "granted", "demo", 3)])
>>> trace.max_in_window("granted", 60)
2
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import math
import operator
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, overload

from .events import Event, Kind

__all__ = ["Span", "Summary", "Trace", "percentile"]

_END_KINDS = {Kind.DONE, Kind.FAILED, Kind.CANCELLED, Kind.REJECTED}
_time_of = operator.attrgetter("t")  # a sort key; cheaper than a lambda over a whole run's events


def _number(value: object) -> float | None:
    """A limit from ``meta`` as a float, or ``None`` (absent, ``None``, a bool, not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; ``nan`` for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"q must be between 0 and 100, got {q!r}")
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True, slots=True)
class Span:
    """One request's life, as the trace saw it.  Times are ``None`` when that step never happened."""

    request: Hashable
    start: float  # first event about it
    granted: float | None  # first grant by a limiter
    sent: float | None  # first attempt sent
    end: float | None  # done / failed / cancelled / rejected
    outcome: str  # "done", "failed", "cancelled", "rejected" or "open"
    attempts: int  # attempts sent
    rate_limited: int  # 429 answers
    retries: int

    @property
    def wait(self) -> float | None:
        """Time from first appearance to first grant (or first send)."""
        through = self.granted if self.granted is not None else self.sent
        return None if through is None else through - self.start

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


@dataclass(frozen=True, slots=True)
class Summary:
    """The headline numbers of a run, each defined once (see :meth:`Trace.summary`).

    ``makespan``
        From the trace's first event (the first arrival) to the moment the last request *finished*,
        completed or given up.  A run whose last 25 requests fail at 210 s has a makespan of 210 s, even
        if its last success came at 1.7 s.
    ``achieved_per_minute``
        Completed requests per minute of makespan: 12 done in 0.39 s is 1,846/min.  It is a fact about
        the run, not about the limit: over a span shorter than the limit's window it includes the burst
        the limit lets through at the start, so it can be far above the per-minute limit without any
        limit being broken.
    ``utilisation``
        The share of what the *binding* limit allowed over the makespan that the run used.  A limit of
        ``L`` per ``window`` seconds lets at most ``L × (1 + makespan / window)`` through in the makespan
        (a full window's worth at the start, then its steady rate), so against a server that keeps its
        limit this is at most 100 %; a run that stayed well behind the limit shows how much it left
        unused.  Requests count completions; tokens count what the server charged for the requests
        that completed.  ``None`` when no limit is known.

    ``allowed`` and ``used`` are the two sides of the binding limit's share, in ``binding`` units
    (``"requests"`` or ``"tokens"``).
    """

    requests: int
    completed: int
    failed: int
    rejected: int
    rate_limited: int
    retries: int
    makespan: float
    achieved_per_minute: float
    limit_per_minute: float | None
    utilisation: float | None  # used / allowed, for the binding limit
    wait_p50: float
    wait_p90: float
    wait_p99: float
    wait_max: float
    tokens_per_minute: float | None = None
    window: float = 60.0
    binding: str | None = None  # "requests" or "tokens": the limit the utilisation is about
    used: float | None = None
    allowed: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        lines = [
            f"requests {self.requests}: completed {self.completed}, failed {self.failed}, "
            f"rejected {self.rejected}; 429s {self.rate_limited}, retries {self.retries}",
            f"makespan {self.makespan:.2f} s, achieved {self.achieved_per_minute:.1f}/min",
        ]
        if self.utilisation is not None and self.used is not None and self.allowed is not None:
            limit = self.limit_per_minute if self.binding == "requests" else self.tokens_per_minute
            unit = "requests" if self.binding == "requests" else "tokens"
            lines.append(
                f"utilisation {self.utilisation:.1%}: used {self.used:,.0f} of the "
                f"{self.allowed:,.0f} {unit} a {limit:,g}/min limit ({self.window:g} s window) "
                f"allows in {self.makespan:.2f} s"
            )
        lines.append(
            f"wait p50 {self.wait_p50:.2f} s, p90 {self.wait_p90:.2f} s, p99 {self.wait_p99:.2f} s, "
            f"max {self.wait_max:.2f} s"
        )
        return "\n".join(lines)


def allowed_by_limit(per_minute: float, window: float, span: float) -> float:
    """The most a limit of ``per_minute`` (enforced over ``window`` seconds) lets through in ``span`` s.

    A window's worth at once, then the steady rate: ``per_minute × window / 60 × (1 + span / window)``.
    That is exact for a token bucket that starts full (capacity one window's worth) and an upper bound
    for a sliding window; a fixed window can let twice its limit through across a boundary, which is
    why lesson 04 calls that a flaw.

    >>> allowed_by_limit(60, 60, 120)  # a bucket of 60 at once, then 1 a second for two minutes
    180.0
    >>> allowed_by_limit(60, 10, 120)  # the same rate enforced over 10 s: a burst of only 10
    130.0
    """
    if not per_minute > 0 or not window > 0 or not span >= 0:
        raise ValueError(
            f"need a positive limit and window and a span >= 0, got {per_minute!r}/min, "
            f"window {window!r} s, span {span!r} s"
        )
    return per_minute * window / 60.0 * (1.0 + span / window)


class Trace(Sequence[Event]):
    """Events in the order they were recorded (which, on one loop, is time order).

    ``meta`` is a free-form dict describing the run (experiments put the design, the server's limits and
    the workload there, so plots can title themselves and draw limit lines).
    """

    def __init__(self, events: Iterable[Event] = (), meta: Mapping[str, Any] | None = None) -> None:
        self._events: list[Event] = list(events)
        self.meta: dict[str, Any] = dict(meta) if meta else {}

    # -- a sequence --------------------------------------------------------------------------------
    def append(self, event: Event) -> None:
        self._events.append(event)

    def extend(self, events: Iterable[Event]) -> None:
        self._events.extend(events)

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    @overload
    def __getitem__(self, index: int) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> Trace: ...
    def __getitem__(self, index: int | slice) -> Event | Trace:
        if isinstance(index, slice):
            return Trace(self._events[index], self.meta)
        return self._events[index]

    def __repr__(self) -> str:
        if not self._events:
            return "<Trace: no events>"
        kinds: dict[str, int] = {}
        for event in self._events:
            kinds[event.kind] = kinds.get(event.kind, 0) + 1
        counts = ", ".join(f"{kind} {n}" for kind, n in kinds.items())
        return f"<Trace {len(self)} events, t={self.start:g}..{self.end:g}: {counts}>"

    # -- building ----------------------------------------------------------------------------------
    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> Trace:
        """Adopt plain records (e.g. the mock server's ``app.events``) with Event's field names."""
        events = [
            Event(
                float(record["t"]),
                str(record["kind"]),
                str(record.get("source", "server")),
                record.get("request"),
                record.get("weight", 1),
                dict(record.get("detail") or ()),
            )
            for record in records
        ]
        return cls(events)

    @classmethod
    def merge(cls, *traces: Iterable[Event]) -> Trace:
        """One trace holding all events of several, in time order (stable for equal times)."""
        merged = [event for trace in traces for event in trace]
        merged.sort(key=_time_of)  # stable: equal times keep the order of the traces given
        return cls(merged)

    # -- selecting ---------------------------------------------------------------------------------
    def filter(
        self,
        kind: str | Iterable[str] | None = None,
        source: str | Iterable[str] | None = None,
        request: Hashable | None = None,
    ) -> Trace:
        """The events matching every given criterion (kinds and sources may be one or several)."""
        kinds = {kind} if isinstance(kind, str) else set(kind) if kind is not None else None
        sources = {source} if isinstance(source, str) else set(source) if source is not None else None
        return Trace(
            (
                event
                for event in self._events
                if (kinds is None or event.kind in kinds)
                and (sources is None or event.source in sources)
                and (request is None or event.request == request)
            ),
            self.meta,
        )

    def of_kind(self, *kinds: str) -> Trace:
        """Shorthand for ``filter(kind=kinds)``."""
        return self.filter(kind=kinds)

    def times(self, kind: str | None = None, source: str | None = None) -> list[float]:
        return [event.t for event in self.filter(kind, source)]

    def count(self, kind: str | None = None, source: str | None = None) -> int:
        return len(self.filter(kind, source))

    @property
    def sources(self) -> list[str]:
        return list(dict.fromkeys(event.source for event in self._events))

    @property
    def requests(self) -> list[Hashable]:
        return list(dict.fromkeys(event.request for event in self._events if event.request is not None))

    @property
    def start(self) -> float:
        return min((event.t for event in self._events), default=math.nan)

    @property
    def end(self) -> float:
        return max((event.t for event in self._events), default=math.nan)

    # -- questions about time ----------------------------------------------------------------------
    def max_in_window(
        self, kind: str, window: float, *, source: str | None = None, weighted: bool = False
    ) -> float:
        """The most events of ``kind`` (or their summed weight) in any half-open span ``[t, t + window)``.

        This is the question "was the limit ever exceeded?" asked exactly: the busiest window always
        starts at an event, so it checks every event as a window start.
        """
        if not window > 0:
            raise ValueError(f"window must be positive, got {window!r}")
        events = sorted(self.filter(kind, source), key=_time_of)
        best = 0.0
        total = 0.0
        left = 0
        for event in events:
            total += event.weight if weighted else 1
            # Same comparison as the limiters' expiry: an event at t0 has left the window once t0 + W <= t.
            while events[left].t + window <= event.t:
                total -= events[left].weight if weighted else 1
                left += 1
            best = max(best, total)
        return best if weighted else int(best)

    def rolling(
        self,
        kind: str,
        window: float = 60.0,
        *,
        source: str | None = None,
        weighted: bool = False,
        step: float | None = None,
    ) -> list[tuple[float, float]]:
        """Samples ``(t, amount in (t - window, t])`` from the first to the last event, every ``step``.

        The default ``step`` gives about 200 samples: enough for a smooth "requests per minute" line.
        """
        if not window > 0:
            raise ValueError(f"window must be positive, got {window!r}")
        events = sorted(self.filter(kind, source), key=_time_of)
        if not events:
            return []
        times = [event.t for event in events]
        cumulative = [0.0]
        for event in events:
            cumulative.append(cumulative[-1] + (event.weight if weighted else 1))
        first, last = times[0], times[-1]
        if step is None:
            step = max((last - first) / 200.0, 1e-9)
        elif not step > 0:
            raise ValueError(f"step must be positive, got {step!r}")
        samples = []
        n = max(0, math.ceil((last - first) / step)) + 1
        for i in range(n):
            t = min(first + i * step, last)
            upto = bisect.bisect_right(times, t)
            after = bisect.bisect_right(times, t - window)
            samples.append((t, cumulative[upto] - cumulative[after]))
        return samples

    def spans(self) -> list[Span]:
        """One :class:`Span` per request id, in order of first appearance."""
        building: dict[Hashable, dict[str, Any]] = {}
        for event in self._events:
            if event.request is None:
                continue
            span = building.get(event.request)
            if span is None:
                span = building[event.request] = {
                    "request": event.request,
                    "start": event.t,
                    "granted": None,
                    "sent": None,
                    "end": None,
                    "outcome": "open",
                    "attempts": 0,
                    "rate_limited": 0,
                    "retries": 0,
                }
            kind = event.kind
            if kind == Kind.GRANTED and span["granted"] is None:
                span["granted"] = event.t
            elif kind == Kind.SENT:
                span["attempts"] += 1
                if span["sent"] is None:
                    span["sent"] = event.t
            elif kind == Kind.HTTP_429:
                span["rate_limited"] += 1
            elif kind == Kind.RETRY:
                span["retries"] += 1
            elif kind in _END_KINDS and event.source != "server":
                span["end"] = event.t
                span["outcome"] = str(kind)
        return [Span(**fields) for fields in building.values()]

    def summary(
        self,
        limit_per_minute: float | None = None,
        *,
        tokens_per_minute: float | None = None,
        window: float | None = None,
    ) -> Summary:
        """Headline numbers: counts, makespan, achieved rate, utilisation of the binding limit, waits.

        Every figure is defined once, in :class:`Summary`.  The limits default to the server's, from
        ``meta["server"]`` (``rpm``, ``tpm``, ``window``: what the experiments record); pass them to
        measure against another limit.  "Completed" counts ``done`` events; a trace of bare limiters (no
        client) counts grants instead, and its makespan runs to its last event (a release, say).

        >>> from throttle_lab import Event, Trace
        >>> run = Trace([Event(0.0, "sent", "client", "a"), Event(0.0, "sent", "client", "b"),
        ...              Event(1.0, "done", "client", "a"), Event(2.0, "failed", "client", "b")],
        ...             meta={"server": {"rpm": 60, "window": 10}})
        >>> s = run.summary()
        >>> s.makespan, s.achieved_per_minute, s.allowed, s.utilisation   # 1 done; 10 + 2 allowed
        (2.0, 30.0, 12.0, 0.08333333333333333)
        """
        server = self.meta.get("server")
        server = server if isinstance(server, Mapping) else {}
        if limit_per_minute is None:
            limit_per_minute = _number(server.get("rpm"))
        if tokens_per_minute is None:
            tokens_per_minute = _number(server.get("tpm"))
        if window is None:
            window = _number(server.get("window")) or 60.0
        for name, value in (("limit_per_minute", limit_per_minute), ("tokens_per_minute", tokens_per_minute)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive (or None for no limit), got {value!r}")
        if not window > 0:
            raise ValueError(f"window must be positive, got {window!r}")

        done = self.filter(Kind.DONE)
        client_trace = len(done) > 0 or self.count(Kind.SENT) > 0
        finished = done if client_trace else self.filter(Kind.GRANTED)
        completed = len(finished)
        start = self.start if self._events else 0.0
        # Finished = completed or given up: a run is not over while requests are still failing.  Bare
        # limiters say no more than when they granted and released, so their run ends at the last event.
        endings = self.filter((Kind.DONE, Kind.FAILED)) if client_trace else self
        makespan = max(0.0, max(e.t for e in endings) - start) if completed and len(endings) else 0.0
        achieved = completed / makespan * 60.0 if makespan > 0 else 0.0

        shares: list[tuple[float, str, float, float]] = []
        if completed and limit_per_minute is not None:
            allowed = allowed_by_limit(limit_per_minute, window, makespan)
            shares.append((completed / allowed, "requests", float(completed), allowed))
        tokens = self._tokens_completed(finished) if completed and tokens_per_minute is not None else None
        if tokens is not None and tokens_per_minute is not None:
            allowed = allowed_by_limit(tokens_per_minute, window, makespan)
            shares.append((tokens / allowed, "tokens", tokens, allowed))
        binding = max(shares) if shares else None
        if binding is None and limit_per_minute is not None:
            binding = (0.0, "requests", 0.0, allowed_by_limit(limit_per_minute, window, makespan))

        waits = [
            float(event.detail["waited"]) for event in self.filter(Kind.GRANTED) if "waited" in event.detail
        ]
        if client_trace:
            span_waits = [span.wait for span in self.spans() if span.wait is not None]
            waits = [w for w in span_waits if w is not None] or waits
        ids = self.requests
        return Summary(
            requests=len(ids) if ids else completed,
            completed=completed,
            failed=self.count(Kind.FAILED),
            rejected=len([e for e in self.filter(Kind.REJECTED) if e.source != "server"]),
            rate_limited=self.count(Kind.HTTP_429),
            retries=self.count(Kind.RETRY),
            makespan=makespan,
            achieved_per_minute=achieved,
            limit_per_minute=limit_per_minute,
            utilisation=None if binding is None else binding[0],
            wait_p50=percentile(waits, 50) if waits else 0.0,
            wait_p90=percentile(waits, 90) if waits else 0.0,
            wait_p99=percentile(waits, 99) if waits else 0.0,
            wait_max=max(waits) if waits else 0.0,
            tokens_per_minute=tokens_per_minute,
            window=window,
            binding=None if binding is None else binding[1],
            used=None if binding is None else binding[2],
            allowed=None if binding is None else binding[3],
        )

    def _tokens_completed(self, finished: Trace) -> float | None:
        """Tokens the server charged for the requests that completed (``None``: no server events).

        A request tried several times was charged at each admission; every charge counts, since each
        one used the budget.
        """
        accepted = self.filter(Kind.ACCEPTED, source="server")
        if not len(accepted):
            return None
        completed = {event.request for event in finished}
        return float(sum(event.weight for event in accepted if event.request in completed))

    # -- export ------------------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """One flat dict per event (detail keys prefixed ``detail.``)."""
        return [event.as_row() for event in self._events]

    def to_csv(self, path: str | Path | None = None) -> str:
        """CSV text with one column per field and per detail key seen; also written to ``path`` if given."""
        rows = self.rows()
        columns = ["t", "kind", "source", "request", "weight"]
        for row in rows:
            for key in row:
                if key not in columns:
                    columns.append(key)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_json(self, path: str | Path | None = None) -> str:
        """A JSON list of events (``detail`` kept as an object); also written to ``path`` if given."""
        payload = [
            {
                "t": e.t,
                "kind": e.kind,
                "source": e.source,
                "request": e.request,
                "weight": e.weight,
                "detail": dict(e.detail),
            }
            for e in self._events
        ]
        text = json.dumps(payload, default=str)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, text: str) -> Trace:
        """The inverse of :meth:`to_json`."""
        return cls.from_records(json.loads(text))

    def to_dataframe(self) -> Any:
        """A pandas DataFrame, one row per event.  Needs pandas (``pip install throttle-lab[lessons]``)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("to_dataframe() needs pandas: pip install 'throttle-lab[lessons]'") from exc
        return pd.DataFrame(self.rows())
