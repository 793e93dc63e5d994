"""The results file: one JSON line per finished request, appended and flushed as it completes.

The output is the OpenAI Batch API's output format, so a file written here and one downloaded from
``/v1/batches`` read the same::

    {"id": "batch_req_…", "custom_id": "doc-1",
     "response": {"status_code": 200, "request_id": "req_…", "body": {...the API's answer...}},
     "error": null}
    {"id": "batch_req_…", "custom_id": "doc-7", "response": null,
     "error": {"code": "request_too_large", "message": "…"}}      <- no HTTP answer: a local, final error

The file is also the runner's memory.  Re-running with the same output file skips every ``custom_id``
already in it, so nothing is sent twice and nothing is lost::

    run 1   a b c d e ─┐ killed (kill -9) while f, g were in flight; half of g's line reached the disk
    file    a b c d e g½          <- a torn last line
    run 2   repair: cut g½ off    -> a b c d e      then send only f, g, ...

Why this is safe:

* **One write per line.**  Each line is written with a single ``write`` of ``line + "\\n"`` on a file
  opened for appending, then flushed: the operating system has it the moment :meth:`ResultsFile.append`
  returns, so ``kill -9`` of the runner loses only what was in flight.  (Surviving a power cut needs the
  data on the disk as well: ``durable=True`` adds an ``fsync`` per line, at a cost.)
* **A torn last line is cut off.**  A crash in the middle of a write can leave a last line without its
  newline.  :meth:`ResultsFile.open` truncates the file back to the end of the last complete line (and
  says so), unless the tail is a complete JSON record, which only lost its newline: then the newline is
  added.  Lines are never rewritten otherwise.
* **One writer at a time.**  The file is locked (``fcntl.flock``, where the platform has it) while a run
  appends, so a second run on the same output fails at once instead of interleaving lines.

This is real file I/O on the event loop's thread: a small append and flush takes microseconds, so it is
done inline (no thread), which also keeps it valid on virtual time.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "out.jsonl"
>>> _ = path.write_bytes(b'{"custom_id": "a", "response": {"status_code": 200}, "error": null}\\n{"custom_')
>>> results = ResultsFile.open(path)
>>> sorted(results.done), results.repair
(['a'], 'cut off a torn last line (9 bytes)')
>>> results.close()
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["OutputProblem", "ResultsFile", "error_line", "result_line"]


def result_line(
    custom_id: str, status_code: int, request_id: str | None, body: object, *, line_id: str | None = None
) -> dict[str, Any]:
    """An output record for an HTTP answer (any status: a 400's body carries the API's own error)."""
    return {
        "id": line_id or f"batch_req_{uuid.uuid4().hex}",
        "custom_id": custom_id,
        "response": {"status_code": status_code, "request_id": request_id, "body": body},
        "error": None,
    }


def error_line(custom_id: str, code: str, message: str, *, line_id: str | None = None) -> dict[str, Any]:
    """An output record for a request that got no HTTP answer (refused here, before sending)."""
    return {
        "id": line_id or f"batch_req_{uuid.uuid4().hex}",
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }


def is_success(record: Mapping[str, Any]) -> bool:
    """Whether an output record is a 2xx answer."""
    response = record.get("response")
    status = response.get("status_code") if isinstance(response, Mapping) else None
    return isinstance(status, int) and 200 <= status < 300 and record.get("error") is None


@dataclass(frozen=True, slots=True)
class OutputProblem:
    """A line already in the output file that is not a usable record (skipped; its id is not done)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"output line {self.line}: {self.message}"


@dataclass
class ResultsFile:
    """An output file opened for resuming: what is in it already, and :meth:`append` for new lines.

    Use :meth:`open`; ``done`` maps every ``custom_id`` found to whether its line is a success.
    """

    path: Path
    done: dict[str, bool] = field(default_factory=dict)
    problems: list[OutputProblem] = field(default_factory=list)
    repair: str | None = None
    durable: bool = False
    written: int = 0
    _file: IO[bytes] | None = None

    @classmethod
    def open(cls, path: str | Path, *, durable: bool = False) -> ResultsFile:
        """Open (or create) ``path``: lock it, repair a torn last line, read the ids already done.

        Raises ``OSError`` if the file cannot be opened, and ``RuntimeError`` if another run holds it.
        """
        target = Path(path)
        handle = target.open("a+b")  # created if missing; every write goes to the end
        try:
            if not _lock(handle):
                raise RuntimeError(
                    f"{target} is being written by another batch run; wait for it or use another --out"
                )
            results = cls(path=target, durable=durable, _file=handle)
            results._load()
        except BaseException:
            handle.close()
            raise
        return results

    def _load(self) -> None:
        assert self._file is not None
        self._file.seek(0)
        data = self._file.read()
        end = data.rfind(b"\n") + 1  # the end of the last complete line (0: none)
        tail = data[end:]
        if tail.strip():
            if _complete_record(tail):
                self._file.write(b"\n")  # the record is whole; only its newline was lost
                self._file.flush()
                self.repair = "added the missing newline after the last line"
                end = len(data) + 1
                data += b"\n"
            else:
                self._file.truncate(end)
                self.repair = f"cut off a torn last line ({len(tail)} bytes)"
            data = data[:end]
        elif tail:
            self._file.truncate(end)  # trailing spaces without a newline: nothing worth keeping
        for number, raw in enumerate(data.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                self.problems.append(OutputProblem(number, "not valid JSON; ignored"))
                continue
            custom_id = record.get("custom_id") if isinstance(record, dict) else None
            if not isinstance(custom_id, str) or not custom_id:
                self.problems.append(OutputProblem(number, "no custom_id; ignored"))
                continue
            if custom_id in self.done:
                self.problems.append(OutputProblem(number, f"custom_id {custom_id!r} appears again"))
            self.done[custom_id] = self.done.get(custom_id, False) or is_success(record)

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one record as one line, flushed (and fsynced with ``durable``) before returning."""
        if self._file is None:
            raise ValueError(f"{self.path} is closed")
        data = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        self._file.write(data)
        self._file.flush()
        if self.durable:
            os.fsync(self._file.fileno())
        custom_id = record.get("custom_id")
        if isinstance(custom_id, str):
            self.done[custom_id] = is_success(record)
        self.written += 1

    def close(self) -> None:
        """Flush and close (the lock goes with the file).  Idempotent."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lock(handle: IO[bytes]) -> bool:
    """Take the file's exclusive lock without waiting; False if another process holds it."""
    if sys.platform == "win32":  # pragma: no cover - no flock there; two runs on one file go unnoticed
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _complete_record(tail: bytes) -> bool:
    try:
        record = json.loads(tail)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(record, dict) and isinstance(record.get("custom_id"), str)
