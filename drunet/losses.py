"""Segmentation losses on logits: soft Dice, (binary) cross-entropy and their sum.

Conventions shared by every loss here:

* ``logits`` are ``(N, C, H, W)``. ``C == 1`` is binary segmentation (sigmoid, foreground =
  class 1); ``C >= 2`` is multi-class (softmax over ``C`` classes, background included).
* ``target`` is ``(N, H, W)`` of integer class indices (binary: 0/1).
* Pixels whose target equals ``ignore_index`` contribute nothing: not to the Dice sums, not to the
  cross-entropy, and not to its mean's denominator. A batch with every pixel ignored gives 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CELoss", "DiceCELoss", "SoftDiceLoss", "make_loss"]


def _check_inputs(logits: torch.Tensor, target: torch.Tensor, ignore_index: int | None) -> int:
    """Validate shapes and target values; return the number of classes (2 when ``C == 1``)."""
    if logits.ndim != 4 or target.ndim != 3 or target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(
            f"expected logits (N, C, H, W) and target (N, H, W) with the same N, H, W; got logits "
            f"{tuple(logits.shape)} and target {tuple(target.shape)}"
        )
    if target.is_floating_point() or target.is_complex():
        raise ValueError(f"target must hold integer class indices; got dtype {target.dtype}")
    num_classes = max(2, logits.shape[1])
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        raise ValueError(
            f"ignore_index={ignore_index} is a real class (classes are 0..{num_classes - 1}); "
            "use a value outside that range such as 255 or -1"
        )
    bad = (target < 0) | (target >= num_classes)
    if ignore_index is not None:
        bad &= target != ignore_index
    if bool(bad.any()):
        values = torch.unique(target[bad]).tolist()[:10]
        raise ValueError(
            f"target values {values} are outside the classes 0..{num_classes - 1} "
            f"(logits have {logits.shape[1]} channel(s)) and are not ignore_index={ignore_index}"
        )
    return num_classes


def _valid_mask(target: torch.Tensor, ignore_index: int | None) -> torch.Tensor:
    """``(N, H, W)`` bool mask of the pixels that count."""
    if ignore_index is None:
        return torch.ones_like(target, dtype=torch.bool)
    return target != ignore_index


def _weights_tensor(
    class_weights: Sequence[float] | None, num_classes: int, like: torch.Tensor
) -> torch.Tensor | None:
    """``(num_classes,)`` weights on ``like``'s device and dtype, or ``None``."""
    if class_weights is None:
        return None
    if len(class_weights) != num_classes:
        raise ValueError(
            f"class_weights has {len(class_weights)} entries but there are {num_classes} classes "
            "(binary segmentation counts 2: background and foreground)"
        )
    return torch.as_tensor(class_weights, dtype=like.dtype, device=like.device)


def _check_weights(class_weights: Sequence[float] | None) -> tuple[float, ...] | None:
    if class_weights is None:
        return None
    weights = tuple(float(w) for w in class_weights)
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"class_weights must be >= 0 with a positive sum; got {list(weights)}")
    return weights


