"""The training loop as small hooks: ``train_step``, ``validation_step``, ``on_epoch_end``.

The trainer hard-codes no hyper-parameter: it receives the model, loss, optimiser, schedule and
loaders already built from the configuration (see :mod:`drunet.engine.train`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Protocol

import torch
from torch import nn

from drunet.engine.device import Precision
from drunet.engine.history import EpochRecord
from drunet.errors import DrunetError
from drunet.metrics import ConfusionMeter, logits_to_labels

Batch = tuple[torch.Tensor, torch.Tensor]  # images (N, C, H, W) float, masks (N, H, W) int64


class Reporter(Protocol):
    """Where progress goes (a rich progress bar in the CLI, nothing in tests)."""

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None: ...
    def step(self, loss: float) -> None: ...
    def end_epoch(self, record: EpochRecord) -> None: ...


class SilentReporter:
    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        pass

    def step(self, loss: float) -> None:
        pass

    def end_epoch(self, record: EpochRecord) -> None:
        pass


class Trainer:
    """Fits ``model`` with ``loss_fn`` and reports per-epoch validation Dice/IoU."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        train_loader: Iterable[Batch],
        val_loader: Iterable[Batch],
        num_classes: int,
        precision: Precision,
        reporter: Reporter | None = None,
        on_epoch_end: Callable[[EpochRecord], None] | None = None,
    ) -> None:
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.num_classes = num_classes
        self.precision = precision
        self.device = precision.device
        # The scaler is a no-op (enabled=False) unless float16 autocast needs it.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=precision.use_grad_scaler)
        self.reporter = reporter or SilentReporter()
        self.epoch_callback = on_epoch_end
        self.history: list[EpochRecord] = []

    def _to_device(self, batch: Batch) -> Batch:
        images, masks = batch
        # non_blocking pairs with pin_memory on CUDA; on CPU it is a plain copy.
        non_blocking = self.device.type == "cuda"
        return images.to(self.device, non_blocking=non_blocking), masks.to(
            self.device, non_blocking=non_blocking
        )

    def train_step(self, batch: Batch) -> dict[str, float]:
        images, masks = self._to_device(batch)
        self.optimizer.zero_grad(set_to_none=True)
        with self.precision.autocast():
            logits = self.model(images)  # (N, C, H, W)
        loss = self.loss_fn(logits.float(), masks)
        if not torch.isfinite(loss):
            raise DrunetError(
                f"training loss became {loss.item()} — lower train.lr or check the data; "
                "the last good weights are kept in the run folder"
            )
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()  # the schedule is per iteration
        return {"loss": loss.item()}

    @torch.no_grad()
    def validation_step(self, batch: Batch, meter: ConfusionMeter) -> dict[str, float]:
        images, masks = self._to_device(batch)
        with self.precision.autocast():
            logits = self.model(images)
        loss = self.loss_fn(logits.float(), masks)
        meter.update(logits_to_labels(logits), masks)
        return {"loss": loss.item()}

    def train_epoch(self, epoch: int, epochs: int) -> float:
        self.model.train()
        steps = len(self.train_loader)  # type: ignore[arg-type]
        self.reporter.start_epoch(epoch, epochs, steps)
        total = 0.0
        for batch in self.train_loader:
            loss = self.train_step(batch)["loss"]
            total += loss
            self.reporter.step(loss)
        return total / max(1, steps)

    def validate(self) -> tuple[float, dict[str, float]]:
        self.model.eval()
        meter = ConfusionMeter(self.num_classes)
        losses = [self.validation_step(batch, meter)["loss"] for batch in self.val_loader]
        return sum(losses) / max(1, len(losses)), meter.compute().as_dict()

    def on_epoch_end(self, record: EpochRecord) -> None:
        self.history.append(record)
        self.reporter.end_epoch(record)
        if self.epoch_callback is not None:
            self.epoch_callback(record)

    def fit(self, epochs: int, start_epoch: int = 1) -> list[EpochRecord]:
        for epoch in range(start_epoch, epochs + 1):
            started = time.perf_counter()
            lr = self.optimizer.param_groups[0]["lr"]
            train_loss = self.train_epoch(epoch, epochs)
            val_loss, scores = self.validate()
            self.on_epoch_end(
                EpochRecord(epoch, train_loss, val_loss, lr, time.perf_counter() - started, scores)
            )
        return self.history


def cosine_with_warmup(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """LR multiplier per iteration: linear warm-up, then cosine decay to 1 % of the peak."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor
