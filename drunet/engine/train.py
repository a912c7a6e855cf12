"""``train(config)`` and ``resume(run_dir)``: prepare → run folder → Trainer → result.

The CLI, ``drunet compare`` and the demo only call these. :func:`~drunet.engine.prepare.
prepare_training` builds every part of the run once, before the run folder exists; :func:`_run`
adds what depends on the run (optimiser, schedule, a resumed state) and fits, with a
:class:`~drunet.engine.run_folder.RunWriter` writing everything the run folder receives
(best/last weights, ``state.pt``, ``metrics.csv``, ``progress.png``, TensorBoard events); then
the mask clean-ups are chosen on validation (:mod:`~drunet.engine.postprocessing`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from torch import nn

from drunet import checkpoint as runs
from drunet.atomic import remove_stale_temporaries
from drunet.config import ExperimentConfig, TrainConfig, load_config, save_config, updated
from drunet.engine.distributed import DistContext, distributed, wrap_model
from drunet.engine.epochs import BestTracker, Budget, EpochRecord
from drunet.engine.optim import build_optimizer, build_scheduler, resumed_anchor
from drunet.engine.postprocessing import choose_postprocessing
from drunet.engine.prepare import PreparedRun, prepare_training
from drunet.engine.run_folder import RunWriter, create_run_dir
from drunet.engine.state import TrainingState, load_state, restore_rng, restore_state
from drunet.engine.trainer import NonFiniteLoss, Reporter, Trainer
from drunet.errors import DrunetError
from drunet.plan.postprocess import Selection

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """Where a finished run lives and how good its best epoch was."""

    run_dir: Path
    best_epoch: int
    best_score: float  # the monitored validation metric (Dice by default)
    history: list[EpochRecord]
    config: ExperimentConfig
    stopped_early: bool = False
    model: torch.nn.Module | None = None  # the trained model after the last epoch (eval mode)
    postprocessing: Selection | None = None  # the clean-ups chosen on validation, with scores

    @property
    def best_record(self) -> EpochRecord | None:
        """The best epoch's record (None before any epoch)."""
        return next((r for r in self.history if r.epoch == self.best_epoch), None)

    @property
    def best_weights(self) -> Path:
        return self.run_dir / runs.BEST


def train(config: ExperimentConfig, reporter: Reporter | None = None) -> RunResult:
    """Train the configured model into a new run folder ``runs_dir/<name>/``.

    Under ``torchrun`` every rank calls this; rank 0 creates the folder and writes all files.
    """
    return train_prepared(prepare_training(config), reporter)


def train_prepared(prepared: PreparedRun, reporter: Reporter | None = None) -> RunResult:
    """Train what :func:`~drunet.engine.prepare.prepare_training` built into a new run folder
    ``runs_dir/<name>/`` of its configuration."""
    with distributed(prepared.device.type) as context:
        run_dir, wanted = None, prepared.config
        if context.is_main:
            run_dir = create_run_dir(wanted.runs_dir, wanted.name, wanted.model.name)
        run_dir = Path(str(context.broadcast_object(str(run_dir) if run_dir else None)))
        config = updated(prepared.config, {"name": run_dir.name})
        if context.is_main:
            save_config(config, run_dir / runs.CONFIG)
        log.info("run folder %s", run_dir)
        return _run(dataclasses.replace(prepared, config=config), run_dir, reporter, context)


def resume(
    run_dir: str | Path, epochs: int | None = None, reporter: Reporter | None = None
) -> RunResult:
    """Continue a run from its last finished epoch, as if it had never stopped.

    ``epochs`` may change the total; the learning-rate decay then continues from where it was
    over the new remaining steps (no jump). The run folder is not touched before the first new
    epoch ends: the new total reaches ``config.yaml`` with that epoch's checkpoint, and
    ``state.pt`` keeps what defines the schedule, so a resume that is interrupted and resumed
    again trains exactly like one that was not.
    """
    run_dir = Path(run_dir)
    if not (run_dir / runs.CONFIG).is_file():
        raise DrunetError(f"cannot resume: {run_dir} is not a run folder (no {runs.CONFIG})")
    config = load_config(run_dir / runs.CONFIG)
    state = load_state(run_dir / runs.STATE)
    total = epochs if epochs is not None else config.train.epochs
    if total < state.epoch:
        raise DrunetError(
            f"--epochs {total} is below the {state.epoch} epochs {run_dir} has already finished"
        )
    # A state.pt older than the schedule entry was trained for the total in config.yaml.
    schedule = state.schedule
    if schedule.epochs is None:
        schedule = dataclasses.replace(schedule, epochs=config.train.epochs)
    anchor = resumed_anchor(schedule, state.scheduler, total)
    prepared = prepare_training(updated(config, {"train.epochs": total}), start_weights=False)
    remove_stale_temporaries(run_dir)  # half-written files of a killed run
    with distributed(prepared.device.type) as context:
        return _run(prepared, run_dir, reporter, context, state, anchor)