class SoftDiceLoss(nn.Module):
    """``1 - soft Dice`` with the sums taken over the whole batch (``N, H, W`` together).

    Binary (``C == 1``): Dice of the sigmoid foreground probability against ``target == 1``.
    Multi-class (``C >= 2``): per-class Dice of the softmax probabilities against the one-hot
    target, then the (optionally ``class_weights``-weighted) mean over the ``C`` classes.

    Dice per class is ``(2·I + smooth) / max(P + T + smooth, eps)`` with ``I = Σ p·t``,
    ``P = Σ p``, ``T = Σ t``. A class absent from this batch's target has an undefined Dice
    gradient, so its loss term is set to 0 — but it still counts in the mean's denominator, as in
    ``smp.losses.DiceLoss``. In binary mode an all-background batch therefore gives 0 (the
    cross-entropy of :class:`DiceCELoss` still penalises false positives). Binary Dice has a single
    (foreground) term, so ``class_weights`` (2 entries) do not change it.

    Shapes: ``logits (N, C, H, W)``, ``target (N, H, W)`` → scalar.
    """

    def __init__(
        self,
        smooth: float = 0.0,
        eps: float = 1e-7,
        ignore_index: int | None = None,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if smooth < 0 or eps <= 0:
            raise ValueError(f"need smooth >= 0 and eps > 0; got smooth={smooth}, eps={eps}")
        self.smooth = smooth
        self.eps = eps
        self.ignore_index = ignore_index
        self.class_weights = _check_weights(class_weights)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        num_classes = _check_inputs(logits, target, self.ignore_index)
        weights = _weights_tensor(self.class_weights, num_classes, logits)
        valid = _valid_mask(target, self.ignore_index).unsqueeze(1)  # (N, 1, H, W)
        if logits.shape[1] == 1:
            probs = torch.sigmoid(logits)  # (N, 1, H, W)
            truth = (target == 1).unsqueeze(1)  # (N, 1, H, W)
            weights = None  # one foreground term: weighting cannot change it
        else:
            probs = torch.softmax(logits, dim=1)  # (N, C, H, W)
            safe = torch.where(valid.squeeze(1), target, 0).long()
            truth = F.one_hot(safe, num_classes).permute(0, 3, 1, 2).bool()  # (N, C, H, W)
        probs = probs * valid
        truth = (truth & valid).to(probs.dtype)

        dims = (0, 2, 3)
        intersection = (probs * truth).sum(dims)  # (C,)
        cardinality = probs.sum(dims) + truth.sum(dims)  # (C,)
        dice = (2 * intersection + self.smooth) / (cardinality + self.smooth).clamp_min(self.eps)
        present = truth.sum(dims) > 0  # (C,)
        loss = (1 - dice) * present  # (C,)
        if weights is None:
            return loss.mean()
        return (loss * weights).sum() / weights.sum()


class CELoss(nn.Module):
    """Cross-entropy averaged over the non-ignored pixels.

    Binary (``C == 1``): ``F.binary_cross_entropy_with_logits(logits[:, 0], target.float())``.
    Multi-class: ``F.cross_entropy(logits, target, weight=class_weights, ignore_index=...)``.
    With ``class_weights = (w_0, …, w_{K-1})`` both are the weighted mean
    ``Σ w[t]·ℓ / Σ w[t]`` over the non-ignored pixels (binary takes ``(w_background,
    w_foreground)``), exactly what ``F.cross_entropy`` does for ``reduction="mean"``.

    Shapes: ``logits (N, C, H, W)``, ``target (N, H, W)`` → scalar.
    """

    def __init__(
        self, ignore_index: int | None = None, class_weights: Sequence[float] | None = None
    ) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.class_weights = _check_weights(class_weights)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        num_classes = _check_inputs(logits, target, self.ignore_index)
        weights = _weights_tensor(self.class_weights, num_classes, logits)
        valid = _valid_mask(target, self.ignore_index)  # (N, H, W)
        safe = torch.where(valid, target, 0).long()  # ignored pixels get a harmless class
        if logits.shape[1] == 1:
            per_pixel = F.binary_cross_entropy_with_logits(
                logits[:, 0], safe.to(logits.dtype), reduction="none"
            )  # (N, H, W)
        else:
            per_pixel = F.cross_entropy(logits, safe, reduction="none")  # (N, H, W)
        pixel_weight = valid.to(logits.dtype) if weights is None else weights[safe] * valid
        # Sum / count instead of reduction="mean": no NaN when every pixel is ignored.
        return (per_pixel * pixel_weight).sum() / pixel_weight.sum().clamp_min(1e-12)


class DiceCELoss(nn.Module):
    """``dice_weight · SoftDiceLoss + ce_weight · CELoss`` — the default segmentation loss.

    Shapes: ``logits (N, C, H, W)``, ``target (N, H, W)`` → scalar.
    """

    def __init__(
        self,
        dice_weight: float = 1.0,
        ce_weight: float = 1.0,
        smooth: float = 0.0,
        ignore_index: int | None = None,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if dice_weight < 0 or ce_weight < 0 or dice_weight + ce_weight == 0:
            raise ValueError(
                f"need dice_weight >= 0 and ce_weight >= 0, not both 0; got "
                f"dice_weight={dice_weight}, ce_weight={ce_weight}"
            )
        self.dice_weight = dice_weight
        self.ce_weight = ce_weight
        self.dice = SoftDiceLoss(
            smooth=smooth, ignore_index=ignore_index, class_weights=class_weights
        )
        self.ce = CELoss(ignore_index=ignore_index, class_weights=class_weights)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.dice_weight * self.dice(logits, target) + self.ce_weight * self.ce(
            logits, target
        )


def make_loss(num_classes: int, ignore_index: int | None = None) -> nn.Module:
    """The default loss: :class:`DiceCELoss` with equal weights.

    ``num_classes`` counts background (binary is 2, trained with one logit channel).
    """
    if num_classes < 2:
        raise ValueError(
            f"num_classes must be >= 2 (background counts; binary is 2); got {num_classes}"
        )
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        raise ValueError(
            f"ignore_index={ignore_index} is a real class (classes are 0..{num_classes - 1}); "
            "use a value outside that range such as 255 or -1"
        )
    return DiceCELoss(ignore_index=ignore_index)
