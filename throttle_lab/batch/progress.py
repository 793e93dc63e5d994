"""Progress of a running batch: a snapshot every so often, and a tqdm bar that shows it.

The runner takes a snapshot of its counters about every second of *loop* time and hands it to every
listener -- the progress bar here, the notebook dashboard (:mod:`throttle_lab.lab.batch_dashboard`), or
any function of yours::

    runner ──every ~1 s──> ProgressSnapshot(done, failed, 429s, rates, limits, eta) ──> bar.update
                                                                                   └──> dashboard.update

The bar is :mod:`tqdm.auto`'s: a text bar in a terminal, a widget in a notebook.  Its own clock-based
fields (rate, elapsed, ETA) are switched off, because they read the wall clock: on virtual time they would
be wrong.  The rate and ETA shown come from the snapshot, measured on the loop's clock::

    batch ▍███████▌        | 412/1000 done 400 · failed 2 · 429s 0 · 598/600 rpm · 59k/60k tpm · eta 59s
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["ProgressListener", "ProgressSnapshot", "TqdmProgress"]


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    """The batch at loop time ``t`` (seconds since the run started).

    ``rpm`` / ``tpm`` are the attempts and estimated tokens sent per minute over the last ``window``
    seconds; ``rpm_limit`` / ``tpm_limit`` what the client allows (``None``: unknown / unlimited; for
    Anthropic lines ``tpm_limit`` is ITPM + OTPM).  ``eta`` is seconds until the last request is expected
    to finish at the recent pace (``None`` before anything finished).
    """

    t: float
    total: int
    finished: int
    succeeded: int
    failed: int
    retry_later: int
    rate_limited: int
    in_flight: int
    attempts: int
    rpm: float
    tpm: float
    rpm_limit: float | None
    tpm_limit: float | None
    eta: float | None
    window: float

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.finished)


#: Anything called with each snapshot.
ProgressListener = Callable[[ProgressSnapshot], None]


def _short(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}"


def describe(snapshot: ProgressSnapshot) -> str:
    """The bar's text after the count: what finished how, the rates against the limits, the ETA.

    >>> describe(ProgressSnapshot(t=10, total=100, finished=40, succeeded=39, failed=1, retry_later=0,
    ...     rate_limited=2, in_flight=5, attempts=45, rpm=240, tpm=24_000, rpm_limit=250,
    ...     tpm_limit=None, eta=15.0, window=10))
    'ok 39 · failed 1 · 429s 2 · 240/250 rpm · 24k tpm · eta 15s'
    """
    parts = [f"ok {snapshot.succeeded}", f"failed {snapshot.failed}"]
    if snapshot.retry_later:
        parts.append(f"retry {snapshot.retry_later}")
    parts.append(f"429s {snapshot.rate_limited}")
    for value, limit, unit in (
        (snapshot.rpm, snapshot.rpm_limit, "rpm"),
        (snapshot.tpm, snapshot.tpm_limit, "tpm"),
    ):
        parts.append(f"{_short(value)}/{_short(limit)} {unit}" if limit else f"{_short(value)} {unit}")
    if snapshot.eta is not None and math.isfinite(snapshot.eta):
        parts.append(f"eta {snapshot.eta:.0f}s")
    return " · ".join(parts)


class TqdmProgress:
    """A :mod:`tqdm.auto` bar fed by snapshots; ``close()`` leaves it on screen, final.

    ``file`` is where a terminal bar goes (default: stderr, so stdout stays for the summary).
    """

    def __init__(self, *, desc: str = "batch", file: Any = None, disable: bool | None = False) -> None:
        self.desc = desc
        self.file = file
        self.disable = disable
        self._bar: Any = None

    def __call__(self, snapshot: ProgressSnapshot) -> None:
        if self._bar is None:
            from tqdm.auto import tqdm  # only a run that shows a bar needs it

            self._bar = tqdm(
                total=snapshot.total,
                desc=self.desc,
                file=self.file,
                disable=self.disable,
                dynamic_ncols=True,
                # No {rate}/{elapsed}/{remaining}: tqdm reads the wall clock; ours come from the loop.
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{postfix}",
            )
        bar = self._bar
        bar.n = snapshot.finished
        bar.set_postfix_str(describe(snapshot), refresh=False)
        bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
