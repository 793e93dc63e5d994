"""The simulations' plumbing: the requests the driver builds and the collector paused around a run."""

from __future__ import annotations

import gc
import re

import httpx
import pytest

from throttle_lab.lab.experiments import Workload, simulate
from throttle_lab.lab.experiments._collector import collector_paused
from throttle_lab.lab.experiments._drive import json_request


@pytest.mark.parametrize("base_url", ["http://mock-server", "http://127.0.0.1:8123"])
@pytest.mark.parametrize("stream", [False, True])
def test_the_driver_builds_the_request_httpx_builds_from_json(base_url: str, stream: bool) -> None:
    url = httpx.URL(base_url).join("/v1/chat/completions")
    for item in Workload(requests=5, seed=3, stream=stream).items():
        body = item.body("gpt-4o-mini", stream)
        headers = {"x-request-id": item.request_id, "authorization": "Bearer sk-throttle-lab"}
        reference = httpx.Request("POST", url, json=body, headers=headers)
        built = json_request(url, body, item.request_id)
        assert built.method == reference.method and built.url == reference.url
        assert built.headers.raw == reference.headers.raw  # the same names, values and order
        assert built.headers.encoding == reference.headers.encoding
        assert built.content == reference.content  # read already, as httpx reads a body in memory
        assert type(built.stream) is type(reference.stream)


def test_a_body_with_non_ascii_text_is_encoded_as_httpx_encodes_it() -> None:
    url = httpx.URL("http://mock-server/v1/chat/completions")
    body = {"model": "m", "messages": [{"role": "user", "content": "naïve ☃ \u2028"}]}
    reference = httpx.Request("POST", url, json=body, headers={"x-request-id": "r", "authorization": "x"})
    assert json_request(url, body, "r").content == reference.content


@pytest.mark.parametrize("stream", [False, True])
def test_the_in_process_transport_answers_what_asgi_transport_answers(stream: bool) -> None:
    from mock_server import ServerConfig, create_app
    from throttle_lab import run
    from throttle_lab.lab.experiments.inprocess import InProcessTransport

    url = httpx.URL("http://mock-server/v1/chat/completions")
    item = Workload(requests=1, stream=stream).items()[0]

    async def answer(make: type[httpx.AsyncBaseTransport]) -> httpx.Response:
        app = create_app(ServerConfig(rpm=60, seed=4))
        transport = InProcessTransport(app) if make is InProcessTransport else httpx.ASGITransport(app=app)
        response = await transport.handle_async_request(json_request(url, item.body(stream=stream), "r-1"))
        await response.aread()
        return response

    lean, reference = run(answer(InProcessTransport)), run(answer(httpx.ASGITransport))
    assert lean.status_code == reference.status_code
    assert lean.headers.raw == reference.headers.raw
    assert lean.headers.encoding == reference.headers.encoding

    def untimed(content: bytes) -> bytes:  # "created" is the wall clock's, the one thing that may differ
        return re.sub(rb'"created":\d+', b"", content)

    assert untimed(lean.content) == untimed(reference.content)


def test_the_collector_is_paused_for_the_block_and_restored_after() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("a run that fails still switches the collector back on")
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_caller_stays_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
        simulate("throttler", Workload(requests=5), {"rpm": 60})
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_simulation_switches_the_collector_back_on() -> None:
    simulate("throttler", Workload(requests=5), {"rpm": 60})
    assert gc.isenabled()


def test_objects_someone_else_froze_stay_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        simulate("throttler", Workload(requests=5), {"rpm": 60})
        # Still frozen (a few may have been freed meanwhile), and none of the run's objects were added.
        assert 0 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()
