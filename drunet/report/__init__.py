"""HTML reports of ``drunet evaluate`` and ``drunet compare``: one self-contained page each."""

from drunet.report.cases import CaseCollector
from drunet.report.evaluate_report import REPORT_NAME, write_evaluation_report

__all__ = ["REPORT_NAME", "CaseCollector", "write_evaluation_report"]
