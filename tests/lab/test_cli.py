"""The ``throttle-lab`` command: runs end to end, writes real PNGs, refuses bad arguments with status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

from throttle_lab import Trace
from throttle_lab.lab.cli import build_parser, main
from throttle_lab.lab.experiments import DESIGNS

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SMALL = ["--requests", "20", "--server-rpm", "30", "--server-window", "10"]


def assert_png(path: Path, min_bytes: int = 10_000) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert len(data) > min_bytes, f"{path} is only {len(data)} bytes"


def run_cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "throttle_lab.lab.cli", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


# ---------------------------------------------------------------------------------------------- simulate
def test_simulate_prints_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "throttler", *SMALL]) == 0
    out = capsys.readouterr().out
    assert out.startswith("throttler: Throttler(")
    assert "requests 20: completed 20, failed 0" in out
    assert "30/min" in out  # the server's limit, in the summary (whatever its wording)


def test_simulate_writes_the_dashboard_and_the_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png, events = tmp_path / "run.png", tmp_path / "run.json"
    argv = ["simulate", "article", *SMALL, "--seed", "3", "--out", str(png), "--trace", str(events)]
    assert main(argv) == 0
    assert_png(png)
    trace = Trace.from_json(events.read_text())
    assert trace.count("429", "client") > 0
    out = capsys.readouterr().out
    assert f"wrote {png}" in out and f"wrote {events}" in out
    csv = tmp_path / "run.csv"
    assert main(["simulate", "--requests", "5", "--trace", str(csv)]) == 0
    assert csv.read_text().startswith("t,kind,source,request,weight")


def test_simulate_options_reach_the_experiment(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    events = tmp_path / "t.json"
    argv = [
        "simulate", "semaphore", "--requests", "12", "--arrival", "steady", "--per-minute", "60",
        "--prompt-tokens", "10:20", "--max-tokens", "30", "--max-concurrent", "2",
        "--server-rpm", "none", "--server-tpm", "50000", "--ttft", "1", "--per-token", "0",
        "--server-max-concurrent", "5", "--schedule", "5:none:1000", "--trace", str(events),
    ]  # fmt: skip
    assert main(argv) == 0
    trace = Trace.from_json(events.read_text())
    accepted = [e for e in trace if e.kind == "accepted"]
    assert len(accepted) == 12 and {e.detail["max_tokens"] for e in accepted} == {30}
    sent = [e.t for e in trace if e.kind == "sent" and e.detail.get("attempt") == 1]
    assert sent[:3] == pytest.approx([0.0, 1.0, 2.0])  # steady, one a second
    out = capsys.readouterr().out
    assert "semaphore" in out and "of " not in out.splitlines()[2]  # no server RPM limit: no utilisation


def test_simulate_with_a_server_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--server-preset", "short-window", "--requests", "10"]) == 0
    assert "180/min" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- compare
def test_compare_prints_a_table_and_writes_the_race(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "race.png"
    assert main(["compare", "unthrottled", "throttler", *SMALL, "--out", str(png), "--dpi", "60"]) == 0
    assert_png(png)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("design")
    assert any(line.startswith("unthrottled") for line in lines)
    assert any(line.startswith("throttler") and " 20 " in line for line in lines)


def test_compare_all_and_the_default_pair(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "all", "--requests", "8"]) == 0
    out = capsys.readouterr().out
    for name in DESIGNS:
        assert f"\n{name} " in out
    assert main(["compare", "--requests", "8"]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:]]
    assert rows == ["article", "throttler"]


# ---------------------------------------------------------------------------------------------- serve
def test_serve_has_mock_servers_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: throttle-lab serve")
    for option in ("--rpm", "--tpm", "--window", "--preset", "--schedule", "--port", "--print-config"):
        assert option in text


def test_serve_delegates_to_mock_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--preset", "lesson", "--rpm", "30", "--print-config"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert (config["rpm"], config["tpm"], config["preset_name"]) == (30, 20_000, "lesson")


# ---------------------------------------------------------------------------------------------- help, errors
@pytest.mark.parametrize("command", [[], ["simulate"], ["compare"], ["serve"], ["lessons"]])
def test_help_on_every_command(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: throttle-lab")
    if command in (["simulate"], ["compare"]):
        for option in ("--requests", "--arrival", "--server-rpm", "--out", "--seed", "--max-concurrent"):
            assert option in text
    if command == ["lessons"]:
        for option in ("DIR", "--copy-only", "--no-browser", "--port", 'pip install "throttle-lab[lessons]"'):
            assert option in " ".join(text.split())  # argparse wraps the description
    if not command:
        assert "lessons" in text  # listed among the commands


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "required: COMMAND"),
        (["frobnicate"], "invalid choice"),
        (["simulate", "nope"], "invalid choice: 'nope'"),
        (["simulate", "--requests", "0"], "expected a positive integer"),
        (["simulate", "--requests", "many"], "expected a positive integer"),
        (["simulate", "--rpm", "-5"], "expected a number > 0"),
        (["simulate", "--prompt-tokens", "9:1"], "0 <= LO <= HI"),
        (["simulate", "--schedule", "10:20"], "AT:RPM:TPM"),
        (["simulate", "--server-preset", "nope"], "invalid choice"),
        (["simulate", "--server-rpm", "10", "--server-window", "1"], "must hold at least one"),
        (["simulate", "--out", "plot.txt"], "--out must end in"),
        (["simulate", "--out", "/no/such/dir/x.png"], "does not exist"),
        (["simulate", "--trace", "t.xml"], "--trace must end in"),
        (["simulate", "--bogus"], "unrecognized arguments"),
        (["compare", "bogus"], "invalid choice"),
        (["serve", "--rpm", "5", "--window", "1"], "must hold at least one"),
        (["serve", "--port", "x"], "--port"),
        (["lessons", "--port", "x"], "expected a port number"),
        (["lessons", "a", "b"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "throttle-lab" in err and "error:" in err and message in err


def test_parser_is_public() -> None:
    parser = build_parser()
    args = parser.parse_args(["simulate", "adaptive", "--requests", "7"])
    assert (args.command, args.design, args.requests) == ("simulate", "adaptive", 7)


# ---------------------------------------------------------------------------------------------- processes
def test_module_run_writes_a_png_without_a_display(tmp_path: Path) -> None:
    png = tmp_path / "dashboard.png"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    result = run_cli("simulate", "throttler", *SMALL, "--out", str(png), env=env)
    assert result.returncode == 0, result.stderr
    assert "requests 20: completed 20" in result.stdout
    assert_png(png)


def test_installed_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "throttle-lab"
    if not script.exists():
        pytest.skip("the throttle-lab entry point is not installed (pip install -e .)")
    png = tmp_path / "race.png"
    result = subprocess.run(
        [str(script), "compare", "article", "throttler", *SMALL, "--out", str(png)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert_png(png)
    bad = subprocess.run(
        [str(script), "simulate", "--requests", "0"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "expected a positive integer" in bad.stderr


def test_matplotlib_is_imported_only_for_out() -> None:
    code = (
        "import sys\n"
        "from throttle_lab.lab.cli import main\n"
        "main(['simulate', '--requests', '5'])\n"
        "main(['compare', '--requests', '5'])\n"
        "print('matplotlib' in sys.modules, 'ipywidgets' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False False"
