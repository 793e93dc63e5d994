"""The summary's figures mean what they say on real runs against the mock server (issue #12, section 4).

``Trace.summary`` defines makespan, achieved rate and utilisation once; these tests hold every built-in
design to those definitions on runs where the server keeps its limit, so no lesson can print a share of
the limit above 100 % next to a run the server never let break it.
"""

from __future__ import annotations

import pytest

from mock_server import ServerConfig
from throttle_lab.lab.experiments import DESIGNS, Workload, simulate
from throttle_lab.lab.grading import check_trace

SERVERS = {
    "requests bind, 10 s window": ServerConfig(rpm=60, window=10),
    "tokens bind, 60 s window": ServerConfig(rpm=120, tpm=10_000),
    "refusals count": ServerConfig(rpm=60, window=5, count_rejected=True),
}


@pytest.mark.parametrize("design", [name for name in DESIGNS if name != "article"])
@pytest.mark.parametrize("server", SERVERS.values(), ids=list(SERVERS))
def test_no_design_uses_more_than_the_server_allowed(design: str, server: ServerConfig) -> None:
    trace = simulate(design, Workload(requests=120, arrival="poisson", per_minute=240), server)
    summary = trace.summary()
    assert summary.utilisation is not None and summary.allowed is not None and summary.used is not None
    assert 0.0 < summary.utilisation <= 1.0 + 1e-9
    assert summary.used <= summary.allowed + 1e-6
    # The makespan runs to the last request to finish, completed or given up.
    last = max(e.t for e in trace.filter(kind=("done", "failed"), source="client"))
    assert summary.makespan == pytest.approx(last - trace.start)
    assert summary.achieved_per_minute == pytest.approx(summary.completed / summary.makespan * 60)


def test_a_design_that_loses_requests_has_the_makespan_of_its_losses() -> None:
    # Lesson 06's "each on its own" case in small: failures long after the last success.
    trace = simulate(
        "unthrottled", Workload(requests=60), ServerConfig(rpm=60, window=5, count_rejected=True)
    )
    summary = trace.summary()
    assert summary.failed > 0
    last_success = trace.filter(kind="done", source="client")[-1].t
    assert summary.makespan > last_success - trace.start


def test_the_grader_never_ticks_a_share_above_what_the_limit_allows() -> None:
    # The article's design against a tokens-bound server: many 429s, yet what it completed stays within
    # what the bucket allowed, and the grader's share says so.
    server = ServerConfig(rpm=120, tpm=20_000)
    trace = simulate(
        "article", Workload(requests=150, prompt_tokens=(50, 1000), max_tokens=(50, 300)), server
    )
    report = check_trace(trace, rpm=120, tpm=20_000, min_utilisation=0.5)
    share = next(r for r in report.results if "binding limit" in r.name)
    assert "of the tokens it allowed" in share.detail
    summary = trace.summary()
    assert summary.binding == "tokens" and summary.utilisation is not None and summary.utilisation <= 1.0
