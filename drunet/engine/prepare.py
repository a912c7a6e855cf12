"""One preparation step before a run folder exists: everything a run needs, built once.

:func:`prepare_training` reads the launcher's environment, finds and checks the data (filling
what it decides: channels, classes, normalisation), resolves the device and chooses the
precision once, builds the loss and the model with its starting weights (``train.init_from`` /
``train.encoder_weights``) once, and makes the loaders. Any mistake — a malformed ``RANK``, a
bad loss term, unreadable weights to start from, a device that is not there — is raised here,
so a run that cannot start leaves nothing behind. The configuration is never changed: what the
preparation decides is in the copy it returns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader

from drunet.checkpoint import build_model
from drunet.config import ExperimentConfig, TrainConfig, updated
from drunet.device import resolve_device, select_precision
from drunet.engine.data import make_loaders, prepare_data, seed_everything
from drunet.engine.distributed import DistContext, launch_context
from drunet.engine.trainer import TrainerOptions
from drunet.errors import ConfigError
from drunet.heap import keep_freed_memory
from drunet.losses import build_loss
from drunet.sliding import DEFAULT_MAX_PIXELS
from drunet.weights import init_from, load_encoder_weights

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedRun:
    """What a run is built from: the final configuration (filled from the data, the preset
    pinned, the ``init_from`` source an absolute path), the model on its device with its
    starting weights, the loss, the loaders and the trainer's options."""

    config: ExperimentConfig
    model: nn.Module
    loss: nn.Module
    train_loader: DataLoader
    val_loader: DataLoader
    options: TrainerOptions

    @property
    def device(self) -> torch.device:
        return self.options.precision.device


def prepare_training(config: ExperimentConfig, *, start_weights: bool = True) -> PreparedRun:
    """Build every part of a run from ``config``; ``start_weights=False`` (a resumed run, whose
    weights come from ``state.pt``) skips ``init_from`` / ``encoder_weights``."""
    context = launch_context()  # a malformed torchrun variable is named before anything else
    data = prepare_data(config)
    config, cfg = data.config, data.config.train
    device = _process_device(cfg.device, context)
    precision = select_precision(device, cfg.precision, training=True)  # and DRUNET_CPU_BF16
    _configure_backends(cfg, device)
    loss = build_criterion(config).to(device)
    seed_everything(cfg.seed)  # the model's initial weights depend on the seed alone
    model, config = _model(config, device, start_weights)
    rank, world = context.rank, context.world_size
    train_loader, val_loader = make_loaders(config, data.train, data.val, rank, world, device)
    options = TrainerOptions(
        num_classes=config.model.spec().num_classes,
        precision=precision,
        accumulate=cfg.accumulate,
        grad_clip=cfg.grad_clip,
        ignore_index=config.data.masks.ignore_index,
        val_tiles=(config.data.augmentation.patch_size, DEFAULT_MAX_PIXELS),
        dist=context,
    )
    return PreparedRun(config, model, loss, train_loader, val_loader, options)


def build_criterion(config: ExperimentConfig) -> nn.Module:
    """The configured loss (``loss:`` terms, default Dice + CE); a mistake the types cannot
    catch (``class_weights`` of the wrong length) is a ``ConfigError`` naming ``loss[i]``.
    Needs the resolved class count."""
    terms = None if config.loss is None else [term.model_dump() for term in config.loss]
    try:
        return build_loss(
            terms,
            config.model.spec().num_classes,
            ignore_index=config.data.masks.ignore_index,
        )
    except ValueError as err:
        raise ConfigError(f"invalid loss configuration: {err}") from None


def _process_device(requested: str, context: DistContext) -> torch.device:
    """The device this process trains on: ``train.device``, and under DDP on CUDA its own GPU."""
    device = resolve_device(requested, source="train.device")
    if device.type == "cuda" and context.enabled:
        device = torch.device("cuda", context.local_rank)
    return device


def _configure_backends(cfg: TrainConfig, device: torch.device) -> None:
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        # cuDNN autotuning picks the fastest kernels for fixed patch sizes, but not reproducibly.
        torch.backends.cudnn.benchmark = not cfg.deterministic
        torch.backends.cudnn.deterministic = cfg.deterministic
    if device.type == "cpu":
        keep_freed_memory()  # large feature maps reused, not faulted in again (DRUNET_KEEP_HEAP)


def _model(
    config: ExperimentConfig, device: torch.device, start_weights: bool
) -> tuple[nn.Module, ExperimentConfig]:
    """The configured network on ``device`` (in its own memory format:
    ``model.params.channels_last``), from its starting weights, and the configuration recording
    where they came from."""
    model = build_model(config)
    if start_weights:
        config = _load_start_weights(model, config)
    return model.to(device), config


def _load_start_weights(model: nn.Module, config: ExperimentConfig) -> ExperimentConfig:
    """Load ``train.init_from`` (another run's weights, see
    :func:`~drunet.weights.init_from`) and/or ``train.encoder_weights`` (an smp encoder
    file) into ``model``; the source is recorded as an absolute path (a Hub model as
    ``hf:org/name@commit``)."""
    cfg = config.train
    if cfg.init_from is not None:
        report = init_from(model, cfg.init_from)
        config = updated(config, {"train.init_from": report.recorded})
        log.warning("%s", report.summary())  # shown by the CLI: what was kept from where
    if cfg.encoder_weights is not None:  # ConfigError for a family that takes none
        load_encoder_weights(model, cfg.encoder_weights)
    return config
