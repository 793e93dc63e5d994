"""A live dashboard for a batch run in a notebook, and a real mock server to run it against.

:func:`~throttle_lab.batch.run_batch` hands a :class:`~throttle_lab.batch.ProgressSnapshot` to each of its
listeners about every second.  :class:`BatchDashboard` is such a listener: it keeps every snapshot and
redraws one figure in place -- the rates against the limits, the outcomes so far::

    requests/min ┤ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ limit 6000          done ████████████░░░░  740/1000
                 ┤      ╭──────────────╮                                ok 738 · failed 2 · 429s 1
                 ┤  ╭───╯              ╰──                              eta 5 s
                 └──┴──────────────────────── t (s)
    tokens/min   ┤ same, against the tpm limit (orange)

    dashboard = BatchDashboard()
    summary = await run_batch("in.jsonl", "out.jsonl", base_url=server.base_url, progress=[dashboard])

The figure is sent as a PNG through an IPython display handle and replaced on every redraw, so it
updates while the cell runs and the last picture stays in the saved notebook.  Outside IPython nothing
is displayed (the snapshots are still kept; :meth:`BatchDashboard.figure` draws them).  matplotlib is
imported here, never by :mod:`throttle_lab.batch`.

:func:`start_mock_server` starts ``python -m mock_server`` on 127.0.0.1 on a free port (a real uvicorn
server in a subprocess: real sockets, real time) and stops it when asked or when the ``with`` ends.
"""

from __future__ import annotations

import importlib
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from ..batch.progress import ProgressSnapshot, describe
from .plots.drawing import ACCEPTED, LIMITED, TOKENS, limit_line

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["BatchDashboard", "MockServerProcess", "start_mock_server"]

_ROOT = Path(__file__).resolve().parents[2]


class BatchDashboard:
    """A progress listener that draws the run: requests and tokens per minute against the limits.

    Args:
        refresh: seconds of loop time between redraws (about every second by default).  Drawing is real
            CPU work on the event loop's thread (a PNG takes a few hundred milliseconds), and while it
            draws no request is sent: so the dashboard also waits at least ten times as long as its last
            drawing took, which keeps it under a tenth of the run.
        display: show it in the notebook as the run goes (``False``: only keep the snapshots).
        title: the figure's title.
    """

    def __init__(self, *, refresh: float = 1.0, display: bool = True, title: str = "batch run") -> None:
        if not refresh > 0:
            raise ValueError(f"refresh must be a positive number of seconds, got {refresh!r}")
        self.refresh = refresh
        self.display = display
        self.title = title
        self.snapshots: list[ProgressSnapshot] = []
        self._handle: Any = None
        self._drawn_at = -float("inf")
        self._cost = 0.0  # real seconds the last drawing took

    def __call__(self, snapshot: ProgressSnapshot) -> None:
        self.snapshots.append(snapshot)
        done = snapshot.finished >= snapshot.total
        due = snapshot.t - self._drawn_at >= max(self.refresh, 10 * self._cost)
        if self.display and (done or due):
            self._drawn_at = snapshot.t
            self._show()

    def close(self) -> None:
        """Called by run_batch at the end: draw the final state."""
        if self.display and self.snapshots:
            self._show()

    def _show(self) -> None:
        try:
            # Looked up as Any: IPython's display functions carry no type hints.
            shell: Any = importlib.import_module("IPython")
            ipython: Any = importlib.import_module("IPython.display")
        except ImportError:  # pragma: no cover - no IPython: keep the data, draw nothing
            return
        if shell.get_ipython() is None:
            return  # a script or a test: the snapshots are kept; figure() draws them
        started = time.perf_counter()  # the drawing's real cost, not the run's clock: see refresh
        image = ipython.Image(data=self.png(), format="png")
        self._cost = time.perf_counter() - started
        if self._handle is None:
            self._handle = ipython.display(image, display_id=True)
        else:
            self._handle.update(image)

    def png(self, dpi: int = 72) -> bytes:
        """The current figure as PNG bytes."""
        import matplotlib.pyplot as plt

        figure = self.figure()
        buffer = io.BytesIO()
        try:
            figure.savefig(buffer, format="png", dpi=dpi)
        finally:
            plt.close(figure)
        return buffer.getvalue()

    def figure(self) -> Figure:
        """Rates against the limits (top), finished requests and 429s (bottom), from the snapshots."""
        import matplotlib.pyplot as plt

        figure, (rates, progress) = plt.subplots(2, 1, figsize=(9, 5.2), sharex=True, height_ratios=(3, 2))
        shots = self.snapshots
        times = [s.t for s in shots]
        rates.plot(times, [s.rpm for s in shots], color=ACCEPTED, lw=2, label="requests / min sent")
        last = shots[-1] if shots else None
        if last is not None and last.rpm_limit:
            limit_line(rates, last.rpm_limit, "rpm limit", text=f"rpm limit {last.rpm_limit:,.0f}")
        rates.set_ylabel("requests / min")
        rates.set_ylim(bottom=0)
        tokens = rates.twinx()
        tokens.plot(times, [s.tpm for s in shots], color=TOKENS, lw=1.5, ls="-.", label="tokens / min sent")
        if last is not None and last.tpm_limit:
            text = f"tpm limit {last.tpm_limit:,.0f}"
            limit_line(tokens, last.tpm_limit, "tpm limit", color=TOKENS, ls=":", text=text, side="right")
        tokens.set_ylabel("tokens / min", color=TOKENS)
        tokens.set_ylim(bottom=0)
        rates.legend(
            handles=[*rates.get_lines()[:1], *tokens.get_lines()[:1]], loc="lower right", fontsize="small"
        )
        progress.plot(times, [s.finished for s in shots], color=ACCEPTED, lw=2, label="finished")
        progress.plot(
            times, [s.rate_limited for s in shots], color=LIMITED, lw=1.5, label="429s (all attempts)"
        )
        if last is not None:
            progress.axhline(last.total, color="black", lw=0.8, ls="--")
        progress.set_xlabel("seconds since the run started (loop time)")
        progress.set_ylabel("requests")
        progress.legend(loc="upper left", fontsize="small")
        headline = f"{self.title}: {last.finished}/{last.total} · {describe(last)}" if last else self.title
        rates.set_title(headline, fontsize="medium", loc="left")
        # Fixed margins rather than a constrained layout: the layout solver doubled the drawing time.
        figure.subplots_adjust(left=0.09, right=0.89, top=0.92, bottom=0.1, hspace=0.08)
        return figure


