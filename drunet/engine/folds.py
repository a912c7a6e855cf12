"""``train_folds(config)``: every fold of a k-fold cross-validation, one after the other, into
one parent folder, and the cross-validated score (mean ± std over the folds)."""

from __future__ import annotations

import dataclasses
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from drunet.atomic import atomic_write_text
from drunet.config import ExperimentConfig, updated
from drunet.engine.prepare import prepare_training
from drunet.engine.run_folder import create_run_dir
from drunet.engine.train import RunResult, train_prepared
from drunet.engine.trainer import Reporter

SUMMARY = "cv.json"


@dataclass
class CrossValidation:
    """The parent folder, each fold's run and the monitored score over the folds."""

    parent: Path
    runs: list[RunResult]

    @property
    def scores(self) -> list[float]:
        return [run.best_score for run in self.runs]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores)

    @property
    def std(self) -> float:
        """Sample standard deviation over the folds (0 for one fold)."""
        return statistics.stdev(self.scores) if len(self.scores) > 1 else 0.0


def train_folds(config: ExperimentConfig, reporter: Reporter | None = None) -> CrossValidation:
    """Train fold 0 … ``data.layout.folds - 1`` into ``runs_dir/<name>/fold<k>/`` and write
    ``cv.json`` (per-fold and mean ± std of the monitored metric) into the parent after each
    fold, so an interrupted cross-validation shows what finished. The parent folder is created
    once the first fold is prepared: data that cannot train leaves no folder behind."""
    folds = config.data.layout.folds
    parent: Path | None = None
    runs: list[RunResult] = []
    for fold in range(folds):
        prepared = prepare_training(updated(config, {"data.layout.fold": fold}))
        if parent is None:
            parent = create_run_dir(config.runs_dir, config.name, f"{config.model.name}-cv")
        fold_config = updated(prepared.config, {"runs_dir": parent, "name": f"fold{fold}"})
        runs.append(train_prepared(dataclasses.replace(prepared, config=fold_config), reporter))
        result = CrossValidation(parent, runs)
        _write_summary(result, config.train.monitor, folds)
    assert parent is not None  # folds >= 2
    return CrossValidation(parent, runs)


def _write_summary(result: CrossValidation, monitor: str, folds: int) -> None:
    summary = {
        "monitor": monitor,
        "folds": folds,
        "finished": len(result.runs),
        "scores": {run.run_dir.name: run.best_score for run in result.runs},
        "mean": result.mean,
        "std": result.std,
    }
    atomic_write_text(result.parent / SUMMARY, json.dumps(summary, indent=2) + "\n")
