"""What the lesson-grader tests share: reading a report, and loading a reference solution afresh."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from throttle_lab.lab.grading import Report


def load_solution(lesson: str) -> ModuleType:
    """A fresh copy of the reference solution ``throttle_lab.lab.solutions.<lesson>``: its module-level
    state (a seeded generator, say) starts anew in every test, as in a fresh notebook."""
    spec = importlib.util.find_spec(f"throttle_lab.lab.solutions.{lesson}")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results(report: Report) -> dict[str, bool]:
    """Each line of a report: check name -> passed?"""
    return {r.name: r.passed for r in report.results}


def failing(report: Report) -> dict[str, str]:
    """The failed lines of a report: check name -> its hint."""
    return {r.name: r.hint for r in report.results if not r.passed}
