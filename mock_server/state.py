"""What one server remembers between requests, and the clock it reads it by.

Every route of one app shares one :class:`ServerState`: the admission policy (buckets per key), the event
log, the counts that ``GET /stats`` shows, and the clock. Routes read and update it; the app's public
controls (:meth:`~mock_server.app.MockServerApp.reset`, ``stats``, ``set_limits``) are this object's and
its policy's, passed through.

The clock is the running loop's (``loop.time()``), never the wall's, so the same state works in real time
under uvicorn and in virtual time in-process. A loop is also a clock *origin*: when requests start arriving
on another loop (a new ``run(...)``), times from the old one mean nothing there, so the buckets start full
again and the limit schedule starts over. What is not tied to a clock — limits set at run time, the quota
used, events and counts — is kept until :meth:`ServerState.reset`.
"""

from __future__ import annotations

import asyncio
import collections
import time
import weakref
from typing import Any

from .config import ServerConfig
from .events import EventLog
from .policy import ProviderPolicy

__all__ = ["ServerState"]


class ServerState:
    """The policy, the event log, the counts and the clock of one app.

    Counts a route updates: ``arrivals`` (also each request's arrival number, its ``seq``), ``in_flight``
    (admitted and not yet finished), ``tokens_charged`` and ``by_status`` (responses sent, by status).
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.policy = ProviderPolicy(config)
        self.log = EventLog(config.max_events)
        self.arrivals = 0
        self.in_flight = 0
        self.tokens_charged = 0
        self.by_status: collections.Counter[int] = collections.Counter()
        self._epoch: float | None = None
        self._schedule_index = 0
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._now = 0.0  # the last time read, for callers outside the loop (see ``peek``)
        self._wall_offset: float | None = None  # Unix time minus loop time, fixed once per clock origin

    # -- the clock ----------------------------------------------------------------------------------

    def clock(self) -> float:
        """Loop time now; on the first call (or on a new loop) this also fixes the epoch.

        Call it at each step of a request, not once: the limit schedule is applied here, when due.
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._loop is None or self._loop() is not loop:
            if self._loop is not None:
                self._new_clock()
            self._loop = weakref.ref(loop)
            self._wall_offset = None
        if self._epoch is None:
            self._epoch = now
        if self._schedule_index < len(self.config.limit_schedule):
            self._apply_schedule(self._epoch, now)
        self._now = now
        return now

    def peek(self) -> float:
        """Loop time if we are on the app's loop, else the last time the app saw (never resets state)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._now
        if self._loop is not None and self._loop() is loop:
            return loop.time()
        return self._now

    def wall_time(self, loop_time: float) -> float:
        """Unix time for ``loop_time``: the wall is read once per clock origin, then loop time rules.

        So a reset time in a header is exactly "now + seconds until full" on the loop's clock, real or
        virtual; only the origin comes from the wall (as ``created`` fields do).
        """
        if self._wall_offset is None:
            self._wall_offset = time.time() - self.peek()
        return self._wall_offset + loop_time

    def _new_clock(self) -> None:
        self.policy.new_clock()
        self._epoch = None
        self.in_flight = 0  # those requests lived on the old loop; none of them will finish on this one
        if self.config.limit_schedule:
            # The schedule counts from the epoch, so it starts over, from the configured limits.
            self._schedule_index = 0
            self.policy.set_limits(0.0, rpm=self.config.rpm, tpm=self.config.tpm)

    def _apply_schedule(self, epoch: float, now: float) -> None:
        schedule = self.config.limit_schedule
        while self._schedule_index < len(schedule):
            at, rpm, tpm = schedule[self._schedule_index]
            switch = epoch + at
            if not switch <= now:
                return
            # Applied at the instant it was due, not at ``now``, so usage refills at the old rate up to
            # the switch and at the new rate after it, exactly as if a timer had fired on time.
            self.policy.set_limits(switch, rpm=rpm, tpm=tpm)
            self._schedule_index += 1

    # -- requests -----------------------------------------------------------------------------------

    def arrive(self) -> int:
        """Count one arrival; return its number (1, 2, ...), the request's ``seq`` that seeds its dice."""
        self.arrivals += 1
        return self.arrivals

    # -- controls -----------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget events, counts, buckets, the epoch and the arrival numbering (limits back to config)."""
        self.log.clear()
        self.by_status.clear()
        self.arrivals = 0
        self.tokens_charged = 0
        self.policy.reset()
        self._epoch = None
        self._schedule_index = 0

    def stats(self) -> dict[str, Any]:
        """Counts and current bucket levels, as JSON-friendly data."""
        now = self.peek()
        return {
            "t": now,
            "epoch": self._epoch,
            "arrivals": self.arrivals,
            "in_flight": self.in_flight,
            "by_status": {str(status): n for status, n in sorted(self.by_status.items())},
            "by_kind": dict(sorted(self.log.by_kind.items())),
            "tokens_charged": self.tokens_charged,
            "events": len(self.log),
            "preset": self.config.preset_name,
            "seed": self.config.seed,
            **self.policy.snapshot(now),
        }
