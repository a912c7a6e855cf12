"""Evaluation against reference masks: a model on a dataset, or a folder of predictions against
truth masks — per-image and per-stack scores, HD95, ``summary.json`` and ``report.html``.

``run_evaluation(EvaluateJob(...))`` does everything ``drunet evaluate`` does; the parts are
:func:`evaluate` (a :class:`~drunet.inference.Predictor` on dataset pairs),
:func:`evaluate_folder` (existing predictions), :func:`write_evaluation` and
:func:`write_evaluation_report`. ``evaluation`` imports ``inference`` (it predicts), never the
other way round.
"""

from drunet.evaluation.cases import CaseCollector
from drunet.evaluation.folder import count_classes, evaluate_folder, folder_cases
from drunet.evaluation.job import EvaluateJob, EvaluationResult, Started, run_evaluation
from drunet.evaluation.model import evaluate, evaluation_pairs
from drunet.evaluation.report import REPORT_NAME, write_evaluation_report
from drunet.evaluation.result import Evaluation, ScoredCase
from drunet.evaluation.write import write_evaluation

__all__ = [
    "REPORT_NAME",
    "CaseCollector",
    "EvaluateJob",
    "Evaluation",
    "EvaluationResult",
    "ScoredCase",
    "Started",
    "count_classes",
    "evaluate",
    "evaluate_folder",
    "evaluation_pairs",
    "folder_cases",
    "run_evaluation",
    "write_evaluation",
    "write_evaluation_report",
]
