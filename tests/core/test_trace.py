from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from throttle_lab import Event, Trace
from throttle_lab.core.trace import percentile


def ev(
    t: float, kind: str, request: object = None, source: str = "client", weight: float = 1, **detail: object
) -> Event:
    return Event(t, kind, source, request, weight, detail)  # type: ignore[arg-type]


def client_run() -> Trace:
    """Three requests; r2 hits a 429 once and retries; r3 fails."""
    return Trace(
        [
            ev(0.0, "queued", "r1", "throttler"),
            ev(0.0, "granted", "r1", "throttler", waited=0.0),
            ev(0.0, "sent", "r1"),
            ev(0.0, "queued", "r2", "throttler"),
            ev(0.0, "queued", "r3", "throttler"),
            ev(1.0, "response", "r1", status=200),
            ev(1.0, "done", "r1"),
            ev(2.0, "granted", "r2", "throttler", waited=2.0),
            ev(2.0, "sent", "r2"),
            ev(2.5, "429", "r2", status=429),
            ev(2.5, "retry", "r2", delay=1.0),
            ev(3.5, "sent", "r2"),
            ev(4.0, "done", "r2"),
            ev(4.0, "granted", "r3", "throttler", waited=4.0),
            ev(4.0, "sent", "r3"),
            ev(6.0, "failed", "r3"),
        ]
    )


def test_max_in_window_uses_half_open_windows() -> None:
    trace = Trace([ev(t, "granted") for t in (0.0, 0.5, 1.0, 1.0, 1.9, 3.0)])
    # [0.5, 1.5) and [1.0, 2.0) hold 3 each; [0.0, 1.0) holds 2, because 1.0 is already outside it.
    assert trace.max_in_window("granted", 1.0) == 3
    assert trace.max_in_window("granted", 0.5) == 2
    assert trace.max_in_window("granted", 100) == 6
    assert Trace().max_in_window("granted", 1.0) == 0


def test_max_in_window_weighted() -> None:
    trace = Trace(
        [ev(0.0, "granted", weight=300), ev(30.0, "granted", weight=500), ev(60.0, "granted", weight=100)]
    )
    assert trace.max_in_window("granted", 60, weighted=True) == 800
    with pytest.raises(ValueError, match="window"):
        trace.max_in_window("granted", 0)


def test_rolling_counts_samples_the_run() -> None:
    trace = Trace([ev(float(t), "sent") for t in range(10)])
    samples = trace.rolling("sent", window=3.0, step=1.0)
    assert samples == [
        (0.0, 1),
        (1.0, 2),
        (2.0, 3),
        (3.0, 3),
        (4.0, 3),
        (5.0, 3),
        (6.0, 3),
        (7.0, 3),
        (8.0, 3),
        (9.0, 3),
    ]
    assert Trace().rolling("sent") == []


def test_spans_follow_each_request() -> None:
    spans = {s.request: s for s in client_run().spans()}
    assert spans["r1"].outcome == "done" and spans["r1"].wait == 0.0 and spans["r1"].duration == 1.0
    assert spans["r2"].attempts == 2 and spans["r2"].rate_limited == 1 and spans["r2"].retries == 1
    assert spans["r2"].wait == 2.0 and spans["r2"].end == 4.0
    assert spans["r3"].outcome == "failed"


def test_summary_of_a_client_run() -> None:
    summary = client_run().summary(limit_per_minute=30, window=2.0)
    assert (summary.requests, summary.completed, summary.failed, summary.rate_limited, summary.retries) == (
        3,
        2,
        1,
        1,
        1,
    )
    # The run is over when r3 gives up at 6 s, not at the last success (4 s).
    assert summary.makespan == 6.0
    assert summary.achieved_per_minute == 20.0  # 2 completed in 6 s
    # 30/min over 2 s: a burst of 1, then 0.5/s -> 1 x (1 + 6 / 2) = 4 allowed in the makespan; 2 used.
    assert (summary.binding, summary.used, summary.allowed, summary.utilisation) == (
        "requests",
        2.0,
        4.0,
        0.5,
    )
    assert summary.wait_p50 == 2.0 and summary.wait_max == 4.0
    assert (
        "429s 1" in str(summary)
        and "used 2 of the 4 requests a 30/min limit" in str(summary)
        and "50.0%" in str(summary)
    )


def test_makespan_runs_to_the_last_request_to_give_up() -> None:
    # Five successes early, twenty-five failures at 210 s: the run lasted 210 s, not 1.7.
    events = [ev(0.0, "sent", f"ok{i}") for i in range(5)] + [ev(1.7, "done", f"ok{i}") for i in range(5)]
    events += [ev(0.0, "sent", f"lost{i}") for i in range(25)] + [
        ev(210.0, "failed", f"lost{i}") for i in range(25)
    ]
    summary = Trace(sorted(events, key=lambda e: e.t)).summary(60)
    assert summary.makespan == 210.0 and summary.completed == 5 and summary.failed == 25
    assert summary.achieved_per_minute == pytest.approx(5 / 210 * 60)


