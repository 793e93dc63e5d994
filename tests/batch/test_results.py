"""The results file: append + flush, resume, torn-line repair, one writer at a time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from throttle_lab.batch import ResultsFile, error_line, result_line


def record(custom_id: str, status: int = 200) -> bytes:
    return json.dumps(result_line(custom_id, status, "req_1", {"ok": True})).encode() + b"\n"


def test_a_new_file_is_created_and_each_line_is_on_disk_when_append_returns(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with ResultsFile.open(path) as results:
        results.append(result_line("a", 200, "req_a", {"x": 1}))
        # Another reader sees the line already: nothing is held back in a buffer.
        line = json.loads(path.read_text())
        assert line["custom_id"] == "a"
        assert line["response"] == {"status_code": 200, "request_id": "req_a", "body": {"x": 1}}
        assert line["error"] is None and line["id"].startswith("batch_req_")
        results.append(error_line("b", "request_too_large", "too big"))
    lines = [json.loads(text) for text in path.read_text().splitlines()]
    assert lines[1]["response"] is None
    assert lines[1]["error"] == {"code": "request_too_large", "message": "too big"}


def test_ids_already_there_are_done_and_errors_are_told_apart(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(record("a") + record("b", 400) + b"\n")
    with ResultsFile.open(path) as results:
        assert results.done == {"a": True, "b": False}
        assert results.repair is None and results.problems == []


def test_a_torn_last_line_is_cut_off_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    torn = record("c")[:25]
    path.write_bytes(record("a") + record("b") + torn)
    with ResultsFile.open(path) as results:
        assert set(results.done) == {"a", "b"}
        assert results.repair == f"cut off a torn last line ({len(torn)} bytes)"
        results.append(result_line("c", 200, None, {}))
    assert [json.loads(t)["custom_id"] for t in path.read_text().splitlines()] == ["a", "b", "c"]


def test_a_whole_record_that_only_lost_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(record("a") + record("b").rstrip(b"\n"))
    with ResultsFile.open(path) as results:
        assert set(results.done) == {"a", "b"}
        assert results.repair == "added the missing newline after the last line"
        results.append(result_line("c", 200, None, {}))
    assert [json.loads(t)["custom_id"] for t in path.read_text().splitlines()] == ["a", "b", "c"]


def test_bad_lines_inside_the_file_are_reported_and_their_ids_not_done(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(record("a") + b"garbage\n" + b'{"no": "id"}\n' + record("a"))
    with ResultsFile.open(path) as results:
        assert results.done == {"a": True}
        assert [str(p) for p in results.problems] == [
            "output line 2: not valid JSON; ignored",
            "output line 3: no custom_id; ignored",
            "output line 4: custom_id 'a' appears again",
        ]


def test_a_second_writer_is_refused_while_the_first_holds_the_file(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with ResultsFile.open(path), pytest.raises(RuntimeError, match="another batch run"):
        ResultsFile.open(path)
    with ResultsFile.open(path):  # released with the first
        pass


def test_append_after_close_is_refused(tmp_path: Path) -> None:
    results = ResultsFile.open(tmp_path / "out.jsonl", durable=True)
    results.append(result_line("a", 200, None, {}))  # durable: fsynced
    results.close()
    results.close()
    with pytest.raises(ValueError, match="closed"):
        results.append(result_line("b", 200, None, {}))
