"""``throttle-lab batch``: dry run, simulation, usage errors (exit 2), and a run in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from throttle_lab.lab.cli import main

from .helpers import chat_line, write_input, write_lines


def test_dry_run_estimates_without_sending(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_input(tmp_path / "in.jsonl", 100)
    assert (
        main(["batch", str(source), "--dry-run", "--rpm", "600", "--tpm", "60000", "--burst-seconds", "1"])
        == 0
    )
    out = capsys.readouterr().out
    assert "dry run: 100 requests" in out and "expected duration: at least" in out


def test_dry_run_reports_bad_lines_with_their_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(
        tmp_path / "in.jsonl", [chat_line("a"), "oops", chat_line("a"), chat_line("big", max_tokens=9000)]
    )
    assert main(["batch", str(source), "--dry-run", "--tpm", "60000", "--burst-seconds", "1"]) == 1
    captured = capsys.readouterr()
    assert "in.jsonl: line 2: not valid JSON" in captured.err
    assert "in.jsonl: line 3: custom_id 'a' already used on line 1" in captured.err
    assert "1 request(s) too large for the token budget" in captured.out and "big:" in captured.out


def test_simulate_predicts_a_makespan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_input(tmp_path / "in.jsonl", 50)
    assert main(["batch", str(source), "--simulate", "--rpm", "600", "--burst-seconds", "1"]) == 0
    out = capsys.readouterr().out
    assert "simulated on virtual time" in out and "50 succeeded" in out and "predicted makespan" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--base-url", "http://x"], "--out is required"),
        (["--out", "OUT"], "--base-url is required"),
        (["--out", "OUT", "--base-url", "http://x", "--rpm", "0"], "expected a number > 0"),
        (["--simulate"], "--simulate needs limits"),
        (["--dry-run", "--simulate"], "not allowed with argument"),
        (["--out", "nowhere/out.jsonl", "--base-url", "http://x"], "does not exist"),
        (["--out", "OUT", "--base-url", "ftp://x"], "base_url must start with http"),
    ],
)
def test_usage_errors_exit_2_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    source = write_input(tmp_path / "in.jsonl", 1)
    argv = [str(tmp_path / "out.jsonl") if a == "OUT" else a for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        main(["batch", str(source), *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_missing_input_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["batch", str(tmp_path / "missing.jsonl"), "--dry-run"])
    assert exit_info.value.code == 2
    assert "cannot read" in capsys.readouterr().err


def test_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "exit status: 0 every request has a 2xx line" in text and "130 interrupted" in text