@dataclass
class MockServerProcess:
    """A running ``python -m mock_server`` on 127.0.0.1 (see :func:`start_mock_server`)."""

    base_url: str
    args: tuple[str, ...]
    process: subprocess.Popen[bytes]
    _log: Any = field(repr=False, default=None)

    def stats(self) -> dict[str, Any]:
        """The server's ``GET /stats``: counts by status, limits, bucket levels."""
        answer: dict[str, Any] = httpx.get(self.base_url + "/stats", timeout=10).json()
        return answer

    def output(self) -> str:
        """What the server printed so far."""
        self._log.seek(0)
        text: str = self._log.read().decode(errors="replace")
        return text

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> MockServerProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_mock_server(*args: str, timeout: float = 20.0) -> MockServerProcess:
    """Start ``python -m mock_server ARGS`` on 127.0.0.1, on a free port; return once it answers.

    ``args`` are the server's command-line options (``"--rpm", "6000", "--window", "1"``, ...).  Its
    output goes to a temporary file (a pipe nobody reads would fill and block it).  This waits in real
    time (``time.sleep``, a subprocess): call it from a notebook cell or a script, not from a coroutine.

    >>> server = start_mock_server("--rpm", "600")      # doctest: +SKIP
    >>> server.base_url                                 # doctest: +SKIP
    'http://127.0.0.1:40123'
    >>> server.stop()                                   # doctest: +SKIP
    """
    port = _free_port()
    command = [sys.executable, "-m", "mock_server", "--host", "127.0.0.1", "--port", str(port), *args]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(_ROOT), os.environ.get("PYTHONPATH")) if p),
    }
    log = tempfile.TemporaryFile()  # noqa: SIM115 - it lives as long as the server; stop() closes it
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = MockServerProcess(f"http://127.0.0.1:{port}", tuple(args), process, log)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            output = server.output()
            server.stop()
            raise RuntimeError(f"mock_server exited with status {process.returncode}:\n{output}")
        try:
            if httpx.get(server.base_url + "/health", timeout=1.0).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"mock_server did not answer on {server.base_url} within {timeout:g} s")
        time.sleep(0.05)
