"""``drunet evaluate`` as a typed job and the one function that runs it.

:class:`EvaluateJob` holds every setting of the command (its fields are the command's options,
one for one) and :func:`run_evaluation` does all of it: check the settings, claim the output
names (never replacing a file drunet did not write, unless ``overwrite``), score a model on a
dataset or a folder of predictions against truth masks, and write ``per_image.csv``,
``summary.json``, ``per_stack.csv`` (stacks) and ``report.html`` (``report``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from drunet.device import resolve_device
from drunet.errors import DrunetError
from drunet.evaluation.cases import CaseCollector
from drunet.evaluation.distance import Spacing
from drunet.evaluation.folder import MAX_CLASSES, count_classes, evaluate_folder
from drunet.evaluation.model import SPLITS, Split, evaluate, evaluation_pairs
from drunet.evaluation.report import REPORT_NAME, write_evaluation_report
from drunet.evaluation.result import Evaluation
from drunet.evaluation.write import (
    PER_IMAGE_CSV,
    PER_STACK_CSV,
    SUMMARY_JSON,
    per_stack_path,
    write_evaluation,
)
from drunet.inference import Predictor
from drunet.inference.options import PredictSettings
from drunet.outputs import claim_outputs


@dataclass(frozen=True)
class EvaluateJob(PredictSettings):
    """Every setting of ``drunet evaluate`` (see ``drunet evaluate --help`` for each).

    Model mode (``pred`` None): predict the images of ``data`` (default: the run's own data
    folder) with ``model`` (default: the latest run in ``runs_dir``), ``split`` of them, with
    the prediction settings of :class:`~drunet.inference.options.PredictSettings`. Folder mode:
    score the predictions in ``pred`` against the masks in ``truth`` (classes: ``classes``, or
    the truth masks'); ``stack`` names numbered 2D slices. Both: ``hd95`` (``spacing`` implies
    it), ``report`` with its ``worst`` cases, ``absent_as_one`` (score classes absent from
    prediction and truth 1.0 instead of leaving them out), ``overwrite`` (replace files in
    ``out`` that drunet did not write).
    """

    model: str | None = None
    data: Path | None = None
    split: Split | str = "all"
    out: Path = Path("evaluation")
    hd95: bool = False
    spacing: Spacing | None = None
    report: bool = False
    worst: int = 12
    pred: Path | None = None
    truth: Path | None = None
    stack: str | None = None
    classes: int | None = None
    absent_as_one: bool = False
    overwrite: bool = False
    runs_dir: Path = Path("runs")

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise DrunetError(f"split {self.split!r} is not one of {', '.join(SPLITS)}")
        if self.worst < 0:
            raise DrunetError(f"worst must be 0 or more, got {self.worst}")
        if self.classes is not None and not 2 <= self.classes <= MAX_CLASSES:
            raise DrunetError(
                f"--classes {self.classes}: between 2 (binary) and {MAX_CLASSES} (a confusion "
                "matrix of classes² cells per image)"
            )
        if self.pred is not None:
            if self.truth is None:
                raise DrunetError("--pred needs --truth MASK_DIR: the masks to score against")
            if self.model is not None or self.data is not None:
                raise DrunetError("--pred scores existing predictions: drop --model and --data")
            return
        if self.truth is not None:
            raise DrunetError("--truth goes with --pred PRED_DIR; with a model use --data")
        if self.stack is not None:
            raise DrunetError(
                "--stack goes with --pred; with a model the run's data.layout.stack names the "
                "slices"
            )
        if self.classes is not None:
            raise DrunetError("--classes goes with --pred; a model's classes are the run's")
        self.predict_options()  # a bad or unbounded prediction setting fails here, before work

    @property
    def with_hd95(self) -> bool:
        return self.hd95 or self.spacing is not None

    @property
    def outputs(self) -> list[str]:
        """The file names the job may write into ``out`` (claimed before any work)."""
        return [PER_IMAGE_CSV, SUMMARY_JSON, PER_STACK_CSV, *([REPORT_NAME] * self.report)]


@dataclass(frozen=True)
class Started:
    """What :func:`run_evaluation` reports before scoring (the CLI prints it)."""

    source: dict[str, str]  # model / data / split, or predictions / truth
    device: str | None = None  # model mode: where and in which precision the network runs
    precision: str | None = None
    total: int | None = None  # cases to score, when known


@dataclass
class EvaluationResult:
    """The scores, the summary as written, and the files written (none when nothing could be
    scored: ``evaluation.failed`` says why)."""

    evaluation: Evaluation
    summary: dict
    written: list[Path] = field(default_factory=list)


def run_evaluation(
    job: EvaluateJob,
    on_start: Callable[[Started], None] | None = None,
    on_done: Callable[[], None] | None = None,
) -> EvaluationResult:
    """Run ``job`` (see the module); ``on_start`` once before scoring, ``on_done`` after each
    case. Errors in the settings, the model or the folders raise ``DrunetError``; a case that
    cannot be scored is listed in ``evaluation.failed`` and the others are scored."""
    score = _score_folder if job.pred is not None else _score_model
    scored = score(job, on_start or (lambda _: None), on_done or (lambda: None))
    evaluation, source = scored.evaluation, scored.source
    summary = {**source, **evaluation.summary()}
    if not evaluation.num_images:
        return EvaluationResult(evaluation, summary)
    written = list(write_evaluation(evaluation, job.out, source))
    if evaluation.has_stacks:
        written.insert(1, per_stack_path(job.out))
    if scored.cases is not None:
        meta = [f"{key}: {value}" for key, value in source.items()]
        report = write_evaluation_report(evaluation, scored.cases, job.out, meta, scored.run_dir)
        written.append(report)
    return EvaluationResult(evaluation, summary, written)


@dataclass
class _Scored:
    evaluation: Evaluation
    source: dict[str, str]  # where the cases came from: summary.json's first keys
    cases: CaseCollector | None  # the report's, with --report
    run_dir: Path | None = None  # the run whose training curves the report shows


def _score_folder(
    job: EvaluateJob, on_start: Callable[[Started], None], on_done: Callable[[], None]
) -> _Scored:
    """Predictions in ``job.pred`` against the masks in ``job.truth``."""
    assert job.pred is not None and job.truth is not None
    classes_from = f"--classes {job.classes}" if job.classes else "the truth masks"
    num_classes = job.classes or count_classes(job.truth)
    source = {"predictions": str(job.pred), "truth": str(job.truth)}
    claim_outputs(job.out, job.outputs, overwrite=job.overwrite)
    cases = _collector(job, num_classes, None)
    on_start(Started(source))
    evaluation = evaluate_folder(
        job.pred,
        job.truth,
        job.with_hd95,
        job.spacing,
        num_classes,
        on_done=lambda _: on_done(),
        on_case=cases,
        stack=job.stack,
        absent_as_one=job.absent_as_one,
        classes_from=classes_from,
    )
    return _Scored(evaluation, source, cases)


def _score_model(
    job: EvaluateJob, on_start: Callable[[Started], None], on_done: Callable[[], None]
) -> _Scored:
    """The model's predictions of the images of ``job.data`` against their masks."""
    options, device = job.predict_options(), resolve_device(job.device)
    predictor = Predictor.from_run(job.model, runs_dir=job.runs_dir, device=device, options=options)
    pairs, data = evaluation_pairs(job.data, predictor.config, job.split)
    source = {"model": str(predictor.weights_path), "data": data, "split": job.split}
    claim_outputs(job.out, job.outputs, overwrite=job.overwrite)
    cases = _collector(job, predictor.num_classes, predictor.config.data.masks.ignore_index)
    on_start(Started(source, str(predictor.device), predictor.precision.name, len(pairs)))
    evaluation = evaluate(
        predictor,
        pairs,
        job.with_hd95,
        on_done=lambda _: on_done(),
        spacing=job.spacing,
        on_case=cases,
        absent_as_one=job.absent_as_one,
    )
    return _Scored(evaluation, source, cases, _run_with_history(predictor))


def _collector(job: EvaluateJob, num_classes: int, ignore: int | None) -> CaseCollector | None:
    return CaseCollector(num_classes, ignore, job.worst, job.absent_as_one) if job.report else None


def _run_with_history(predictor: Predictor) -> Path | None:
    """The run folder of the weights when it holds training curves (the report shows them)."""
    run = predictor.weights_path.parent if predictor.weights_path is not None else None
    return run if run is not None and (run / "metrics.csv").is_file() else None
