"""The command line: every config field has an option, presets combine with overrides, bad input exits 2."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from mock_server import ServerConfig, build_parser, main
from mock_server.cli import config_from_args
from tests.mock_server.helpers import ROOT


def config_of(*argv: str) -> ServerConfig:
    return config_from_args(build_parser().parse_args(list(argv)))


def test_help_documents_every_config_field(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    flags = {"limit_schedule": "--schedule", "preset_name": "--preset", "api_keys": "--api-key"}
    for field in dataclasses.fields(ServerConfig):
        flag = flags.get(field.name, "--" + field.name.replace("_", "-"))
        assert flag in text, f"{flag} missing from --help"
    for option in ("--host", "--port", "--log-level", "--print-config", "--keep-alive"):
        assert option in text


def test_options_build_the_config() -> None:
    cfg = config_of(
        "--rpm", "180", "--tpm", "90000", "--window", "1", "--seed", "7", "--max-concurrent", "4",
        "--per-key", "--token-charge", "prompt", "--no-count-rejected", "--quota-tokens", "1000",
        "--schedule", "30:60:none", "--schedule", "10:none:5000", "--models", "a, b",
        "--ttft", "0", "--per-token", "0.001", "--jitter", "0.5", "--load-slowdown", "0.1",
        "--error-rate-500", "0.1", "--overloaded-rate", "0.2", "--stream-cut-rate", "0.3",
        "--max-body-bytes", "5000", "--max-events", "none", "--default-max-tokens", "64",
        "--completion-fraction", "0.25:0.75",
    )  # fmt: skip
    assert (cfg.rpm, cfg.tpm, cfg.window, cfg.seed, cfg.max_concurrent) == (180, 90000, 1.0, 7, 4)
    assert cfg.per_key and not cfg.count_rejected and cfg.token_charge == "prompt"
    assert cfg.limit_schedule == ((10.0, None, 5000), (30.0, 60, None))
    assert cfg.models == ("a", "b")
    assert (cfg.ttft, cfg.per_token, cfg.jitter, cfg.load_slowdown) == (0.0, 0.001, 0.5, 0.1)
    assert (cfg.error_rate_500, cfg.overloaded_rate, cfg.stream_cut_rate) == (0.1, 0.2, 0.3)
    assert cfg.completion_fraction == (0.25, 0.75)
    assert (cfg.max_body_bytes, cfg.max_events, cfg.default_max_tokens, cfg.quota_tokens) == (
        5000,
        None,
        64,
        1000,
    )


def test_presets_and_overrides() -> None:
    cfg = config_of("--preset", "brownout", "--seed", "3")
    assert cfg.limit_schedule == ServerConfig.preset("brownout").limit_schedule
    assert (cfg.rpm, cfg.seed) == (120, 3)
    assert config_of("--preset", "lesson", "--rpm", "none").rpm is None
    assert config_of("--models", "*").models == ()
    # A long-running server keeps a bounded number of events unless told otherwise.
    assert config_of().max_events == 10_000


@pytest.mark.parametrize(
    "argv",
    [
        ["--rpm", "0"],
        ["--rpm", "abc"],
        ["--tpm", "-5"],
        ["--window", "0"],
        ["--window", "nan"],
        ["--jitter", "2"],
        ["--error-rate-500", "-0.1"],
        ["--schedule", "1:2"],
        ["--schedule", "x:1:2"],
        ["--preset", "nope"],
        ["--token-charge", "all"],
        ["--models", ","],
        ["--completion-fraction", "0.9:0.5"],  # caught by ServerConfig
        ["--completion-fraction", "0:1"],
        ["--port", "eighty"],
        ["--port", "70000"],
        ["--no-such-option"],
        ["--default-max-tokens", "500", "--max-output-tokens", "100"],  # caught by ServerConfig
        ["--error-rate-500", "0.7", "--error-rate-503", "0.7"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_print_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--print-config", "--rpm", "180", "--window", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["rpm"], data["window"]) == (180, 1.0)


def test_module_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mock_server", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "--rpm" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "mock_server", "--rpm", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "--rpm" in bad.stderr
