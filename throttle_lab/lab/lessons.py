"""The lessons that come with the package: find them, copy them to a learner's folder, open JupyterLab.

``throttle-lab lessons [DIR]`` (see :mod:`throttle_lab.lab.cli`) is :func:`copy_lessons` followed by
:func:`launch_jupyterlab`.

Where the notebooks are (:func:`lessons_dir`): in a checkout -- an editable install, ``pip install -e .``
-- the repository's own ``notebooks/``; in an installed wheel, the copy the build put into the package
(``throttle_lab/lab/notebooks/``, see ``setup.py``).

Copying never loses a learner's work.  The folder keeps a small manifest (:data:`MANIFEST`) of the hash
of every file as it was copied, so a second copy can tell a file left as it was (brought up to date with
the new version) from one the learner changed (kept as it is, and said so).  A file the manifest does not
know -- the learner's own, or one from before the manifest -- is never touched either.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_DIR",
    "INSTALL_HINT",
    "MANIFEST",
    "CopyResult",
    "LessonsError",
    "copy_lessons",
    "jupyterlab_command",
    "launch_jupyterlab",
    "lesson_files",
    "lessons_dir",
    "require_jupyterlab",
]

#: Where ``throttle-lab lessons`` copies the notebooks when no folder is given (relative to the cwd).
DEFAULT_DIR = Path("throttle-lab-lessons")
#: The manifest ``copy_lessons`` keeps in the folder: file name -> sha256 of the copy it wrote.
MANIFEST = ".throttle-lab-lessons.json"
#: What to install to open the lessons.
INSTALL_HINT = 'pip install "throttle-lab[lessons]"'

_PACKAGED = "notebooks"  # the folder inside throttle_lab.lab the wheel carries (keep in step with setup.py)
_MANIFEST_VERSION = 1


class LessonsError(Exception):
    """The lessons cannot be found, copied or opened; the message says why and what to do."""


@dataclass
class CopyResult:
    """What :func:`copy_lessons` did, one list of file names per outcome."""

    dest: Path
    #: Not there before: copied.
    copied: list[str] = field(default_factory=list)
    #: An old copy the learner had not changed: replaced by the new version.
    updated: list[str] = field(default_factory=list)
    #: Already the current version.
    current: list[str] = field(default_factory=list)
    #: Changed by the learner (or not copied by us) and different from the current version: left alone.
    kept: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few lines for a terminal: what was copied, updated and kept (and how to get a kept one anew)."""
        lines = [f"lessons in {self.dest}:"]
        for label, names in (
            ("copied", self.copied),
            ("updated (you had not changed them)", self.updated),
            ("already up to date", self.current),
            (
                "kept as you edited them (a newer version exists: rename yours and run me again to get it)",
                self.kept,
            ),
        ):
            if names:
                lines.append(f"  {label}:")
                lines += textwrap.wrap(", ".join(names), 100, initial_indent="    ", subsequent_indent="    ")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- finding
def _checkout_notebooks() -> Path | None:
    """The repository's ``notebooks/`` when this package is imported from a checkout, else None."""
    root = Path(__file__).resolve().parents[2]
    notebooks = root / "notebooks"
    if (root / "pyproject.toml").is_file() and (root / "throttle_lab").is_dir() and notebooks.is_dir():
        return notebooks
    return None


def lessons_dir() -> Path:
    """The folder holding the lesson notebooks: a checkout's ``notebooks/``, or the installed package's copy.

    Raises :class:`LessonsError` if neither is there (an install built without them).
    """
    checkout = _checkout_notebooks()
    if checkout is not None:
        return checkout
    packaged = Path(str(importlib.resources.files("throttle_lab.lab") / _PACKAGED))
    if packaged.is_dir():
        return packaged
    raise LessonsError(
        f"the lessons are not installed (no {packaged}); reinstall with: {INSTALL_HINT} --force-reinstall"
    )


def lesson_files() -> list[Path]:
    """Every lesson notebook (``00_....ipynb`` ... ``10_....ipynb``, ``playground.ipynb``), sorted by name."""
    folder = lessons_dir()
    files = sorted(path for path in folder.glob("*.ipynb") if path.is_file())
    if not files:
        raise LessonsError(
            f"no lesson notebooks in {folder}; reinstall with: {INSTALL_HINT} --force-reinstall"
        )
    return files


