"""Random loss inputs shared by the loss tests."""

from __future__ import annotations

import torch

IGNORE = 255


def random_case(
    n: int,
    c: int,
    hw: int,
    seed: int,
    ignore: bool = False,
    classes: int | None = None,
    multilabel: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``(n, c, hw, hw)`` and a target: ``(n, hw, hw)`` class indices below ``classes``
    (default ``max(2, c)``) or, multilabel, ``(n, c, hw, hw)`` of 0/1; ~20 % ignored if asked."""
    gen = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(n, c, hw, hw, generator=gen)
    shape = (n, c, hw, hw) if multilabel else (n, hw, hw)
    high = 2 if multilabel else classes or max(2, c)
    target = torch.randint(0, high, shape, generator=gen)
    if ignore:
        target[torch.rand(shape, generator=gen) < 0.2] = IGNORE
    return logits, target
