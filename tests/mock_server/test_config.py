"""ServerConfig validation, presets and the public surface of the package."""

from __future__ import annotations

import dataclasses
import json

import pytest

import mock_server
from mock_server import PRESETS, ServerConfig


def test_defaults_are_documented_values() -> None:
    cfg = ServerConfig()
    assert (cfg.rpm, cfg.tpm, cfg.window, cfg.max_concurrent) == (None, None, 60.0, None)
    assert cfg.token_charge == "prompt+max_tokens"
    assert cfg.count_rejected is False
    assert cfg.capacity(180) == 180
    assert ServerConfig(window=1.0).capacity(180) == 3


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"rpm": 0}, "rpm"),
        ({"rpm": -5}, "rpm"),
        ({"rpm": 1.5}, "rpm"),
        ({"rpm": True}, "rpm"),
        ({"tpm": "100"}, "tpm"),
        ({"window": 0}, "window"),
        ({"window": float("nan")}, "window"),
        ({"window": float("inf")}, "window"),
        ({"max_concurrent": 0}, "max_concurrent"),
        ({"quota_tokens": 0}, "quota_tokens"),
        ({"default_max_tokens": 0}, "default_max_tokens"),
        ({"ttft": -0.1}, "ttft"),
        ({"per_token": float("nan")}, "per_token"),
        ({"jitter": 1.5}, "jitter"),
        ({"load_slowdown": -1}, "load_slowdown"),
        ({"error_rate_500": 2}, "error_rate_500"),
        ({"stream_cut_rate": -0.1}, "stream_cut_rate"),
        ({"error_rate_500": 0.6, "error_rate_503": 0.6}, "error_rate_500"),
        ({"per_key": 1}, "per_key"),
        ({"count_rejected": "yes"}, "count_rejected"),
        ({"token_charge": "completion"}, "token_charge"),
        ({"models": "gpt-4o"}, "models"),
        ({"models": ("",)}, "models"),
        ({"completion_fraction": (0.0, 1.0)}, "completion_fraction"),
        ({"completion_fraction": (0.9, 0.5)}, "completion_fraction"),
        ({"limit_schedule": ((1.0, 60),)}, "limit_schedule"),
        ({"limit_schedule": ((-1.0, 60, 100),)}, "limit_schedule"),
        ({"limit_schedule": ((1.0, 0, 100),)}, "limit_schedule"),
        ({"seed": 1.0}, "seed"),
        ({"max_body_bytes": 0}, "max_body_bytes"),
        ({"max_events": 0}, "max_events"),
        ({"default_max_tokens": 100, "max_output_tokens": 50}, "default_max_tokens"),
        ({"rpm": 60, "window": 0.5}, "rpm=60 with window=0.5s"),  # a bucket of half a request
        ({"rpm": 600, "window": 1, "limit_schedule": ((5, 30, None),)}, "limit_schedule rpm"),
    ],
)
def test_invalid_values_name_the_argument(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        ServerConfig(**kwargs)  # type: ignore[arg-type]


def test_smallest_useful_bucket_is_one_request() -> None:
    assert ServerConfig(rpm=60, window=1.0).capacity(60) == 1
    assert ServerConfig(rpm=180, window=1 / 3).capacity(180) == pytest.approx(1)


def test_config_pickles() -> None:
    import pickle

    cfg = ServerConfig.preset("brownout")
    assert pickle.loads(pickle.dumps(cfg)) == cfg


def test_schedule_is_sorted_and_normalised() -> None:
    cfg = ServerConfig(limit_schedule=[(20, None, 5), (10, 6, None)])  # type: ignore[arg-type]
    assert cfg.limit_schedule == ((10.0, 6, None), (20.0, None, 5))


def test_presets() -> None:
    assert set(ServerConfig.preset_names()) == set(PRESETS)
    tier1 = ServerConfig.preset("openai-tier1")
    assert (tier1.rpm, tier1.tpm) == (500, 200_000)
    assert tier1.preset_name == "openai-tier1"
    brown = ServerConfig.preset("brownout", seed=7)
    assert brown.seed == 7 and brown.limit_schedule
    short = ServerConfig.preset("short-window")
    assert short.capacity(short.rpm or 0) == 3
    with pytest.raises(ValueError, match="preset"):
        ServerConfig.preset("nope")
    with pytest.raises(ValueError, match="rpm"):
        ServerConfig.preset("lesson", rpm=0)


def test_frozen_and_json_friendly() -> None:
    cfg = ServerConfig.preset("brownout")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.rpm = 1  # type: ignore[misc]
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["limit_schedule"] == [[30.0, 30, 15000], [90.0, 120, 60000]]
    assert data["rpm"] == 120


def test_public_all_is_complete() -> None:
    exported = set(mock_server.__all__)
    public = {n for n, v in vars(mock_server).items() if not n.startswith("_") and not _is_module(v)}
    assert public == exported
    for name in exported:
        assert getattr(mock_server, name) is not None
    for name in ("ServerConfig", "create_app", "MockServerApp", "build_parser", "main"):
        assert name in exported


def _is_module(value: object) -> bool:
    return type(value).__name__ == "module"
