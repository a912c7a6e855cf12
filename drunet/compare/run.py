"""Train every model of a comparison with the same data, split, loss and budget."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from drunet.compare.measure import count_parameters, evaluate_held_out, forward_gflops
from drunet.config import ExperimentConfig, ModelConfig
from drunet.datasets import Pair
from drunet.engine.data import prepare_data
from drunet.engine.epochs import EpochRecord
from drunet.engine.train import train
from drunet.engine.trainer import Reporter
from drunet.errors import ConfigError, DrunetError
from drunet.inference import Predictor
from drunet.models.registry import check_name
from drunet.outputs import check_outputs
from drunet.report.compare_report import REPORT_NAME

# What a comparison writes in its folder besides runs/<model>/ (see drunet.compare.tables).
OUTPUT_FILES = {
    "json": "compare.json",
    "csv": "compare.csv",
    "md": "compare.md",
    "curves": "curves.png",
    "figure": "predictions.png",
    "report": REPORT_NAME,
}

log = logging.getLogger(__name__)


@dataclass
class ModelReport:
    """One model's result in a comparison."""

    model: str
    run_dir: str
    epochs: int
    train_minutes: float
    scores: dict[str, float]  # held-out dice, iou, precision, recall (+ adapted_rand_error)
    parameters: int
    gflops: float  # forward, one patch
    train_images_per_second: float
    inference_images_per_second: float
    history: list[EpochRecord] = field(default_factory=list, repr=False)
    predictions: list = field(default_factory=list, repr=False)

    def to_json(self) -> dict:
        data = asdict(self)
        data["history"] = [asdict(r) for r in self.history]
        data.pop("predictions")
        return data


def model_config(base: ExperimentConfig, name: str, runs_dir: Path) -> ExperimentConfig:
    """``base`` for model ``name``: its own parameters only when ``base`` names it."""
    try:
        resolved = check_name(name)
    except ValueError as err:
        raise ConfigError(f"--models: {err}") from None
    config = base.model_copy(deep=True)
    model = config.model
    if model.name != resolved:  # another model: its own default arguments
        config.model = ModelConfig(
            name=name, in_channels=model.in_channels, num_classes=model.num_classes
        )
    config.runs_dir = runs_dir
    config.name = name.replace(":", "-")  # a folder name: smp:Unet:resnet18 → smp-Unet-resnet18
    return config


def check_out_dir(out_dir: str | Path, models: list[str], overwrite: bool = False) -> None:
    """Refuse, before any training, an ``out_dir`` that already holds runs of ``models`` (runs
    are never overwritten) or a file at a table's name that drunet did not write (unless
    ``overwrite``)."""
    runs = Path(out_dir) / "runs"
    if any((runs / name).exists() for name in models):
        raise DrunetError(
            f"{runs} already holds runs of {', '.join(models)}; choose another --out "
            "(results are never overwritten)"
        )
    check_outputs(out_dir, OUTPUT_FILES.values(), overwrite=overwrite)


def compare_models(
    base: ExperimentConfig,
    models: list[str],
    out_dir: str | Path,
    reporter_factory: Callable[[str], Reporter | None] | None = None,
    device: str | torch.device | None = None,
    overwrite: bool = False,
) -> tuple[list[ModelReport], list[Pair]]:
    """Train each model in turn into ``out_dir/runs/<model>`` and score it on the held-out
    (validation) split shared by all of them. Returns the reports and the held-out pairs.
    ``device`` is where the held-out images are predicted (``None``: ``$DRUNET_DEVICE``, else
    auto); training runs on ``base.train.device``. Refuses first what :func:`check_out_dir`
    refuses."""
    out_dir = Path(out_dir)
    check_out_dir(out_dir, models, overwrite)
    prepared = prepare_data(base)  # one split, one normalisation for every model
    base, held_out = prepared.config, prepared.val
    is_binary = base.model.num_classes == 2
    reports = []
    for name in models:
        config = model_config(base, name, out_dir / "runs")
        log.info("training %s", name)
        reporter = reporter_factory(name) if reporter_factory else None
        result = train(config, reporter=reporter)
        predictor = Predictor.from_run(result.run_dir, device=device)
        scores, inference_ips, predictions = evaluate_held_out(predictor, held_out, is_binary)
        history = result.history
        samples = sum(r.samples for r in history)
        train_seconds = sum(r.train_seconds for r in history)
        patch = config.data.augmentation.patch_size
        reports.append(
            ModelReport(
                model=name,
                run_dir=str(result.run_dir),
                epochs=len(history),
                train_minutes=sum(r.seconds for r in history) / 60,
                scores=scores,
                parameters=count_parameters(predictor.model),
                gflops=forward_gflops(predictor.model, predictor.in_channels, patch),
                train_images_per_second=samples / train_seconds if train_seconds else 0.0,
                inference_images_per_second=inference_ips,
                history=history,
                predictions=predictions,
            )
        )
    return reports, held_out