# ---------------------------------------------------------------------------------------------- copying
def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_manifest(dest: Path) -> dict[str, str]:
    """The hashes recorded by earlier copies; an unreadable manifest counts as empty (nothing overwritten)."""
    try:
        data = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return {}
    return {
        name: digest for name, digest in files.items() if isinstance(name, str) and isinstance(digest, str)
    }


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it: a reader never sees half a file.

    The file is created with ``open`` (not ``mkstemp``), so it gets the usual permissions (the umask's).
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as sink:
            sink.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def _prepare(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise LessonsError(f"{dest} is a file, not a folder: choose another folder for the lessons")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LessonsError(f"cannot create the folder {dest}: {exc.strerror or exc}") from exc
    if not os.access(dest, os.W_OK | os.X_OK):
        raise LessonsError(f"the folder {dest} is not writable: choose another folder for the lessons")


def copy_lessons(dest: Path | str, sources: Sequence[Path] | None = None) -> CopyResult:
    """Copy the lesson notebooks into ``dest`` (created if needed), never overwriting a learner's edits.

    For each notebook: missing in ``dest`` -> copied; there and identical to the current version -> left
    as it is; there, unchanged since an earlier copy (its hash is the one the manifest recorded) ->
    replaced by the current version; anything else (edited, or a file of the learner's own) -> kept.
    ``sources`` defaults to :func:`lesson_files`.  Raises :class:`LessonsError` if ``dest`` is a file or
    cannot be written.
    """
    dest = Path(dest).expanduser()
    files = list(lesson_files() if sources is None else sources)
    _prepare(dest)
    recorded = _read_manifest(dest)
    manifest = dict(recorded)
    result = CopyResult(dest)
    try:
        for source in files:
            name, data = source.name, source.read_bytes()
            new = _digest(data)
            target = dest / name
            if not target.exists():
                _write_atomically(target, data)
                manifest[name] = new
                result.copied.append(name)
                continue
            if not target.is_file():
                result.kept.append(name)  # a folder of that name: not ours to replace
                continue
            have = _digest(target.read_bytes())
            if have == new:
                manifest[name] = new  # the current version, whoever wrote it: ours to update from now on
                result.current.append(name)
            elif recorded.get(name) == have:
                _write_atomically(target, data)
                manifest[name] = new
                result.updated.append(name)
            else:
                result.kept.append(name)
        if manifest != recorded or not (dest / MANIFEST).exists():
            payload = {"version": _MANIFEST_VERSION, "files": dict(sorted(manifest.items()))}
            _write_atomically(dest / MANIFEST, (json.dumps(payload, indent=1) + "\n").encode())
    except PermissionError as exc:
        raise LessonsError(f"cannot write in {dest}: {exc.strerror or exc} ({exc.filename})") from exc
    except OSError as exc:
        raise LessonsError(f"copying the lessons into {dest} failed: {exc}") from exc
    return result


# ---------------------------------------------------------------------------------------------- opening
def _is_root() -> bool:
    geteuid = getattr(os, "geteuid", None)  # not on Windows
    return geteuid is not None and geteuid() == 0


def jupyterlab_command(folder: Path, *, port: int | None = None, open_browser: bool = True) -> list[str]:
    """The command that serves ``folder`` with JupyterLab on 127.0.0.1 from this Python.

    An explicit ``port`` must be free (no silent move to another); as root, ``--allow-root`` (containers
    and CI machines), as ``scripts/lessons.sh`` does.
    """
    command = [sys.executable, "-m", "jupyterlab", "--ip", "127.0.0.1", f"--ServerApp.root_dir={folder}"]
    if port is not None:
        command += ["--port", str(port), "--ServerApp.port_retries=0"]
    if not open_browser:
        command.append("--no-browser")
    if _is_root():
        command.append("--allow-root")  # Jupyter refuses to start as root without it
    return command


def require_jupyterlab() -> None:
    """Raise :class:`LessonsError`, saying what to install, where JupyterLab is not installed."""
    if importlib.util.find_spec("jupyterlab") is None:
        raise LessonsError(f"JupyterLab is not installed; install it with: {INSTALL_HINT}")


def launch_jupyterlab(folder: Path, *, port: int | None = None, open_browser: bool = True) -> int:
    """Serve ``folder`` with JupyterLab until it stops (Ctrl-C); its exit status.

    Raises :class:`LessonsError` (saying what to install) where JupyterLab is not installed.
    """
    require_jupyterlab()
    return _run_until_stopped(jupyterlab_command(folder, port=port, open_browser=open_browser), folder)


def _run_until_stopped(command: list[str], cwd: Path) -> int:
    """Run ``command`` and wait for it, as a shell would; its exit status.

    Ctrl-C in the terminal reaches the child too (same process group): JupyterLab asks whether to shut
    down, or shuts its kernels down cleanly on a second one.  So this process keeps waiting rather than
    killing it (which ``subprocess.run`` would do).
    """
    try:
        process = subprocess.Popen(command, cwd=cwd)
    except OSError as exc:
        raise LessonsError(f"cannot start JupyterLab ({command[0]}): {exc}") from exc
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            continue
