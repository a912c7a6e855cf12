"""The training loop as small hooks: ``train_step``, ``validation_step``, ``on_epoch_end``, and
what it calls besides the model: a progress :class:`Reporter` and a per-epoch callback.

The trainer hard-codes no hyper-parameter: it receives the model, loss, optimiser, schedule and
loaders already built, and one frozen :class:`TrainerOptions` (see :mod:`drunet.engine.prepare`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

from drunet.checkpoint import unwrap
from drunet.device import Precision
from drunet.engine.distributed import DistContext
from drunet.engine.epochs import BestTracker, Budget, EpochRecord
from drunet.errors import DrunetError
from drunet.metrics import ConfusionMeter, image_stats, logits_to_labels, reduce_stats
from drunet.models.layout import memory_format
from drunet.sliding import sliding_window

Batch = tuple[torch.Tensor, torch.Tensor]  # images (N, C, H, W) float, masks (N, H, W) int64


class Reporter(Protocol):
    """Where progress goes (a rich progress bar in the CLI, nothing in tests)."""

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None: ...
    def step(self, loss: float) -> None: ...
    def end_epoch(self, record: EpochRecord) -> None: ...


class SilentReporter:
    """Reports nothing (tests, the API, DDP ranks other than 0); usable as a context manager
    like the CLI's reporters."""

    def __enter__(self) -> SilentReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        pass

    def step(self, loss: float) -> None:
        pass

    def end_epoch(self, record: EpochRecord) -> None:
        pass


class EpochCallback(Protocol):
    """Called after each epoch's validation, once the Trainer's ``history`` and ``best`` hold
    it (e.g. :class:`~drunet.engine.run_folder.RunWriter`). It receives the trainer instead of
    keeping a reference: a cycle would leave the loader workers to the cyclic garbage collector,
    whose shutdown of them hangs for 5 s."""

    def on_epoch_end(self, record: EpochRecord, trainer: Trainer) -> None: ...


class NonFiniteLoss(DrunetError):
    """The loss became NaN or Inf; the previous epoch's checkpoint is the last good one."""


@dataclass(frozen=True)
class TrainerOptions:
    """The loop's settings, fixed for a run (built from the configuration by
    :func:`~drunet.engine.prepare.prepare_training`).

    Args:
        num_classes: classes the validation scores count (binary = 2).
        precision: the device and autocast dtype of every forward pass.
        accumulate: batches whose gradients are summed before one optimiser step.
        grad_clip: maximum global gradient norm (``None`` = no clipping).
        ignore_index: mask value left out of the validation scores.
        val_tiles: ``(tile side, max pixels)``: validation images larger than max pixels go
            through the sliding window, as prediction does, so one large image cannot exhaust
            GPU memory.
        dist: where this process sits in a DDP job.
    """

    num_classes: int
    precision: Precision
    accumulate: int = 1
    grad_clip: float | None = None
    ignore_index: int | None = None
    val_tiles: tuple[int, int] | None = None
    dist: DistContext = field(default_factory=DistContext)


