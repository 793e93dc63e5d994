"""Experiments on virtual time, and the acceptance figures of the client side (issue 4)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mock_server import ServerConfig
from throttle_lab import RetryPolicy, Trace, run
from throttle_lab.lab.experiments import (
    DESIGNS,
    ClientStack,
    Comparison,
    Design,
    DesignParts,
    Workload,
    compare,
    make_design,
    simulate,
)
from throttle_lab.lab.experiments.designs import built_in


def server_view(trace: Trace, kind: str = "accepted") -> Trace:
    return trace.filter(kind=kind, source="server")


def test_throttler_at_the_servers_limits_gets_no_429s_at_full_rate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = ServerConfig(rpm=60)
    workload = Workload(requests=300)
    trace = simulate("throttler", workload, server)
    summary = trace.summary(limit_per_minute=60)
    assert summary.rate_limited == 0 and summary.completed == 300
    sent = trace.filter(kind="sent", source="client").times()
    # The bucket's 60 go at once, then exactly one per second: the 300th is sent at 240 s, the ideal.
    assert sent[59] == 0.0 and sent[-1] == 240.0
    steady = [t for t in sent if t >= 60.0]
    achieved = len(steady) / (sent[-1] - 60.0) * 60.0
    assert achieved >= 0.99 * 60
    # The article's design on the same traffic, for the record.
    article = simulate("article", workload, server).summary(limit_per_minute=60)
    with capsys.disabled():
        print(
            f"\n[acceptance] 60 RPM, 300 at once: throttler 429s=0, "
            f"achieved {achieved:.1f}/min in steady state;"
            f" article design 429s={article.rate_limited}, completed {article.completed}"
        )


def test_rpm_and_tpm_with_mixed_sizes_no_429s_and_95_percent_of_the_binding_limit() -> None:
    server = ServerConfig(rpm=120, tpm=20_000)
    trace = simulate(
        "throttler", Workload(requests=300, prompt_tokens=(50, 1000), max_tokens=(50, 300)), server
    )
    assert trace.summary().rate_limited == 0
    accepted = server_view(trace)
    assert len(accepted) == 300
    # Tokens bind here (about 28 requests a minute fit in 20,000 tokens): measure tokens per minute after
    # the first minute's burst.
    steady = [e for e in accepted if e.t >= 60.0]
    tokens_per_minute = sum(e.weight for e in steady) / (accepted[-1].t - 60.0) * 60.0
    assert tokens_per_minute >= 0.95 * 20_000
    requests_per_minute = len(steady) / (accepted[-1].t - 60.0) * 60.0
    assert requests_per_minute < 0.5 * 120  # confirms requests were not the binding limit


def test_the_article_design_hits_429s_when_tokens_bind() -> None:
    server = ServerConfig(rpm=120, tpm=20_000)
    summary = simulate(
        "article", Workload(requests=300, prompt_tokens=(50, 1000), max_tokens=(50, 300)), server
    ).summary()
    assert summary.rate_limited > 100  # it knows nothing of tokens


def test_adaptive_throttler_recovers_from_a_brownout(capsys: pytest.CaptureFixture[str]) -> None:
    server = ServerConfig.preset("brownout")  # 120 RPM; 30 RPM from t=30 s to t=90 s; then 120 again
    workload = Workload(requests=400, arrival="steady", per_minute=100)
    trace = simulate("adaptive", workload, server)
    summary = trace.summary()
    assert summary.completed == 400 and summary.failed == 0
    limited = trace.filter(kind="429", source="client").times()
    assert limited, "the brownout must be felt"
    recovery = limited[-1] - limited[0]
    assert recovery <= 60.0  # from the first 429 to the last one
    assert len(limited) <= 10
    accepted_in_brownout = [t for t in server_view(trace).times() if 60.0 <= t < 90.0]
    assert len(accepted_in_brownout) <= 30 * 0.5 + 2  # at most the server's 30/min over those 30 s
    fixed = simulate("unthrottled", workload, server).summary()
    assert fixed.rate_limited > 3 * len(limited)
    with capsys.disabled():
        print(
            f"\n[acceptance] brownout: adaptive 429s={len(limited)}, first at {limited[0]:.1f} s, last at "
            f"{limited[-1]:.1f} s (recovered in {recovery:.1f} s); unthrottled 429s={fixed.rate_limited}"
        )


def test_same_seed_same_trace() -> None:
    workload = Workload(requests=80, arrival="poisson", per_minute=90, seed=3)
    server = ServerConfig(rpm=40, tpm=8_000, seed=3)
    first = simulate("throttler", workload, server)
    second = simulate("throttler", workload, server)
    assert first.rows() == second.rows()
    other = simulate("throttler", Workload(requests=80, arrival="poisson", per_minute=90, seed=4), server)
    assert other.rows() != first.rows()


def test_same_seed_same_trace_across_processes() -> None:
    code = (
        "from mock_server import ServerConfig\n"
        "from throttle_lab.lab.experiments import simulate, Workload\n"
        "w = Workload(requests=60, arrival='poisson', seed=1)\n"
        "t = simulate('adaptive', w, ServerConfig(rpm=30, seed=1))\n"
        "print(t.to_json())"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1


def test_workload_patterns() -> None:
    assert {item.at for item in Workload(requests=5).items()} == {0.0}
    assert [item.at for item in Workload(requests=3, arrival="steady", per_minute=30).items()] == [
        0.0,
        2.0,
        4.0,
    ]
    bursts = [item.at for item in Workload(requests=6, arrival="bursts", per_minute=60, burst_size=3).items()]
    assert bursts == [0.0, 0.0, 0.0, 3.0, 3.0, 3.0]
    poisson = [item.at for item in Workload(requests=200, arrival="poisson", per_minute=60, seed=1).items()]
    assert poisson == sorted(poisson) and 150 < poisson[-1] < 250
    items = Workload(requests=50, prompt_tokens=(10, 20), max_tokens=(5, 6)).items()
    assert all(40 <= len(item.prompt) <= 80 and item.max_tokens in (5, 6) for item in items)
    assert items == Workload(requests=50, prompt_tokens=(10, 20), max_tokens=(5, 6)).items()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"requests": 0}, "requests"),
        ({"requests": 2.0}, "requests"),
        ({"per_minute": float("nan")}, "per_minute"),
        ({"arrival": "sometimes"}, "arrival"),
        ({"per_minute": -1}, "per_minute"),
        ({"burst_size": 0}, "burst_size"),
        ({"prompt_tokens": (5, 1)}, "prompt_tokens"),
    ],
)
def test_workload_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Workload(**kwargs)  # type: ignore[arg-type]


def test_unknown_design_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="design must be one of"):
        make_design("magic")


def test_each_built_in_design_is_described_once_in_the_registry() -> None:
    # DESIGNS (menus, the CLI) and make_design read the same entries, in the same order.
    assert list(DESIGNS) == ["unthrottled", "semaphore", "article", "throttler", "adaptive", "sre"]
    for name, description in DESIGNS.items():
        entry = built_in(name)
        assert entry.name == name and entry.description == description
        assert make_design(name).name == name
    # A design that always caps concurrency takes its default from its entry, and the trace says so.
    assert [name for name in DESIGNS if built_in(name).default_concurrency] == ["semaphore", "article", "sre"]
    assert "at most 10 in flight" in make_design("semaphore").description
    assert "at most 3 in flight" in make_design("semaphore", max_concurrent=3).description
    trace = simulate("sre", Workload(requests=5), ServerConfig(rpm=30))
    assert trace.meta["client"] == {"rpm": 30, "tpm": None, "window": 60.0, "max_concurrent": 10}
    assert simulate("throttler", Workload(requests=5)).meta["client"]["max_concurrent"] is None


def test_design_parts_is_the_old_name_of_client_stack() -> None:
    assert DesignParts is ClientStack

    async def build() -> ClientStack:
        return make_design("adaptive").build()  # inside a loop, as a run builds it

    stack = run(build())
    assert isinstance(stack, DesignParts) and stack.aimd is not None and stack.retry is not None


def test_compare_races_designs_on_the_same_traffic() -> None:
    result = compare(
        ["semaphore", "article", "throttler"], Workload(requests=100), ServerConfig(rpm=30, window=10)
    )
    assert isinstance(result, Comparison) and list(result.traces) == ["semaphore", "article", "throttler"]
    assert result.summaries["throttler"].rate_limited == 0
    assert result.summaries["semaphore"].rate_limited > 0
    table = result.table()
    assert table.splitlines()[0].startswith("design") and "throttler" in table
    arrivals = {
        name: sorted(e.request for e in trace.filter(kind="arrived", source="server"))
        for name, trace in result.traces.items()
    }
    assert {r for r in arrivals["throttler"]} == {r for r in arrivals["article"]}


def test_custom_design_from_any_limiter_and_streaming() -> None:
    from throttle_lab import GCRA

    design = Design(
        "gcra", lambda: ClientStack(GCRA(per_minute=30, burst=5), RetryPolicy()), "GCRA at 30/min"
    )
    trace = simulate(design, Workload(requests=20, stream=True), ServerConfig(rpm=30, window=10))
    summary = trace.summary()
    assert summary.completed == 20 and summary.rate_limited == 0
    assert trace.filter(kind="sent", source="client").times()[5] == 2.0  # burst of 5, then every 2 s


def test_every_named_design_runs() -> None:
    for name in DESIGNS:
        trace = simulate(name, Workload(requests=20), ServerConfig(rpm=30, tpm=10_000))
        assert trace.summary().completed + trace.summary().failed == 20, name


def test_an_impossible_request_is_rejected_locally_not_sent() -> None:
    trace = simulate(
        "throttler", Workload(requests=3, max_tokens=(5000, 5000)), ServerConfig(rpm=30, tpm=1000)
    )
    assert trace.count("rejected") == 3 and trace.filter(source="server").count() == 0


@pytest.mark.server
def test_live_mode_against_the_real_http_server() -> None:
    from throttle_lab.lab.experiments import live

    seen: list[tuple[int, int]] = []
    server = ServerConfig(rpm=600, window=1, ttft=0.05, per_token=0.0, jitter=0.0)  # a bucket of 10, 10/s
    # Over a real network the server sees requests a little later and less evenly than they were sent,
    # so the client keeps 10 % headroom: 9 at once, then 9 per second.
    trace = live(
        "throttler",
        Workload(requests=25),
        server,
        rpm=540,
        progress=lambda done, total: seen.append((done, total)),
    )
    summary = trace.summary()
    assert summary.completed == 25 and summary.rate_limited == 0
    assert seen[-1] == (25, 25)
    assert trace.meta["mode"] == "live"
    sent = trace.filter(kind="sent", source="client").times()
    assert 1.5 <= sent[-1] - sent[0] <= 3.0  # 9 at once, then 16 more at 9/s: about 1.8 s of real time
    # The server's own events came back over HTTP, on the client's clock.
    arrived = {e.request: e.t for e in trace.filter(kind="arrived", source="server")}
    assert set(arrived) == {f"req-{i}" for i in range(1, 26)}
    first_sent = {e.request: e.t for e in trace.filter(kind="sent", source="client")}
    assert all(abs(arrived[r] - first_sent[r]) < 0.25 for r in arrived)


@pytest.mark.parametrize(
    ("design", "workload", "server"),
    [
        ("unthrottled", Workload(requests=60, seed=3), {"rpm": 20, "window": 10}),  # mostly 429s
        ("sre", Workload(requests=40, seed=1), {"rpm": 20, "window": 10}),  # refused locally, too
        ("throttler", Workload(requests=30, seed=2, stream=True), {"rpm": 30, "tpm": 20_000, "window": 10}),
    ],
)
def test_in_process_transport_runs_what_asgi_transport_runs(
    monkeypatch: pytest.MonkeyPatch, design: str, workload: Workload, server: dict[str, float]
) -> None:
    """simulate's leaner transport gives the same run as httpx.ASGITransport, event for event."""
    import httpx

    from throttle_lab.lab.experiments import simulation

    lean = simulate(design, workload, server)
    monkeypatch.setattr(simulation, "InProcessTransport", lambda app: httpx.ASGITransport(app=app))
    reference = simulate(design, workload, server)
    assert lean.rows() == reference.rows()
    assert lean.meta == reference.meta
