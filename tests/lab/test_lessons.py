"""``throttle-lab lessons``: the notebooks are found, copied without losing a learner's edits, and opened.

The copy tests use the real lessons (the checkout's ``notebooks/``) and stand-in notebooks for a "new
version".  JupyterLab's start is tested twice: with the process call replaced (the command it would run),
and once for real (``server``: it answers on a free 127.0.0.1 port).  ``packaging`` builds the wheel from
a copy of the sources, installs it into a fresh venv and copies the lessons from there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import venv
import zipfile
from importlib.machinery import ModuleSpec
from pathlib import Path

import httpx
import pytest

from throttle_lab.lab import lessons
from throttle_lab.lab.cli import main
from throttle_lab.lab.lessons import MANIFEST, CopyResult, LessonsError, copy_lessons, lesson_files

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
EXPECTED = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))


def manifest(folder: Path) -> dict[str, str]:
    data = json.loads((folder / MANIFEST).read_text())
    assert data["version"] == 1
    files: dict[str, str] = data["files"]
    return files


def versions(
    tmp_path: Path, tag: str, names: tuple[str, ...] = ("a.ipynb", "b.ipynb", "c.ipynb")
) -> list[Path]:
    """Stand-in lessons: one file per name whose content says which version it is."""
    folder = tmp_path / f"source-{tag}"
    folder.mkdir()
    for name in names:
        (folder / name).write_text(json.dumps({"lesson": name, "version": tag}))
    return sorted(folder.iterdir())


# ---------------------------------------------------------------------------------------------- finding
def test_a_checkout_reads_its_own_notebooks() -> None:
    assert lessons.lessons_dir() == NOTEBOOKS  # the editable install: no copy anywhere
    files = lesson_files()
    assert [path.name for path in files] == EXPECTED
    assert EXPECTED[0].startswith("00_") and "11_test_your_own_client.ipynb" in EXPECTED
    assert "12_batch_jobs.ipynb" in EXPECTED
    assert "playground.ipynb" in EXPECTED and len(EXPECTED) == 14


def test_an_install_without_the_lessons_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lessons, "_checkout_notebooks", lambda: None)
    with pytest.raises(LessonsError, match=r'reinstall with: pip install "throttle-lab\[lessons\]"'):
        lessons.lessons_dir()


# ---------------------------------------------------------------------------------------------- copying
def test_the_first_copy_copies_every_lesson_and_records_it(tmp_path: Path) -> None:
    dest = tmp_path / "deep" / "lessons"  # parents are created
    result = copy_lessons(dest)
    assert result.copied == EXPECTED and not (result.updated or result.kept or result.current)
    for name in EXPECTED:
        assert (dest / name).read_bytes() == (NOTEBOOKS / name).read_bytes()
    assert sorted(manifest(dest)) == EXPECTED
    assert sorted(p.name for p in dest.iterdir()) == sorted([*EXPECTED, MANIFEST])  # no temporary left
    mode = (dest / EXPECTED[0]).stat().st_mode & 0o777
    assert mode & 0o600 == 0o600 and mode & 0o044 == 0o044 & ~_umask()  # readable as umask allows


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_second_copy_changes_nothing(tmp_path: Path) -> None:
    copy_lessons(tmp_path)
    before = {name: (tmp_path / name).stat().st_mtime_ns for name in EXPECTED}
    result = copy_lessons(tmp_path)
    assert result.current == EXPECTED and not (result.copied or result.updated or result.kept)
    assert {name: (tmp_path / name).stat().st_mtime_ns for name in EXPECTED} == before


def test_edited_copies_are_kept_and_unchanged_ones_updated(tmp_path: Path) -> None:
    dest = tmp_path / "lessons"
    copy_lessons(dest, versions(tmp_path, "v1"))
    (dest / "b.ipynb").write_text('{"my": "answers"}')  # the learner's work
    result = copy_lessons(dest, versions(tmp_path, "v2", ("a.ipynb", "b.ipynb", "c.ipynb", "d.ipynb")))
    assert (result.updated, result.kept, result.copied) == (["a.ipynb", "c.ipynb"], ["b.ipynb"], ["d.ipynb"])
    assert json.loads((dest / "a.ipynb").read_text())["version"] == "v2"
    assert (dest / "b.ipynb").read_text() == '{"my": "answers"}'
    text = result.summary()
    assert "kept as you edited them" in text and "b.ipynb" in text.split("kept as you edited them")[1]

    # Still edited at the next release: still kept (the manifest remembers what we wrote, not theirs).
    again = copy_lessons(dest, versions(tmp_path, "v3"))
    assert again.kept == ["b.ipynb"] and again.updated == ["a.ipynb", "c.ipynb"]
    assert (dest / "b.ipynb").read_text() == '{"my": "answers"}'


def test_a_file_we_never_copied_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "a.ipynb").write_text("mine")  # there before any copy, no manifest
    result = copy_lessons(tmp_path, versions(tmp_path, "v1", ("a.ipynb",)))
    assert result.kept == ["a.ipynb"] and (tmp_path / "a.ipynb").read_text() == "mine"


def test_a_broken_manifest_overwrites_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "lessons"
    copy_lessons(dest, versions(tmp_path, "v1"))
    (dest / MANIFEST).write_text("{not json")
    result = copy_lessons(dest, versions(tmp_path, "v2"))
    assert result.kept == ["a.ipynb", "b.ipynb", "c.ipynb"] and not result.updated
    assert json.loads((dest / "a.ipynb").read_text())["version"] == "v1"


def test_a_file_where_the_folder_should_be_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "lessons"
    blocker.write_text("not a folder")
    with pytest.raises(LessonsError, match="is a file, not a folder"):
        copy_lessons(blocker)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_folder_is_a_clear_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(LessonsError, match="not writable"):
            copy_lessons(locked)
    finally:
        locked.chmod(0o700)


def test_a_failed_write_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path, data: bytes) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(lessons, "_write_atomically", refuse)
    with pytest.raises(LessonsError, match=r"cannot write in .*Permission denied"):
        copy_lessons(tmp_path / "x")


# ---------------------------------------------------------------------------------------------- the command
def test_copy_only_copies_and_starts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[list[str]] = []

    def fake_run(command: list[str], cwd: Path) -> int:
        started.append(command)
        return 0

    monkeypatch.setattr(lessons, "_run_until_stopped", fake_run)
    dest = tmp_path / "mine"
    assert main(["lessons", str(dest), "--copy-only"]) == 0
    assert sorted(p.name for p in dest.glob("*.ipynb")) == EXPECTED and started == []
    out = capsys.readouterr().out
    assert out.startswith(f"lessons in {dest}:\n  copied:\n") and "playground.ipynb" in out

    (dest / EXPECTED[2]).write_text("{}")
    assert main(["lessons", str(dest), "--copy-only"]) == 0
    out = capsys.readouterr().out
    assert "already up to date" in out and "kept as you edited them" in out and EXPECTED[2] in out


def test_the_default_folder_is_throttle_lab_lessons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["lessons", "--copy-only"]) == 0
    assert sorted(p.name for p in (tmp_path / "throttle-lab-lessons").glob("*.ipynb")) == EXPECTED


def test_the_command_starts_jupyterlab_on_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[list[str], Path]] = []

    def fake_run(command: list[str], cwd: Path) -> int:
        assert sorted(p.name for p in cwd.glob("*.ipynb")) == EXPECTED  # copied before the start
        calls.append((command, cwd))
        return 0

    monkeypatch.setattr(lessons, "_run_until_stopped", fake_run)
    dest = tmp_path / "lx"
    assert main(["lessons", str(dest), "--no-browser", "--port", "8765"]) == 0
    [(command, cwd)] = calls
    assert cwd == dest
    assert command[:3] == [sys.executable, "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={dest}" in command and "--no-browser" in command
    assert command[command.index("--port") + 1] == "8765" and "--ServerApp.port_retries=0" in command
    assert command[command.index("--ip") + 1] == "127.0.0.1"
    assert ("--allow-root" in command) == (os.name == "posix" and os.geteuid() == 0)
    assert f"starting JupyterLab in {dest}" in capsys.readouterr().out

    calls.clear()
    assert main(["lessons", str(dest)]) == 0  # a browser opens; the port is JupyterLab's choice
    [(command, _)] = calls
    assert "--no-browser" not in command and "--port" not in command


def test_jupyterlab_missing_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str) -> ModuleSpec | None:
        return None if name == "jupyterlab" else real_find_spec(name)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(lessons, "_run_until_stopped", lambda command, cwd: pytest.fail("must not start"))
    assert main(["lessons", str(tmp_path / "lx")]) == 1
    captured = capsys.readouterr()
    assert 'JupyterLab is not installed; install it with: pip install "throttle-lab[lessons]"' in captured.err
    assert "copied:" in captured.out  # the lessons are there all the same


def test_jupyterlabs_exit_status_is_the_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lessons, "_run_until_stopped", lambda command, cwd: 3)
    assert main(["lessons", str(tmp_path / "lx"), "--no-browser"]) == 3


def test_bad_folders_exit_1_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["lessons", str(blocker), "--copy-only"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("throttle-lab lessons: ") and "is a file, not a folder" in err


@pytest.mark.parametrize("port", ["0", "70000", "http"])
def test_a_bad_port_exits_2(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["lessons", "--port", port])
    assert exit_info.value.code == 2
    assert "expected a port number (1-65535)" in capsys.readouterr().err


def test_copy_result_summary_names_each_outcome() -> None:
    result = CopyResult(Path("d"), copied=["a"], updated=["b"], current=["c"], kept=["e"])
    text = result.summary()
    for label, name in (("copied", "a"), ("updated", "b"), ("already up to date", "c"), ("kept", "e")):
        assert label in text and f"    {name}" in text


# ---------------------------------------------------------------------------------------------- for real
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.server
@pytest.mark.timeout(120)
def test_jupyterlab_really_serves_the_lessons(tmp_path: Path) -> None:
    pytest.importorskip(
        "jupyterlab", reason='JupyterLab is not installed: pip install "throttle-lab[lessons]"'
    )
    dest, home = tmp_path / "lx", tmp_path / "home"
    token = "throttle-lab-test"
    env = {
        **os.environ,
        "JUPYTER_TOKEN": token,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "IPYTHONDIR": str(home / "ipython"),
    }
    log = tmp_path / "server.log"
    for _attempt in range(3):  # someone may take the free port before the server binds it
        port = _free_port()
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "throttle_lab.lab.cli",
                    "lessons",
                    str(dest),
                    "--no-browser",
                    "--port",
                    str(port),
                ],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            status = _wait_for_status(f"http://127.0.0.1:{port}", token, process)
            if status is None:
                continue
            assert status.status_code == 200 and "started" in status.json()
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=10) as client:
                headers = {"Authorization": f"token {token}"}
                listing = client.get("/api/contents", headers=headers).json()
                assert sorted(item["name"] for item in listing["content"]) == EXPECTED
                page = client.get("/lab", headers=headers)
                assert page.status_code == 200 and "JupyterLab" in page.text
            return
        finally:
            _stop(process)
    pytest.fail(f"JupyterLab did not answer; its log ends:\n{log.read_text(errors='replace')[-3000:]}")


def _wait_for_status(url: str, token: str, process: subprocess.Popen[bytes]) -> httpx.Response | None:
    deadline = time.monotonic() + 60
    with httpx.Client(trust_env=False, timeout=2) as client:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                return client.get(f"{url}/api/status", headers={"Authorization": f"token {token}"})
            except httpx.TransportError:
                time.sleep(0.2)
    return None


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole session (throttle-lab and its JupyterLab), then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    import signal

    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(15)


@pytest.mark.packaging
@pytest.mark.timeout(240)
def test_the_wheel_carries_the_lessons_into_a_fresh_venv(tmp_path: Path) -> None:
    """Build the wheel from a copy of the sources, install it in a fresh venv, copy the lessons from there."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for name in ("throttle_lab", "mock_server", "notebooks"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    shutil.rmtree(source / "throttle_lab" / "lab" / "notebooks", ignore_errors=True)  # never a stale copy
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = wheels.glob("throttle_lab-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    packaged = sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("throttle_lab/lab/notebooks/"))
    assert packaged == EXPECTED
    assert "throttle_lab/lab/lessons.py" in names and "throttle_lab/lab/solutions/lesson00.py" in names

    fresh = tmp_path / "venv"
    venv.create(fresh, with_pip=False)  # pip from this venv installs into it (--python): quicker
    python = fresh / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    installed = subprocess.run(
        [*pip, "--python", str(python), "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    dest = tmp_path / "lx"
    script = fresh / ("Scripts/throttle-lab.exe" if os.name == "nt" else "bin/throttle-lab")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    copied = subprocess.run(
        [str(script), "lessons", str(dest), "--copy-only"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert sorted(p.name for p in dest.glob("*.ipynb")) == EXPECTED
    for name in EXPECTED:
        assert (dest / name).read_bytes() == (NOTEBOOKS / name).read_bytes()
    where = subprocess.run(
        [str(python), "-c", "from throttle_lab.lab import lessons; print(lessons.lessons_dir())"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(fresh)  # the wheel's copy, not this checkout
