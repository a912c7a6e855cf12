"""What a time budget buys: training speed per model, measured on the device training will use.

:func:`sample_seconds` times training steps (forward, loss, backward, optimiser step) of a model
at ``SIDE``² and batch ``BATCH`` on the device, after one warm-up step, at the process's torch
thread count, and returns the best step's seconds per sample (mixed precision on CUDA, as
training runs there). :class:`Speed` scales that by pixels to the planned patch and counts an
epoch as the trainer does (``train.steps_per_epoch`` batches, else one pass over the training
images but at least ``train.min_steps_per_epoch`` batches), giving the epochs a budget buys.
Validation time is left out, and a 256² patch runs a little faster per pixel than the measured
128²: an estimate (ISBI 2012 on one CPU core: 59 epochs of ``drunet_s`` estimated for 30
minutes; the 10-minute run reached 21, i.e. 63 in 30). A model is measured once per
:class:`Speed` (the first rule that asks).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from drunet.checkpoint import build_model
from drunet.config import ModelConfig, TrainConfig
from drunet.device import resolve_device

SIDE = 128  # px: the measured square
BATCH = 2  # samples per measured step (batch norm trains on more than one)
STEPS = 2  # timed steps after the warm-up; the fastest counts


def sample_seconds(
    model_name: str, in_channels: int, num_classes: int, device: str = "auto"
) -> float:
    """Seconds one training sample of ``SIDE``² takes ``model_name`` on ``device`` (see module)."""
    dev = resolve_device(device, "train.device")
    spec = ModelConfig(name=model_name, in_channels=in_channels, num_classes=num_classes).spec()
    model = build_model(spec).to(dev)  # the model training builds
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    x = torch.randn(BATCH, in_channels, SIDE, SIDE, device=dev)
    autocast = torch.autocast("cuda", enabled=dev.type == "cuda")
    best = math.inf
    for step in range(STEPS + 1):
        _synchronize(dev)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = model(x).float().square().mean()
        loss.backward()
        optimizer.step()
        _synchronize(dev)
        if step:  # the first step warms up (allocations, kernel choice)
            best = min(best, time.perf_counter() - start)
    return best / BATCH


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@dataclass
class Speed:
    """Seconds per ``SIDE``² sample by model name (``measure``, called once per model) and the
    trainer's epoch (``steps_per_epoch``, ``min_steps_per_epoch``)."""

    measure: Callable[[str], float]
    steps_per_epoch: int | None = None
    min_steps_per_epoch: int = 1
    measured: dict[str, float] = field(default_factory=dict)

    def seconds(self, model: str) -> float:
        """Seconds per ``SIDE``² sample of ``model`` (measured on first use)."""
        if model not in self.measured:
            self.measured[model] = self.measure(model)
        return self.measured[model]

    def epoch_seconds(self, model: str, patch: int, batch: int, pairs: int) -> float:
        """Seconds of training steps in one epoch of ``pairs`` images (validation left out),
        its batches counted as the trainer counts them
        (:meth:`drunet.config_train.TrainConfig.epoch_batches`)."""
        train = TrainConfig(
            steps_per_epoch=self.steps_per_epoch, min_steps_per_epoch=self.min_steps_per_epoch
        )
        steps = train.epoch_batches(pairs, batch)
        return steps * batch * self.seconds(model) * (patch / SIDE) ** 2

    def epochs(self, model: str, minutes: float, patch: int, batch: int, pairs: int) -> float:
        """Epochs ``minutes`` buy (an estimate: validation is left out)."""
        return minutes * 60 / self.epoch_seconds(model, patch, batch, pairs)


def measured_speed(
    in_channels: int,
    num_classes: int,
    device: str = "auto",
    steps_per_epoch: int | None = None,
    min_steps_per_epoch: int = 1,
) -> Speed:
    """A :class:`Speed` that measures models with :func:`sample_seconds` on ``device``."""

    def measure(model: str) -> float:
        return sample_seconds(model, in_channels, num_classes, device)

    return Speed(measure, steps_per_epoch, min_steps_per_epoch)
