"""``drunet verify``: every problem of a dataset, one line each, and what training would use.

``report`` reads each pair once and builds the ``VerifyReport``; ``checks`` holds the
dataset-wide checks on compact per-pair records. Problems are ``drunet.datasets.problems.Problem``
(shared with ``discover``, which reports unmatched files the same way).
"""

from drunet.datasets.verify.report import (
    VerifyReport,
    VerifySummary,
    format_problem_lines,
    format_summary_lines,
    verify_dataset,
)

__all__ = [
    "VerifyReport",
    "VerifySummary",
    "format_problem_lines",
    "format_summary_lines",
    "verify_dataset",
]
