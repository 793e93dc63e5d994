"""Self-checking exercises: grade a learner's code by how it behaves over time.

Each ``check_*`` function runs the learner's code on virtual time, records what happens and reports, line by
line, what passed, what failed and a hint for each failure.  Nothing is compared with a model answer's
source: a limiter passes if it *behaves* like one (the limit holds in every window, callers are served in
order, the impossible fails fast...), however it is written.

"Not attempted yet" is a normal outcome: an exercise stub that raises ``NotImplementedError`` (or a
``None`` where code is expected) gets a friendly nudge, not a traceback.

>>> from throttle_lab import TokenBucket
>>> report = check_limiter(lambda: TokenBucket(rate=2.0, capacity=4), rate=2.0, capacity=4)
>>> report.passed
True
>>> print(report)  # doctest: +ELLIPSIS
check_limiter: 6/6 checks passed
  ✓ everyone gets through ...
"""

from .backoff_checks import check_backoff
from .guidance import Guide
from .limiter_checks import check_at_two_settings, check_limiter
from .report import CheckResult, Report
from .sandbox import inverted_pairs
from .trace_checks import check_trace

#: The 0.1 name of :func:`check_at_two_settings`.
check_twice = check_at_two_settings

__all__ = [
    "CheckResult",
    "Guide",
    "Report",
    "check_at_two_settings",
    "check_backoff",
    "check_limiter",
    "check_trace",
    "check_twice",
    "inverted_pairs",
]