def test_a_short_burst_is_a_high_rate_but_a_small_share_of_the_limit() -> None:
    # 12 done in 0.39 s against 600/min: 1,846/min achieved, yet 12 of the ~604 the limit allowed.
    trace = Trace(
        [ev(0.0, "sent", f"r{i}") for i in range(12)] + [ev(0.39, "done", f"r{i}") for i in range(12)]
    )
    summary = trace.summary(600)
    assert summary.achieved_per_minute == pytest.approx(12 / 0.39 * 60)
    assert summary.allowed == pytest.approx(600 * (1 + 0.39 / 60))
    assert summary.utilisation is not None and summary.utilisation < 0.025


def test_summary_takes_the_limits_from_the_servers_meta_and_finds_the_binding_one() -> None:
    events = []
    for i in range(10):
        events += [ev(float(i), "sent", f"r{i}"), Event(float(i), "accepted", "server", f"r{i}", 1_000)]
        events.append(ev(i + 0.5, "done", f"r{i}"))
    trace = Trace(events, meta={"server": {"rpm": 60, "tpm": 20_000, "window": 10}})
    summary = trace.summary()
    assert (summary.limit_per_minute, summary.tokens_per_minute, summary.window) == (60.0, 20_000.0, 10.0)
    # 9.5 s: requests 10 of 10 x 1.95 = 19.5; tokens 10,000 of 3,333 x 1.95 = 6,500 -> tokens bind, over 100 %
    assert summary.binding == "tokens" and summary.used == 10_000
    assert summary.utilisation == pytest.approx(10_000 / (20_000 / 6 * (1 + 9.5 / 10)))
    # Explicit limits win over meta; no limit at all gives no utilisation.
    assert trace.summary(30).limit_per_minute == 30.0
    assert Trace(events).summary().utilisation is None


def test_summary_refuses_nonsense_limits() -> None:
    with pytest.raises(ValueError, match="limit_per_minute"):
        client_run().summary(0)
    with pytest.raises(ValueError, match="window"):
        client_run().summary(60, window=-1)


def test_summary_of_bare_limiter_grants() -> None:
    trace = Trace([ev(float(t), "granted", f"r{t}", "bucket", waited=float(t)) for t in range(5)])
    summary = trace.summary(60, window=1.0)
    # 5 grants in 4 s is 75/min, and exactly what 1 per second with a burst of 1 allows (1 + 4).
    assert summary.completed == 5 and summary.makespan == 4.0 and summary.achieved_per_minute == 75.0
    assert summary.utilisation == 1.0
    assert Trace().summary().completed == 0


def test_filters_and_queries() -> None:
    trace = client_run()
    assert trace.count("sent") == 4
    assert trace.filter(kind=["done", "failed"]).count() == 3
    assert trace.filter(source="throttler", request="r2").times() == [0.0, 2.0]
    assert trace.sources == ["throttler", "client"]
    assert trace.requests == ["r1", "r2", "r3"]
    assert (trace.start, trace.end) == (0.0, 6.0)
    assert isinstance(trace[1:3], Trace) and len(trace[1:3]) == 2
    assert "16 events" in repr(trace) and repr(Trace()) == "<Trace: no events>"


def test_merge_and_from_records_adopt_server_records() -> None:
    server = [
        {
            "t": 0.5,
            "kind": "arrived",
            "source": "server",
            "request": "r1",
            "weight": 0,
            "detail": {"model": "m"},
        }
    ]
    merged = Trace.merge(client_run(), Trace.from_records(server))
    assert [e.kind for e in merged][:4] == ["queued", "granted", "sent", "queued"]
    assert merged.filter(source="server")[0].detail["model"] == "m"


def test_exports_round_trip(tmp_path: Path) -> None:
    trace = client_run()
    text = trace.to_json(tmp_path / "t.json")
    assert Trace.from_json(text).rows() == trace.rows()
    assert json.loads((tmp_path / "t.json").read_text())[0]["kind"] == "queued"
    csv_text = trace.to_csv(tmp_path / "t.csv")
    header = csv_text.splitlines()[0].split(",")
    assert header[:5] == ["t", "kind", "source", "request", "weight"] and "detail.status" in header
    assert len(csv_text.splitlines()) == len(trace) + 1
    frame = trace.to_dataframe()
    assert list(frame["kind"])[:3] == ["queued", "granted", "sent"]


def test_percentile() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1], 101)
