"""Batch jobs: a whole JSONL file of requests, sent under the provider's limits, resumably.

The input and output are the OpenAI Batch API's JSONL formats, so files move unchanged between this
runner and the provider's own ``/v1/batches`` endpoint.  See :func:`run_batch` for the picture,
:mod:`~throttle_lab.batch.outcomes` for what is final and what a re-run sends again, and
``throttle-lab batch --help`` for the command line.

The batch layer imports ``core`` and ``client`` only (and ``mock_server`` lazily, to simulate); the
notebook dashboard lives in :mod:`throttle_lab.lab.batch_dashboard`.
"""

from .estimate import BatchEstimate, estimate_batch
from .jsonl import BatchInput, BatchRequest, InputProblem, dialect_of, parse_requests, read_requests
from .limits import BatchLimits, limits_from_headers
from .outcomes import Outcome, classify
from .progress import ProgressSnapshot, TqdmProgress
from .results import ResultsFile, error_line, result_line
from .runner import endpoint, run_batch
from .simulate import simulate_batch
from .summary import EXIT_CODES, BatchSummary

__all__ = [
    "EXIT_CODES",
    "BatchEstimate",
    "BatchInput",
    "BatchLimits",
    "BatchRequest",
    "BatchSummary",
    "InputProblem",
    "Outcome",
    "ProgressSnapshot",
    "ResultsFile",
    "TqdmProgress",
    "classify",
    "dialect_of",
    "endpoint",
    "error_line",
    "estimate_batch",
    "limits_from_headers",
    "parse_requests",
    "read_requests",
    "result_line",
    "run_batch",
    "simulate_batch",
]