class Trainer:
    """Fits ``model`` with ``loss_fn`` and reports per-epoch validation Dice/IoU.

    Args:
        options: the loop's fixed settings.
        reporter: where progress goes (nothing by default).
        scaler: the float16 loss scaler (default: one enabled exactly when the precision
            needs it).
        best: tracks the monitored score and says when to stop early (default: Dice, never).
        history: the records of epochs already trained (a resumed run).
        callback: called after every epoch (the run folder's writer).
        budget: the wall-clock budget (``train.max_minutes``), if any.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        train_loader: Iterable[Batch],
        val_loader: Iterable[Batch],
        options: TrainerOptions,
        *,
        reporter: Reporter | None = None,
        scaler: torch.amp.GradScaler | None = None,
        best: BestTracker | None = None,
        history: list[EpochRecord] | None = None,
        callback: EpochCallback | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.options = options
        self.precision = options.precision
        self.device = options.precision.device
        # The scaler is a no-op (enabled=False) unless float16 autocast needs it.
        self.scaler = scaler or torch.amp.GradScaler(
            self.device.type, enabled=options.precision.use_grad_scaler
        )
        self.reporter = reporter or SilentReporter()
        self.best = best or BestTracker()
        self.history = list(history or [])
        self.callback = callback
        self.memory_format = memory_format(model)  # batches in the model's own layout (NHWC)
        self.dist = options.dist
        self.budget = budget
        self.last_epoch_throughput = (0, 0.0)  # (training samples, seconds) of the last epoch

    def _to_device(self, batch: Batch) -> Batch:
        images, masks = batch
        # non_blocking pairs with pin_memory on CUDA; on CPU it is a plain copy.
        non_blocking = self.device.type == "cuda"
        images = images.to(self.device, non_blocking=non_blocking, memory_format=self.memory_format)
        return images, masks.to(self.device, non_blocking=non_blocking)

    def _forward_loss(
        self, batch: Batch, model: nn.Module | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        images, masks = self._to_device(batch)
        with self.precision.autocast():
            logits = (self.model if model is None else model)(images)  # (N, C, H, W)
        # The loss in float32: soft Dice sums over many pixels lose precision in half types.
        return self.loss_fn(logits.float(), masks), logits, masks

    def train_step(self, batch: Batch, step_optimizer: bool = True) -> dict[str, float]:
        """Forward and backward one batch; step the optimiser when ``step_optimizer``."""
        with self._gradient_sync(step_optimizer):
            loss, _, _ = self._forward_loss(batch)
            value = loss.item()  # the step's one host sync: the check and the report share it
            if not math.isfinite(value):
                raise NonFiniteLoss(
                    f"training loss became {value}; lower train.lr or set train.grad_clip, "
                    "and check the images for NaN/Inf"
                )
            self.scaler.scale(loss / self.options.accumulate).backward()
        if step_optimizer:
            if self.options.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)  # clip the true gradients, not scaled ones
                nn.utils.clip_grad_norm_(self.model.parameters(), self.options.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            self.scheduler.step()  # the schedule is per optimiser step
        return {"loss": value}

    def _gradient_sync(self, sync: bool) -> contextlib.AbstractContextManager:
        """DDP averages gradients in every backward; a micro-batch that does not end an
        accumulation group keeps them local (``no_sync``) and the group's last backward
        averages the sum."""
        no_sync = getattr(self.model, "no_sync", None)
        if sync or not self.dist.enabled or no_sync is None:
            return contextlib.nullcontext()
        return no_sync()

    @torch.no_grad()
    def validation_step(self, batch: Batch, meter: ConfusionMeter) -> dict[str, float]:
        """Loss of one batch, its counts added to ``meter``, and the sums over its images of
        the per-image scores (``image_dice``, ``image_iou``; ``images`` counted)."""
        # The bare module: a DDP forward may run a collective (buffer broadcast), and ranks
        # hold different numbers of validation images.
        loss, labels, masks = self.validation_labels(batch, unwrap(self.model))
        meter.update(labels, masks)
        return {"loss": loss.item(), **self._image_score_sums(labels, masks)}

    @torch.no_grad()
    def validation_labels(
        self, batch: Batch, model: nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``model``'s validation loss and label maps ``(N, H, W)`` for a batch, with its masks
        ``(N, H, W)`` (on the device): whole images, or tiles for those above ``val_tiles``."""
        images = batch[0]
        if (
            self.options.val_tiles is not None
            and images.shape[-2] * images.shape[-1] > self.options.val_tiles[1]
        ):
            loss, logits, masks = self._tiled_forward_loss(batch, model)
        else:
            loss, logits, masks = self._forward_loss(batch, model)
        return loss, logits_to_labels(logits), masks

    @torch.no_grad()
    def validation_predictions(
        self, model: nn.Module
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``model``'s label map and the mask, each ``(H, W)`` on the CPU, of every validation
        image of this rank (as :meth:`validate` sees them)."""
        model.eval()
        with _without_autotuning():
            for batch in self.val_loader:
                _, labels, masks = self.validation_labels(batch, model)
                yield from zip(labels.cpu(), masks.cpu(), strict=True)

    def _image_score_sums(self, labels: torch.Tensor, masks: torch.Tensor) -> dict[str, float]:
        """Per image: Dice and IoU of each foreground class, averaged over the classes; a class
        absent from both the image's prediction and mask scores 1 (an empty prediction of an
        empty mask is right). Summed over the batch's images."""
        classes = self.options.num_classes
        stats = image_stats(labels, masks, classes, self.options.ignore_index)
        scores = reduce_stats(stats, "none", classes=range(1, classes))  # (N, K) each
        return {
            "image_dice": float(scores["dice"].mean(1).sum()),
            "image_iou": float(scores["iou"].mean(1).sum()),
            "images": float(len(labels)),
        }

    def _tiled_forward_loss(
        self, batch: Batch, model: nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits of images too large to go through whole, blended from overlapping tiles."""
        assert self.options.val_tiles is not None
        images, masks = batch

        def forward(tiles: torch.Tensor) -> torch.Tensor:
            tiles = tiles.to(self.device, memory_format=self.memory_format)
            with self.precision.autocast():
                return model(tiles).float()

        tile = self.options.val_tiles[0]
        logits = torch.stack([sliding_window(image, forward, tile) for image in images])
        logits, masks = logits.to(self.device), masks.to(self.device)
        return self.loss_fn(logits, masks), logits, masks

    def optimizer_steps_per_epoch(self) -> int:
        return len(self.train_loader) // self.options.accumulate  # type: ignore[arg-type]

    def train_epoch(self, epoch: int, epochs: int) -> float:
        self.model.train()
        for name in ("sampler", "dataset"):
            set_epoch = getattr(getattr(self.train_loader, name, None), "set_epoch", None)
            if set_epoch is not None:
                set_epoch(epoch)  # epoch-seeded order and augmentation: resumable
        usable = self.optimizer_steps_per_epoch() * self.options.accumulate
        self.reporter.start_epoch(epoch, epochs, usable)
        self.optimizer.zero_grad(set_to_none=True)
        total, count, samples = 0.0, 0, 0
        started = time.perf_counter()
        for index, batch in enumerate(self.train_loader):
            if index >= usable:
                break  # a partial accumulation group would leak gradients into the next epoch
            boundary = (index + 1) % self.options.accumulate == 0
            loss = self.train_step(batch, step_optimizer=boundary)
            total, count = total + loss["loss"], count + 1
            samples += len(batch[0])
            self.reporter.step(loss["loss"])
            if boundary and self._budget_spent():
                break
        self.last_epoch_throughput = (samples, time.perf_counter() - started)
        return total / max(1, count)

    def _budget_spent(self) -> bool:
        """Every rank must stop at the same step and decay the LR alike, so under DDP rank 0's
        clock is shared with all (one all-reduce per optimiser step, on every rank)."""
        if self.budget is None:
            return False
        if self.dist.enabled:
            clock = self.budget.clock() if self.dist.is_main else 0.0
            shared = torch.tensor([clock], dtype=torch.float64, device=self.device)
            self.budget.share(float(self.dist.all_reduce_sum(shared).item()))
        return self.budget.spent()

    def validate(self) -> tuple[float, dict[str, float]]:
        """Validation loss and scores: pooled over the set (the confusion counts summed, as
        ``dice``, ``iou``, ``dice_<c>``…) and the mean per image (``image_dice``,
        ``image_iou``, see :meth:`_image_score_sums`). Under DDP each rank scores its share of
        the images (shares may differ by one or be empty) and the counts and sums are summed,
        so every rank gets the whole-set result. Every rank runs the same three collectives,
        once each."""
        self.dist.broadcast_buffers(self.model)  # all ranks validate the same BN statistics
        self.model.eval()
        meter = ConfusionMeter(self.options.num_classes, ignore_index=self.options.ignore_index)
        with _without_autotuning():
            steps = [self.validation_step(batch, meter) for batch in self.val_loader]
        # The loss summed over batches, the batches, the per-image sums and the images.
        sums = [sum(step[key] for step in steps) for key in ("image_dice", "image_iou", "images")]
        loss_sum = sum(step["loss"] for step in steps)
        totals = torch.tensor([loss_sum, len(steps), *sums], dtype=torch.float64)
        if self.dist.enabled:
            # Collectives need the tensors on the backend's device (CUDA for NCCL).
            meter.matrix = self.dist.all_reduce_sum(meter.matrix.to(self.device))
            totals = self.dist.all_reduce_sum(totals.to(self.device)).cpu()
        loss, batches, dice, iou, images = totals.tolist()
        scores = meter.compute().as_dict()
        # No image at all: nothing was wrong, as the pooled scores' empty rule says.
        scores["image_dice"] = dice / images if images else 1.0
        scores["image_iou"] = iou / images if images else 1.0
        return loss / max(1.0, batches), scores

    def on_epoch_end(self, record: EpochRecord) -> bool:
        """Record the epoch, report it, hand it to the callback; ``True`` stops training."""
        self.history.append(record)
        self.best.update(record)
        self.reporter.end_epoch(record)
        if self.callback is not None:
            self.callback.on_epoch_end(record, self)
        return self.best.should_stop(record.epoch)

    def fit(self, epochs: int, start_epoch: int = 1) -> list[EpochRecord]:
        """Train epochs ``start_epoch … epochs``; stop early when ``best`` runs out of patience
        or when the time budget is spent (the epoch in progress is cut short and validated)."""
        if self.budget is not None:
            self.budget.start()
            if self.dist.enabled and self.budget.shared is None:
                self.budget.share(0.0)  # not the local clock, until rank 0's is shared
        for epoch in range(start_epoch, epochs + 1):
            started = time.perf_counter()
            lr = self.optimizer.param_groups[0]["lr"]
            train_loss = self.train_epoch(epoch, epochs)
            val_loss, scores = self.validate()
            samples, train_seconds = self.last_epoch_throughput
            record = EpochRecord(
                epoch,
                train_loss,
                val_loss,
                lr,
                time.perf_counter() - started,
                scores,
                train_seconds=train_seconds,
                samples=samples,
            )
            if self.on_epoch_end(record) or self._budget_spent():
                break
        return self.history


@contextlib.contextmanager
def _without_autotuning() -> Iterator[None]:
    """cuDNN autotuning off: whole validation images come in many sizes, and each new size
    would be benchmarked again (slowly, and at different times on different ranks)."""
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved
