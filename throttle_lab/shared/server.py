"""A real ``redis-server`` on 127.0.0.1, started and stopped for you: for tests, lessons and benchmarks.

    >>> from throttle_lab.shared.server import RedisServer, redis_server_path
    >>> if redis_server_path():                      # doctest: +SKIP
    ...     with RedisServer() as server:
    ...         print(server.url)                    # redis://127.0.0.1:<a free port>/0

Each server gets its own free loopback port and its own temporary data directory, so several can run at
once and nothing touches a Redis you already have.  ``restart()`` stops it and starts it again on the same
port (a Redis restart, as workers see it); ``kill()`` is a crash.  With ``appendonly=True`` every write is
fsynced to an append-only file before Redis answers, so the limits' state survives a restart; without it a
restart starts from empty, as a cache would.

From a shell: ``python -m throttle_lab.shared.server [--port P] [--appendonly]`` runs one until Ctrl-C.

Real time on purpose: this waits for another process.  Where the binary is missing, :data:`INSTALL_HINT`
says how to get it (tests and lessons skip with that message).
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from types import TracebackType

__all__ = ["INSTALL_HINT", "RedisServer", "redis_server_path", "redis_server_version"]

INSTALL_HINT = (
    "redis-server is not installed. Install it with `sudo apt-get install redis-server` (Debian/Ubuntu), "
    "`brew install redis` (macOS) or `conda install -c conda-forge redis-server`, then run this again."
)


def redis_server_path() -> str | None:
    """The ``redis-server`` executable on ``PATH``, or ``None``."""
    return shutil.which("redis-server")


def redis_server_version(executable: str | None = None) -> tuple[int, ...] | None:
    """The installed server's version, e.g. ``(7, 0, 15)``, or ``None`` if there is none."""
    exe = executable or redis_server_path()
    if exe is None:
        return None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
    for part in out.split():
        if part.startswith("v="):
            return tuple(int(x) for x in part[2:].split(".") if x.isdigit())
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process listening on 127.0.0.1 only.

    Args:
        port: the port (default: a free one, chosen at the first start and kept across restarts).
        appendonly: persist every write (``appendfsync always``) so state survives ``restart()``.
        executable: the ``redis-server`` binary (default: the one on ``PATH``).
        startup_timeout: seconds to wait for it to answer ``PING``.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        appendonly: bool = False,
        executable: str | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        exe = executable or redis_server_path()
        if exe is None:
            raise FileNotFoundError(INSTALL_HINT)
        if port is not None and not (isinstance(port, int) and 0 < port < 65536):
            raise ValueError(f"port must be a TCP port number, got {port!r}")
        self.executable = exe
        self.appendonly = appendonly
        self.startup_timeout = startup_timeout
        self._port = port
        self._fixed_port = port is not None
        self._dir: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._last_error = ""
        self._at_exit = False

    # ------------------------------------------------------------------ facts
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server has not been started yet")
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``: what the shared limiters take."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process is not None else None

    def ping(self, timeout: float = 1.0) -> bool:
        """Does the server answer ``PING`` with ``PONG`` right now (not while it is still loading)?"""
        if self._port is None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", self._port), timeout=timeout) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _served_by(self, pid: int) -> bool:
        """Is it *our* process answering on the port (and not another server that already had it)?"""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                sock.sendall(b"INFO server\r\n")
                reply = sock.makefile("rb")
                header = reply.readline()  # a bulk string: b"$<length>\r\n", then the text
                if not header.startswith(b"$"):
                    return False
                text = reply.read(int(header[1:]) + 2).decode(errors="replace")
        except (OSError, ValueError):
            return False
        return f"process_id:{pid}\r\n" in text

    # ------------------------------------------------------------------ life cycle
    def start(self) -> RedisServer:
        """Start the server and wait until it answers; returns ``self``.  Does nothing if it is running."""
        if self.running:
            return self
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="throttle_lab_redis_")
        attempts = 1 if self._fixed_port else 5
        for attempt in range(attempts):
            if self._port is None or (attempt and not self._fixed_port):
                self._port = _free_port()
            if self._launch():
                return self
        raise RuntimeError(f"redis-server did not start on 127.0.0.1:{self._port}: {self._last_error}")

    def _launch(self) -> bool:
        assert self._dir is not None and self._port is not None
        argv = [
            self.executable,
            "--port", str(self._port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--dir", self._dir,
            "--save", "",  # no RDB snapshots
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always",
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:  # exited: most likely the port was taken
                out = ""
                if process.stdout is not None:
                    out = process.stdout.read().decode(errors="replace")
                    process.stdout.close()
                self._last_error = (
                    out.strip().splitlines()[-1] if out.strip() else f"exit {process.returncode}"
                )
                return False
            if self.ping(timeout=0.5) and self._served_by(process.pid):
                self._process = process
                if not self._at_exit:  # a notebook kernel that dies must not leave a server behind
                    atexit.register(self.close)
                    self._at_exit = True
                return True
            time.sleep(0.02)
        process.kill()
        process.wait()
        self._last_error = f"no PONG within {self.startup_timeout:g} s"
        return False

    def stop(self, timeout: float = 10.0) -> None:
        """Stop it gracefully (SIGTERM: Redis finishes writing its append-only file, then exits)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck server
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def kill(self) -> None:
        """Crash it (SIGKILL): no goodbye, connections just drop."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def restart(self, downtime: float = 0.0, *, crash: bool = False) -> None:
        """Stop (or ``crash``) it, stay down ``downtime`` seconds, start it again on the same port."""
        if crash:
            self.kill()
        else:
            self.stop()
        if downtime > 0:
            time.sleep(downtime)
        self._fixed_port = True  # same address: the workers' clients reconnect to it
        self.start()

    def close(self) -> None:
        """Stop it and delete its data directory."""
        self.stop()
        if self._at_exit:
            atexit.unregister(self.close)
            self._at_exit = False
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"running pid={self.pid}" if self.running else "stopped"
        where = f"127.0.0.1:{self._port}" if self._port is not None else "no port yet"
        persistence = " appendonly" if self.appendonly else ""
        return f"<RedisServer {where} {state}{persistence}>"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m throttle_lab.shared.server", description="Run a redis-server on 127.0.0.1."
    )
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    parser.add_argument("--appendonly", action="store_true", help="persist every write")
    args = parser.parse_args(argv)
    if redis_server_path() is None:
        print(INSTALL_HINT)
        return 1
    server = RedisServer(args.port, appendonly=args.appendonly).start()
    print(f"redis-server listening at {server.url} (Ctrl-C stops it)", flush=True)
    try:
        while server.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
