"""What a batch run did, in one dataclass, one line, and one exit status.

Every request of the input ends a run in exactly one of these places::

    input line ──> invalid            reported with its line number, never sent
               ──> skipped            already in the output file (an earlier run)
               ──> succeeded          2xx: a line written              final
               ──> failed             other 4xx, or refused here: a line written, final
               ──> retry_later        429 / 5xx / network error after every attempt: NOT written,
                                      so the next run with the same output file sends it again
               ──> unfinished         the run stopped (Ctrl-C, unreachable server) before it ended:
                                      not written, sent again next run

The exit status says what the *output file* holds afterwards (see :data:`EXIT_CODES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .jsonl import InputProblem
from .limits import BatchLimits

__all__ = ["EXIT_CODES", "BatchSummary"]

#: Exit statuses of ``throttle-lab batch`` (and :attr:`BatchSummary.exit_code`).
EXIT_CODES: Mapping[int, str] = {
    0: "every request has a 2xx line in the output file",
    1: "some requests failed (error lines written), are left to retry, or their input lines are invalid",
    2: "usage: bad options, or the input or output file cannot be used",
    3: "the base URL could not be reached: nothing was written for the requests not sent; re-run later",
    4: "the server refused the API key (401/403): the run stopped; nothing was written for it",
    130: "interrupted (Ctrl-C / SIGINT): finished requests are written; re-run to send the rest",
}


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """Counts of one run (see the module docstring for where each request goes).

    ``elapsed`` is loop time from the first request to the last (virtual seconds in a simulation),
    ``rate_limited`` the 429 answers seen, ``attempts`` the HTTP attempts sent (retries included).
    """

    total: int
    succeeded: int = 0
    failed: int = 0
    retry_later: int = 0
    unfinished: int = 0
    skipped: int = 0
    skipped_failed: int = 0
    invalid: int = 0
    rate_limited: int = 0
    attempts: int = 0
    elapsed: float = 0.0
    interrupted: bool = False
    unreachable: str | None = None
    fatal: str | None = None
    limits: Mapping[str, BatchLimits] = field(default_factory=dict)
    problems: tuple[InputProblem, ...] = ()
    retry_later_ids: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Every valid request has a 2xx line, and no input line was invalid."""
        return (
            self.invalid == 0
            and self.failed == 0
            and self.skipped_failed == 0
            and self.retry_later == 0
            and self.unfinished == 0
            and self.succeeded + self.skipped == self.total
        )

    @property
    def exit_code(self) -> int:
        """See :data:`EXIT_CODES`."""
        if self.interrupted:
            return 130
        if self.unreachable is not None:
            return 3
        if self.fatal is not None:
            return 4
        return 0 if self.complete else 1

    def line(self) -> str:
        """The one-line summary the command prints at the end.

        >>> print(BatchSummary(total=10, succeeded=7, failed=1, retry_later=1, skipped=1, rate_limited=3,
        ...                    elapsed=12.25).line())  # doctest: +NORMALIZE_WHITESPACE
        batch: 7 succeeded, 1 failed, 1 to retry, 1 skipped (done before) of 10; 3 429s; 12.2 s;
        re-run with the same --out to retry
        """
        parts = [f"{self.succeeded} succeeded", f"{self.failed} failed"]
        if self.retry_later:
            parts.append(f"{self.retry_later} to retry")
        if self.unfinished:
            parts.append(f"{self.unfinished} not finished")
        if self.skipped:
            parts.append(f"{self.skipped} skipped (done before)")
        text = "batch: " + ", ".join(parts) + f" of {self.total}"
        if self.invalid:
            text += f"; {self.invalid} invalid input line{'s' if self.invalid != 1 else ''}"
        text += f"; {self.rate_limited} 429s; {self.elapsed:.1f} s"
        if self.interrupted:
            text += "; interrupted: re-run with the same --out to finish"
        elif self.unreachable is not None:
            text += f"; server unreachable ({self.unreachable})"
        elif self.fatal is not None:
            text += f"; stopped: {self.fatal}"
        elif self.retry_later or self.unfinished:
            text += "; re-run with the same --out to retry"
        return text