def _run(
    prepared: PreparedRun,
    run_dir: Path,
    reporter: Reporter | None,
    context: DistContext,
    state: TrainingState | None = None,
    anchor: tuple[int, float] | None = None,
) -> RunResult:
    """Add what depends on the run to the prepared parts and fit; ``state`` continues a run
    whose schedule decays from ``anchor`` (see :func:`~drunet.engine.optim.resumed_anchor`)."""
    config, cfg, model = prepared.config, prepared.config.train, prepared.model
    optimizer = build_optimizer(model, cfg)
    budget = Budget(cfg.max_minutes * 60) if cfg.max_minutes else None
    scheduler = _scheduler(optimizer, cfg, len(prepared.train_loader), anchor, budget)
    precision = prepared.options.precision
    scaler = torch.amp.GradScaler(precision.device.type, enabled=precision.use_grad_scaler)
    best = BestTracker(cfg.monitor, cfg.early_stopping)
    if state is not None:
        restore_state(state, run_dir / runs.STATE, model, optimizer, scheduler, scaler)
        best.epoch, best.score = state.best_epoch, state.best_score
    writer = RunWriter(run_dir, config, anchor) if context.is_main else None
    trainer = Trainer(
        _training_module(model, cfg, context),
        prepared.loss,
        optimizer,
        scheduler,
        prepared.train_loader,
        prepared.val_loader,
        prepared.options,
        reporter=reporter,
        scaler=scaler,
        best=best,
        history=state.history if state is not None else None,
        callback=writer,
        budget=budget,
    )
    if state is not None:
        restore_rng(state, run_dir / runs.STATE)  # last: nothing after it may draw numbers
    with _closing(writer), _finite_loss_message(run_dir):
        trainer.fit(cfg.epochs, start_epoch=state.epoch + 1 if state else 1)
    config, selection = choose_postprocessing(trainer, run_dir, config)
    return _result(run_dir, config, trainer, model, selection)


def _scheduler(
    optimizer: torch.optim.Optimizer,
    cfg: TrainConfig,
    batches_per_epoch: int,
    anchor: tuple[int, float] | None,
    budget: Budget | None,
) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule, stepped once per optimiser step (every ``accumulate``
    batches); under a time budget it follows the budget's progress rather than the epochs."""
    steps_per_epoch = max(1, batches_per_epoch // cfg.accumulate)
    progress = budget.progress if budget else None
    return build_scheduler(optimizer, cfg, steps_per_epoch, anchor, progress)


def _result(
    run_dir: Path,
    config: ExperimentConfig,
    trainer: Trainer,
    model: nn.Module,
    selection: Selection | None = None,
) -> RunResult:
    """What a finished ``fit`` returns; fewer epochs than configured means it stopped early."""
    finished = trainer.history[-1].epoch if trainer.history else 0
    return RunResult(
        run_dir,
        trainer.best.epoch,
        trainer.best.score,
        trainer.history,
        config,
        stopped_early=finished < config.train.epochs,
        model=model.eval(),
        postprocessing=selection,
    )


@contextlib.contextmanager
def _closing(writer: RunWriter | None) -> Iterator[None]:
    try:
        yield
    finally:
        if writer is not None:
            writer.close()


@contextlib.contextmanager
def _finite_loss_message(run_dir: Path) -> Iterator[None]:
    """A NaN/Inf loss names the last good weights (the previous epoch's)."""
    try:
        yield
    except NonFiniteLoss as err:
        kept = run_dir / runs.LAST
        where = f"the last good weights are in {kept}" if kept.exists() else "no epoch finished"
        raise NonFiniteLoss(f"{err}. Training stopped; {where}") from None


def _training_module(model: nn.Module, cfg: TrainConfig, context: DistContext) -> nn.Module:
    """What the training forward passes call: DDP-wrapped under torchrun, maybe compiled."""
    module = wrap_model(model, context, cfg.sync_bn)
    return cast(nn.Module, torch.compile(module)) if cfg.compile else module
