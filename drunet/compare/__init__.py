"""``drunet compare``: several models, one split, one budget, one table."""

from drunet.compare.run import ModelReport, compare_models
from drunet.compare.tables import write_reports

__all__ = ["ModelReport", "compare_models", "write_reports"]
