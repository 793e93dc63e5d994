"""Fixtures for the real-browser tests: a Jupyter server of our own and the system Chromium.

The server is ``jupyter lab`` on 127.0.0.1 (a free port, no token), serving a temporary COPY of
``notebooks/`` so that running cells never touches the repository; its config, data, runtime and IPython
directories are temporary too, so nobody's settings leak in.  The same server answers JupyterLab
(``/lab/tree/...``) and Notebook 7 (``/notebooks/...``).

Chromium is the Debian package (``apt-get install chromium``), driven by the ``playwright`` package
through ``executable_path`` -- never ``playwright install``.  Where either is missing the tests skip and
say why.  Everything stays on 127.0.0.1: Chromium resolves no other host name.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
#: Screenshots go here (``test-output/`` is ignored by git); CI can keep the folder as an artefact.
OUTPUT = REPO / "test-output" / "browser"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Only our server: every other host name fails to resolve.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]

SERVER_START_TIMEOUT = 30.0  # seconds until the server answers (it takes 1-3 s)
SERVER_STOP_TIMEOUT = 10.0  # seconds for a clean shutdown (kernels included) before SIGKILL

# The news/update toast ("Would you like to receive official Jupyter news?") covers the page: turn the
# plugin off, and let the server neither check for updates nor ask PyPI about extensions.
PAGE_CONFIG = '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}\n'


def require_browser() -> None:
    """Skip, saying how to fix it, where Chromium or Playwright is missing."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: install the Debian package (apt-get install chromium; "
            "scripts/test.sh does it when run as root)"
        )
    pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed: pip install -e '.[dev]'"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    # No proxy, whatever the environment says: the server is on loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2.0) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class JupyterServer:
    """A running ``jupyter lab``: ``url`` is its base URL, ``root`` the folder it serves."""

    url: str
    root: Path
    log: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log, for failure messages."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (the server shuts its kernels down), then SIGKILL if it has not gone in time.

        Kernels run in sessions of their own but watch their parent: they exit with it either way.
        """
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(SERVER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(SERVER_STOP_TIMEOUT)


def _start_server(base: Path) -> JupyterServer:
    root = base / "root"
    shutil.copytree(
        REPO / "notebooks",
        root / "notebooks",
        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
    )
    config = base / "config"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(PAGE_CONFIG)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "IPYTHONDIR": str(base / "ipython"),
        "PYTHONUNBUFFERED": "1",
    }
    log = base / "server.log"
    last_error = ""
    for _attempt in range(3):  # another process may grab the free port before the server binds it
        port = _free_port()
        command = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--ServerApp.port_retries=0",  # a busy port must fail, not silently move the server
            "--ServerApp.token=",
            "--ServerApp.password=",
            "--allow-root",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.terminals_enabled=False",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            # If this process dies without stopping it, the server winds itself down within minutes.
            "--MappingKernelManager.cull_idle_timeout=300",
            "--MappingKernelManager.cull_interval=60",
            "--ServerApp.shutdown_no_activity_timeout=420",
        ]
        with log.open("ab") as sink:
            process = subprocess.Popen(
                command,
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal is for pytest, not the server
            )
        server = JupyterServer(f"http://127.0.0.1:{port}", root, log, process)
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            if _answers(f"{server.url}/api/status"):
                return server
            time.sleep(0.2)
        last_error = server.log_tail()
        server.stop()
    raise RuntimeError(f"jupyter lab did not start on 127.0.0.1; its log ends:\n{last_error}")


@pytest.fixture(scope="module")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """One ``jupyter lab`` for the module, always stopped (kernels included) at the end."""
    require_browser()
    server = _start_server(tmp_path_factory.mktemp("jupyter"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """The system Chromium, headless, for the module."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Path:
    """The folder for this test's screenshots (``test-output/browser/<test>``), emptied first."""
    name = re.sub(r"[^\w.-]+", "-", request.node.name).strip("-")  # test_x[notebook7] -> test_x-notebook7
    folder = OUTPUT / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
