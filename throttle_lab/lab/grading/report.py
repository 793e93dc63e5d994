"""What a check says: one line per promise -- passed or not, what was seen, a hint for a failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One line of a report."""

    name: str
    passed: bool
    detail: str = ""
    hint: str = ""


@dataclass
class Report:
    """What a check found.  Prints as a short list; ``passed`` is True only if everything passed."""

    title: str
    results: list[CheckResult] = field(default_factory=list)
    attempted: bool = True
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.attempted and bool(self.results) and all(r.passed for r in self.results)

    def add(self, name: str, passed: bool, detail: str = "", hint: str = "") -> bool:
        """Add one line; returns ``passed``."""
        self.results.append(CheckResult(name, passed, detail, "" if passed else hint))
        return passed

    def __str__(self) -> str:
        if not self.attempted:
            return f"{self.title}: not attempted yet -- {self.note}"
        good = sum(r.passed for r in self.results)
        lines = [f"{self.title}: {good}/{len(self.results)} checks passed"]
        for r in self.results:
            mark = "✓" if r.passed else "✗"
            lines.append(f"  {mark} {r.name}" + (f" ({r.detail})" if r.detail else ""))
            if r.hint:
                lines.append(f"      hint: {r.hint}")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython shows the text, not a repr
        printer.text(str(self))


#: How a grader's note on an exception names the scenario it crashed in (see ``sandbox.drive``).
SCENARIO_NOTE = "scenario: "


def describe_crash(exc: BaseException) -> str:
    """One line for a report: ``"TypeError: ... (while 12 callers at once at t=0 s)"``.

    The first line of the exception, and the scenario a grader noted on it (``add_note``), if any.
    """
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    scenarios = [
        n[len(SCENARIO_NOTE) :] for n in getattr(exc, "__notes__", ()) if n.startswith(SCENARIO_NOTE)
    ]
    if scenarios:
        text += f" (while {scenarios[0]})"
    return text


class NotAttempted(Exception):
    pass


def not_attempted(title: str, what: str) -> Report:
    return Report(
        title, attempted=False, note=f"{what} still raises NotImplementedError; fill it in and run me again."
    )
