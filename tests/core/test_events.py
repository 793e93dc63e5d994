from __future__ import annotations

import asyncio
import dataclasses

import pytest

from throttle_lab import Event, Kind, TokenBucket, observe, record, request_scope, run
from throttle_lab.core.events import emit, is_recording


def test_nothing_is_kept_when_nobody_records() -> None:
    assert not is_recording()
    emit(0.0, Kind.GRANTED, "nobody")  # no error, no effect


def test_record_collects_events_from_tasks_started_inside() -> None:
    async def main() -> None:
        bucket = TokenBucket(rate=1, capacity=1, name="b")

        async def call(i: int) -> None:
            with request_scope(f"req-{i}"):
                await bucket.acquire()

        await asyncio.gather(*(call(i) for i in range(3)))

    with record() as trace:
        run(main())
    assert [(e.t, e.kind, e.request) for e in trace] == [
        (0.0, "granted", "req-0"),
        (0.0, "queued", "req-1"),
        (0.0, "queued", "req-2"),
        (1.0, "granted", "req-1"),
        (2.0, "granted", "req-2"),
    ]
    assert {e.source for e in trace} == {"b"}


def test_recorders_nest_and_each_sees_its_own_span() -> None:
    with record() as outer:
        emit(1.0, "sent", "client", "a")
        with record() as inner:
            emit(2.0, "sent", "client", "b")
        emit(3.0, "sent", "client", "c")
    assert [e.request for e in outer] == ["a", "b", "c"]
    assert [e.request for e in inner] == ["b"]


def test_observe_gives_a_live_feed() -> None:
    seen: list[str] = []
    with observe(lambda event: seen.append(event.kind)):
        assert is_recording()
        emit(0.0, Kind.RETRY, "client", detail={"delay": 1.5})
    assert seen == ["retry"] and not is_recording()


def test_events_are_frozen_and_store_plain_strings() -> None:
    with record() as trace:
        emit(0.5, Kind.HTTP_429, "client", 7, 1, {"status": 429})
    event = trace[0]
    assert event.kind == "429" and type(event.kind) is str
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.t = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        event.detail["status"] = 200  # type: ignore[index]
    assert event.as_row() == {
        "t": 0.5,
        "kind": "429",
        "source": "client",
        "request": 7,
        "weight": 1,
        "detail.status": 429,
    }


def test_request_scope_sets_the_default_request_id() -> None:
    with record() as trace, request_scope("abc"):
        emit(0.0, "sent", "client")
        emit(0.0, "sent", "client", request="explicit")
    assert [e.request for e in trace] == ["abc", "explicit"]


def test_event_defaults() -> None:
    event = Event(1.0, "granted", "x")
    assert event.request is None and event.weight == 1 and dict(event.detail) == {}
