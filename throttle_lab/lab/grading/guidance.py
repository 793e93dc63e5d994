"""Help where the learner is: hints in levels, then the reference solution, printed in the notebook.

Each lesson's exercise module offers three calls beside each other, as Kaggle Learn's exercises do::

    lesson03.check(MyBucket)   # grade it: what passed, what failed, a hint for each failure
    lesson03.hint()            # stuck before even trying? the next hint, one level more concrete each call
    lesson03.solution()        # the reference solution's code, printed inline

>>> guide = Guide("lesson99", ["Think about when.", "Sleep until then.", "Use loop.call_at."],
...               solution="throttle_lab.lab.solutions.lesson06")
>>> guide.hint()
lesson99 hint 1 of 3: Think about when.
>>> guide.hint()
lesson99 hint 2 of 3: Sleep until then.
>>> guide.hint(3)
lesson99 hint 3 of 3: Use loop.call_at.
>>> guide.hint()
lesson99 hint 3 of 3: Use loop.call_at.  (That was the last hint: lesson99.solution() shows a whole answer.)
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence

__all__ = ["Guide"]


class Guide:
    """The hints (most general first) and the reference solution's module for one lesson's exercise."""

    def __init__(self, lesson: str, hints: Sequence[str], *, solution: str) -> None:
        if not hints or not all(isinstance(h, str) and h.strip() for h in hints):
            raise ValueError("hints must be a non-empty list of non-empty strings")
        self.lesson = lesson
        self.hints = tuple(hints)
        self.solution_module = solution
        self._shown = 0  # the highest level shown so far
        self._last_shown = False  # has the last hint been shown already?

    def hint(self, level: int | None = None) -> None:
        """Print the next hint (or hint number ``level``, counting from 1)."""
        if level is None:
            level = min(self._shown + 1, len(self.hints))
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= len(self.hints):
            raise ValueError(f"level must be a whole number from 1 to {len(self.hints)}, got {level!r}")
        self._shown = max(self._shown, level)
        note = ""
        if level == len(self.hints):
            # Shown once, the last hint stands alone; asked for again, it points on to the solution.
            if self._last_shown:
                note = f"  (That was the last hint: {self.lesson}.solution() shows a whole answer.)"
            self._last_shown = True
        print(f"{self.lesson} hint {level} of {len(self.hints)}: {self.hints[level - 1]}{note}")

    def solution(self) -> None:
        """Print the reference solution's source code (read it, then close it and write your own)."""
        module = importlib.import_module(self.solution_module)
        print(f"# {self.solution_module}\n{inspect.getsource(module)}")
