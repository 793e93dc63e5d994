"""Which answers are final, and which are sent again by the next run.

A batch runner writes a line only for a request whose fate is settled, so that a re-run with the same
output file can skip it.  Everything else is left out of the file and therefore retried on resume::

    answer (after the transport's own retries)          written?   on resume
    ─────────────────────────────────────────────────   ────────   ─────────────────────────
    2xx                                                 yes        skipped
    4xx other than 401, 403, 408, 409, 429              yes        skipped (the request is wrong:
      (400 bad request, 404 unknown model, 413, 422)                sending it again cannot help)
    refused here: too large for the token budget        yes        skipped (error.code
                                                                   "request_too_large")
    429, 408, 409, 5xx, 529, network error, timeout     no         sent again (the server's trouble,
      -- every attempt used up                                      not the request's)
    401 / 403 (key refused)                             no         sent again; the run stops at once:
                                                                   every other request would fail too
    in flight when the run stops (Ctrl-C, kill -9)      no         sent again

``write_exhausted=True`` (``--write-exhausted``) makes the "every attempt used up" row final too: an
error line with ``error.code == "retries_exhausted"`` and the last answer in ``response``.

>>> from throttle_lab.client.retry import RetryPolicy
>>> policy = RetryPolicy()
>>> [classify(status, policy).value for status in (200, 400, 404, 401, 429, 503)]
['succeeded', 'failed', 'failed', 'fatal', 'retry_later', 'retry_later']
"""

from __future__ import annotations

import enum

from ..client.retry import RetryPolicy

__all__ = ["FATAL_STATUSES", "Outcome", "classify"]

#: Answers that say the whole run cannot succeed (the key), not this one request.
FATAL_STATUSES = frozenset({401, 403})


class Outcome(enum.Enum):
    """Where a request's final answer puts it (see the table above)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRY_LATER = "retry_later"
    FATAL = "fatal"


def classify(status: int, retry: RetryPolicy) -> Outcome:
    """The outcome of a final HTTP answer ``status`` to a batch (``POST``) request."""
    if 200 <= status < 300:
        return Outcome.SUCCEEDED
    if status in FATAL_STATUSES:
        return Outcome.FATAL
    if status == 429 or status >= 500 or retry.is_retryable(status, "POST"):
        return Outcome.RETRY_LATER
    return Outcome.FAILED
