"""A booking, three ways: as the script answers it, as the caller gets it, as a process counts them.

* :class:`_Decision` -- one reserve script's reply, parsed by the limiter that sent it (each algorithm
  reads its own reply; the base class needs only these fields);
* :class:`Reservation` -- what ``acquire`` returns: the booked start on Redis's clock, how long the caller
  waited, how late it proceeded;
* :class:`SharedLimiterStatistics` -- what this process has seen, on top of every limiter's
  :class:`~throttle_lab.LimiterStatistics`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.accounting import LimiterStatistics

__all__ = ["Reservation", "SharedLimiterStatistics"]


@dataclass(frozen=True, slots=True)
class _Decision:
    """One script's answer, parsed."""

    booked: bool
    wait_us: int
    now_us: int
    receipt: Any  # what a refund of this booking needs
    levels: dict[str, float]


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a shared limiter's ``acquire`` returns: one granted request.

    Attributes:
        weight: what was booked (1 for a request, the token count for TPM).
        waited: loop seconds from the call to the grant (the round trip plus the sleep).
        at_us: the booked start, in microseconds of **Redis** time (``None`` when unthrottled).  Every
            worker's bookings share this clock, so these are the timestamps to check a limit against.
        booked_at_us: Redis time when the script ran (``None`` when unthrottled).
        unthrottled: granted without Redis (``on_error="fail_open"`` during an outage).
        lateness: how long after its booked start this caller proceeded, at most (seconds, on its loop's
            clock; ``None`` when unthrottled).  Above the limiter's ``margin`` the caller is *overdue*.
    """

    weight: float
    waited: float
    at_us: int | None
    booked_at_us: int | None
    unthrottled: bool = False
    lateness: float | None = None

    @property
    def at(self) -> float | None:
        """The booked start in seconds of Redis time (Unix epoch)."""
        return None if self.at_us is None else self.at_us / 1e6

    @property
    def booked_at(self) -> float | None:
        return None if self.booked_at_us is None else self.booked_at_us / 1e6


@dataclass(frozen=True, slots=True)
class SharedLimiterStatistics(LimiterStatistics):
    """:class:`~throttle_lab.LimiterStatistics` (counted in *this* process) plus the Redis side.

    Attributes:
        key: the Redis key (or key prefix) the limit lives under.
        on_error: the fault policy.
        round_trips: script calls answered by Redis.
        round_trip_mean: their mean duration, seconds.
        script_loads: ``SCRIPT LOAD`` calls (1 per script, plus one after each server restart).
        errors: calls that failed because Redis could not be reached.
        unthrottled: requests let through without Redis (fail-open).
        refunded: cancelled bookings Redis gave back.
        not_refunded: cancelled bookings it could not give back (someone booked after them, or Redis was
            down).
        margin: seconds each booking leaves for its caller to proceed late.
        overdue: grants whose caller proceeded later than ``margin`` after its booked start (as far as this
            process can tell: it counts every one that might have been).  Each can add its weight to a
            window it lands in; anything above 0 says the margin is too small for this load.
        max_lateness: the latest any caller here proceeded after its booked start, seconds (at most).
    """

    key: str
    on_error: str
    round_trips: int
    round_trip_mean: float
    script_loads: int
    errors: int
    unthrottled: int
    refunded: int
    not_refunded: int
    margin: float
    overdue: int
    max_lateness: float
