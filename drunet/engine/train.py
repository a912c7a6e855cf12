"""``train(config)`` and ``resume(run_dir)``: data → model → Trainer → run folder.

The CLI only calls these. Every epoch the run folder receives ``metrics.csv``,
``progress.png``, ``last.safetensors``, ``state.pt`` (optimiser, schedule, scaler, RNG, history:
what ``resume`` needs) and, when the monitored metric improved, ``best.safetensors``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from drunet.atomic import remove_stale_temporaries
from drunet.config import ExperimentConfig, load_config, save_config
from drunet import checkpoint as runs
from drunet.checkpoint import build_model, save_config_and_weights, unwrap
from drunet.engine.run_dir import create_run_dir
from drunet.engine.criterion import build_criterion
from drunet.engine.data import make_loaders, prepare_config, seed_everything
from drunet.engine.device import select_device, select_precision
from drunet.engine.distributed import DistContext, init_distributed, wrap_model
from drunet.engine.history import EpochRecord, write_metrics_csv
from drunet.engine.optim import build_optimizer, lr_factor
from drunet.engine.plots import plot_progress
from drunet.engine.state import load_state, save_state, set_rng_state
from drunet.engine.tensorboard import open_event_log
from drunet.engine.trainer import Budget, NonFiniteLoss, Reporter, Trainer
from drunet.errors import DrunetError

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
    context = init_distributed(select_device(config.train.device).type)
    run_dir = None
    if context.is_main:
        run_dir = create_run_dir(config.runs_dir, config.name, config.model.name)
    run_dir = Path(str(context.broadcast_object(str(run_dir) if run_dir else None)))
    config.name = run_dir.name
    if context.is_main:
        save_config(config, run_dir / runs.CONFIG)
    log.info("run folder %s", run_dir)
    return _run(config, run_dir, train_pairs, val_pairs, reporter, state=None, context=context)


def resume(
    run_dir: str | Path, epochs: int | None = None, reporter: Reporter | None = None
) -> RunResult:
    """Continue a run from its last finished epoch, as if it had never stopped.

    ``epochs`` may raise the total; the learning-rate decay then continues from where it was
    over the new remaining steps (no jump).
    """
    run_dir = Path(run_dir)
    if not (run_dir / runs.CONFIG).is_file():
        raise DrunetError(f"cannot resume: {run_dir} is not a run folder (no {runs.CONFIG})")
    config = load_config(run_dir / runs.CONFIG)
    state = load_state(run_dir / runs.STATE)
    remove_stale_temporaries(run_dir)  # half-written files of a killed run
    done = int(state["epoch"])
    if epochs is not None:
        if epochs < done:
            raise DrunetError(
                f"--epochs {epochs} is below the {done} epochs {run_dir} has already finished"
            )
        if epochs != config.train.epochs:
            state["extend_from"] = config.train.epochs
            config.train.epochs = epochs
    config, train_pairs, val_pairs = prepare_config(config)
    context = init_distributed(select_device(config.train.device).type)
    if context.is_main:
        save_config(config, run_dir / runs.CONFIG)
    return _run(config, run_dir, train_pairs, val_pairs, reporter, state=state, context=context)


@contextlib.contextmanager
def _state_mismatch(run_dir: Path) -> Iterator[None]:
    """A ``state.pt`` that does not fit the run's ``config.yaml`` is a user error, not a crash."""
    try:
        yield
    except (RuntimeError, KeyError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DrunetError(
            f"cannot resume {run_dir}: {runs.STATE} was written for another model or configuration "
            f"than {run_dir / runs.CONFIG} ({reason}); restore the run's config.yaml or start a "
            "new run"
        ) from None


def _configure_backends(config: ExperimentConfig, device: torch.device) -> None:
    if config.train.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        # cuDNN autotuning picks the fastest kernels for fixed patch sizes, but not reproducibly.
        torch.backends.cudnn.benchmark = not config.train.deterministic
        torch.backends.cudnn.deterministic = config.train.deterministic


def _run(
    config: ExperimentConfig,
    run_dir: Path,
    train_pairs: list,
    val_pairs: list,
    reporter: Reporter | None,
    state: dict[str, Any] | None,
    context: DistContext,
) -> RunResult:
    cfg = config.train
    seed_everything(cfg.seed)
    device = select_device(cfg.device)
    if device.type == "cuda" and context.enabled:
        device = torch.device("cuda", context.local_rank)
    _configure_backends(config, device)
    precision = select_precision(device, cfg.amp, cpu_bf16=cfg.cpu_bf16)
    model = build_model(config).to(device)
    if state is not None:
        with _state_mismatch(run_dir):
            model.load_state_dict(state["model"])
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    train_loader, val_loader = make_loaders(
        config, train_pairs, val_pairs, context.rank, context.world_size
    )
    optimizer = build_optimizer(model, cfg)
    steps_per_epoch = max(1, len(train_loader) // cfg.accumulate)
    anchor = _lr_anchor(state, steps_per_epoch)
    budget = Budget(cfg.max_minutes * 60) if cfg.max_minutes else None
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lr_factor(
            cfg,
            cfg.epochs * steps_per_epoch,
            cfg.warmup_epochs * steps_per_epoch,
            anchor,
            time_progress=budget.progress if budget else None,
        ),
    )
    forward_model = wrap_model(model, context, cfg.sync_bn)
    if cfg.compile:
        forward_model = torch.compile(forward_model)
    history: list[EpochRecord] = []
    best = {"epoch": 0, "score": -1.0}
    if state is not None:
        with _state_mismatch(run_dir):
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        history = list(state["history"])
        best = {"epoch": state["best_epoch"], "score": state["best_score"]}
    monitor = cfg.monitor
    first_epoch = int(state["epoch"]) + 1 if state is not None else 1
    events = open_event_log(run_dir, cfg.tensorboard, first_epoch) if context.is_main else None

    # The callback must not reference ``trainer``: that cycle would leave the persistent loader
    # workers to the cyclic garbage collector, whose shutdown of them hangs for 5 s.
    def on_epoch_end(record: EpochRecord) -> bool:
        history.append(record)
        patience = cfg.early_stopping
        improved = record.scores[monitor] > best["score"]
        if improved:
            best.update(epoch=record.epoch, score=record.scores[monitor])
        if not context.is_main:  # every rank holds the same scores; only rank 0 writes
            return patience is not None and record.epoch - best["epoch"] >= patience
        if improved:
            save_config_and_weights(run_dir, runs.BEST, model, config)
        save_config_and_weights(run_dir, runs.LAST, model, config)
        save_state(
            run_dir / runs.STATE,
            epoch=record.epoch,
            model=unwrap(model),
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=scaler,
            best_epoch=int(best["epoch"]),
            best_score=float(best["score"]),
            history=history,
            extra={"lr_anchor": list(anchor) if anchor else None},
        )
        write_metrics_csv(run_dir / runs.METRICS, history)
        plot_progress(history, run_dir / "progress.png", config.data.masks.class_names)
        if events is not None:
            events.add_epoch(record)
        return patience is not None and record.epoch - best["epoch"] >= patience

    trainer = Trainer(
        forward_model,
        build_criterion(config).to(device),
        optimizer,
        scheduler,
        train_loader,
        val_loader,
        config.model.num_classes,
        precision,
        reporter=reporter,
        on_epoch_end=on_epoch_end,
        accumulate=cfg.accumulate,
        grad_clip=cfg.grad_clip,
        channels_last=cfg.channels_last,
        ignore_index=config.data.masks.ignore_index,
        dist=context,
        budget=budget,
    )
    scaler = trainer.scaler
    if state is not None:
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
    try:
        trainer.fit(cfg.epochs, start_epoch=first_epoch)
    except NonFiniteLoss as err:
        kept = run_dir / runs.LAST
        where = f"the last good weights are in {kept}" if kept.exists() else "no epoch finished"
        raise NonFiniteLoss(f"{err}. Training stopped; {where}") from None
    finally:
        if events is not None:
            events.close()
    finished = history[-1].epoch if history else 0
    return RunResult(
        run_dir,
        int(best["epoch"]),
        float(best["score"]),
        history,
        config,
        stopped_early=finished < cfg.epochs,
        model=model.eval(),
    )


def _lr_anchor(state: dict[str, Any] | None, steps_per_epoch: int) -> tuple[int, float] | None:
    """Where a resumed schedule restarts its decay: kept from an earlier extension, or set now
    (at the current step and factor) when this resume raised the epoch count."""
    if state is None:
        return None
    if "extend_from" in state:
        scheduler = state["scheduler"]
        step = int(scheduler["last_epoch"])
        factor = scheduler["_last_lr"][0] / scheduler["base_lrs"][0]
        return step, factor
    anchor = state.get("extra", {}).get("lr_anchor")
    return (int(anchor[0]), float(anchor[1])) if anchor else None
