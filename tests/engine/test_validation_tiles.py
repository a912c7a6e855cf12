"""Validation of images larger than the whole-image limit goes through the sliding window."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from drunet.device import select_precision
from drunet.engine import trainer as trainer_module
from drunet.engine.trainer import Trainer, TrainerOptions
from drunet.losses import DiceCELoss


class Pointwise(nn.Module):
    """A 1 × 1 convolution: its logits do not depend on where a tile starts, so tiled and whole
    validation must agree exactly (a known answer for the blend)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1)
        with torch.no_grad():
            self.conv.weight.fill_(4.0)
            self.conv.bias.fill_(-2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def validate(val_tiles: tuple[int, int] | None, calls: list[int]) -> tuple[float, dict]:
    torch.manual_seed(0)
    images = torch.rand(1, 1, 70, 90)
    masks = (images[:, 0] > 0.5).long()
    model = Pointwise()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(
        model,
        DiceCELoss(),
        optimizer,
        torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0),
        [],
        [(images, masks)],
        TrainerOptions(2, select_precision(torch.device("cpu"), "fp32"), val_tiles=val_tiles),
    )
    original = trainer_module.sliding_window

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer_module, "sliding_window", counting)
        return trainer.validate()


def test_large_validation_images_are_tiled_with_the_same_scores() -> None:
    whole_calls: list[int] = []
    tiled_calls: list[int] = []
    whole_loss, whole = validate(None, whole_calls)
    tiled_loss, tiled = validate((32, 1000), tiled_calls)  # 70 × 90 > 1000 pixels: tiled
    assert whole_calls == [] and tiled_calls == [1]
    assert tiled == pytest.approx(whole, abs=1e-6)
    assert tiled_loss == pytest.approx(whole_loss, abs=1e-5)


def test_images_within_the_limit_go_through_whole() -> None:
    calls: list[int] = []
    validate((32, 70 * 90), calls)
    assert calls == []
