"""``train(config)`` and ``resume(run_dir)``: data → model → Trainer → run folder.

The CLI, ``drunet compare`` and the demo only call these. :func:`_run` is wiring only: it builds
the device and precision, model, loaders, optimiser and schedule, then a
:class:`~drunet.engine.trainer.Trainer` whose per-epoch callback, a
:class:`~drunet.engine.run_writer.RunWriter`, writes everything the run folder receives
(best/last weights, ``state.pt``, ``metrics.csv``, ``progress.png``, TensorBoard events).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from drunet import checkpoint as runs
from drunet.atomic import remove_stale_temporaries
from drunet.checkpoint import build_model
from drunet.config import ExperimentConfig, TrainConfig, load_config, save_config
from drunet.datasets import Pair
from drunet.device import Precision, resolve_device, select_precision
from drunet.engine.best import BestTracker
from drunet.engine.criterion import build_criterion
from drunet.engine.data import make_loaders, prepare_config, seed_everything
from drunet.engine.distributed import DistContext, distributed, wrap_model
from drunet.engine.history import EpochRecord
from drunet.engine.optim import build_optimizer, build_scheduler, resumed_anchor
from drunet.engine.run_dir import create_run_dir
from drunet.engine.run_writer import RunWriter
from drunet.engine.state import load_state, restore_rng, restore_state
from drunet.engine.trainer import Budget, NonFiniteLoss, Reporter, Trainer
from drunet.errors import DrunetError
from drunet.heap import keep_freed_memory
from drunet.sliding import DEFAULT_MAX_PIXELS
from drunet.weights import init_from, load_encoder_weights

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

    @property
    def best_weights(self) -> Path:
        return self.run_dir / runs.BEST


def train(config: ExperimentConfig, reporter: Reporter | None = None) -> RunResult:
    """Train the configured model into a new run folder ``runs_dir/<name>/``.

    Under ``torchrun`` every rank calls this; rank 0 creates the folder and writes all files.
    """
    config, train_pairs, val_pairs = prepare_config(config)
    build_criterion(config)  # a bad loss spec fails here, before a run folder exists
    start = _start_weights(config)  # so do unreadable or unfitting weights to start from
    device = resolve_device(config.train.device)
    select_precision(device, config.train.precision, training=True)  # and a bad DRUNET_CPU_BF16
    if device.type == "cpu":
        keep_freed_memory()  # and a bad DRUNET_KEEP_HEAP
    with distributed(device.type) as context:
        run_dir = None
        if context.is_main:
            run_dir = create_run_dir(config.runs_dir, config.name, config.model.name)
        run_dir = Path(str(context.broadcast_object(str(run_dir) if run_dir else None)))
        config.name = run_dir.name
        if context.is_main:
            save_config(config, run_dir / runs.CONFIG)
        log.info("run folder %s", run_dir)
        return _run(config, run_dir, (train_pairs, val_pairs), reporter, context, start=start)


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
    remove_stale_temporaries(run_dir)  # half-written files of a killed run
    total = epochs if epochs is not None else config.train.epochs
    done = int(state["epoch"])
    if total < done:
        raise DrunetError(
            f"--epochs {total} is below the {done} epochs {run_dir} has already finished"
        )
    # A state.pt older than the schedule entry was trained for the total in config.yaml.
    schedule = {**state["schedule"], "epochs": state["schedule"]["epochs"] or config.train.epochs}
    anchor = resumed_anchor(schedule, state["scheduler"], total)
    config.train.epochs = total
    config, train_pairs, val_pairs = prepare_config(config)
    with distributed(resolve_device(config.train.device).type) as context:
        data = (train_pairs, val_pairs)
        return _run(config, run_dir, data, reporter, context, state, anchor)


def _configure_backends(config: ExperimentConfig, device: torch.device) -> None:
    if config.train.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        # cuDNN autotuning picks the fastest kernels for fixed patch sizes, but not reproducibly.
        torch.backends.cudnn.benchmark = not config.train.deterministic
        torch.backends.cudnn.deterministic = config.train.deterministic
    if device.type == "cpu":
        keep_freed_memory()  # large feature maps reused, not faulted in again every step


def _run(
    config: ExperimentConfig,
    run_dir: Path,
    data: tuple[list[Pair], list[Pair]],
    reporter: Reporter | None,
    context: DistContext,
    state: dict[str, Any] | None = None,
    anchor: tuple[int, float] | None = None,
    start: dict[str, torch.Tensor] | None = None,
) -> RunResult:
    """Wire the parts the configuration describes and fit; ``state`` continues a run whose
    schedule decays from ``anchor`` (see :func:`~drunet.engine.optim.resumed_anchor`)."""
    cfg = config.train
    seed_everything(cfg.seed)
    precision = _precision(config, context)
    model = _model(config, precision.device, start)
    train_loader, val_loader = make_loaders(config, *data, context.rank, context.world_size)
    optimizer = build_optimizer(model, cfg)
    budget = Budget(cfg.max_minutes * 60) if cfg.max_minutes else None
    scheduler = _scheduler(optimizer, cfg, len(train_loader), anchor, budget)
    scaler = torch.amp.GradScaler(precision.device.type, enabled=precision.use_grad_scaler)
    best = BestTracker(cfg.monitor, cfg.early_stopping)
    if state is not None:
        restore_state(state, run_dir / runs.STATE, model, optimizer, scheduler, scaler)
        best.epoch, best.score = int(state["best_epoch"]), float(state["best_score"])
    writer = RunWriter(run_dir, config, anchor) if context.is_main else None
    trainer = Trainer(
        _training_module(model, cfg, context),
        build_criterion(config).to(precision.device),
        optimizer,
        scheduler,
        train_loader,
        val_loader,
        config.model.spec().num_classes,
        precision,
        reporter,
        scaler=scaler,
        best=best,
        history=state["history"] if state is not None else None,
        callback=writer,
        accumulate=cfg.accumulate,
        grad_clip=cfg.grad_clip,
        channels_last=cfg.channels_last,
        ignore_index=config.data.masks.ignore_index,
        dist=context,
        budget=budget,
        val_tiles=(config.data.augmentation.patch_size, DEFAULT_MAX_PIXELS),
    )
    if state is not None:
        restore_rng(state, run_dir / runs.STATE)  # last: nothing after it may draw numbers
    with _closing(writer), _finite_loss_message(run_dir):
        trainer.fit(cfg.epochs, start_epoch=int(state["epoch"]) + 1 if state else 1)
    return _result(run_dir, config, trainer, model)


def _model(
    config: ExperimentConfig, device: torch.device, start: dict[str, torch.Tensor] | None
) -> nn.Module:
    """The configured network on ``device``, from ``start`` (fine-tuning) or fresh weights."""
    model = build_model(config)
    if start is not None:  # the weights _start_weights prepared
        model.load_state_dict(start)
    model = model.to(device)
    if config.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


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
    run_dir: Path, config: ExperimentConfig, trainer: Trainer, model: nn.Module
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
    )


def _start_weights(config: ExperimentConfig) -> dict[str, torch.Tensor] | None:
    """The state a fresh run starts from: ``train.init_from`` (another run's weights, see
    :func:`~drunet.weights.init_from`) and/or ``train.encoder_weights`` (an smp encoder
    file). ``None`` trains from scratch. The source is recorded as an absolute path."""
    cfg = config.train
    if cfg.init_from is None and cfg.encoder_weights is None:
        return None
    model = build_model(config)
    if cfg.init_from is not None:
        report = init_from(model, cfg.init_from)
        cfg.init_from = str(report.source.resolve())
        log.warning("%s", report.summary())  # shown by the CLI: what was kept from where
    if cfg.encoder_weights is not None:  # ConfigError for a family that takes none
        load_encoder_weights(model, cfg.encoder_weights)
    return model.state_dict()


def _precision(config: ExperimentConfig, context: DistContext) -> Precision:
    """The device this process trains on (its own GPU under DDP), its backend switches, AMP."""
    cfg = config.train
    device = resolve_device(cfg.device)
    if device.type == "cuda" and context.enabled:
        device = torch.device("cuda", context.local_rank)
    _configure_backends(config, device)
    return select_precision(device, cfg.precision, training=True)


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
