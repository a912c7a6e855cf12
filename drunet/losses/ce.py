"""Per-pixel losses: (binary) cross-entropy and focal loss, averaged over the non-ignored pixels."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from drunet.losses.base import LossMode, PixelLoss, Prepared, check_number, masked_mean


def _cross_entropy(logits: torch.Tensor, prep: Prepared) -> torch.Tensor:
    """``-log p(true class)`` per element: ``(N, 1, H, W)``, or ``(N, C, H, W)`` multilabel."""
    if prep.mode == "multiclass":
        log_probs = F.log_softmax(logits, dim=1)  # (N, C, H, W)
        return -log_probs.gather(1, prep.target.unsqueeze(1))  # (N, 1, H, W)
    truth = prep.target.view_as(logits).to(logits.dtype)  # binary (N, H, W) → (N, 1, H, W)
    return F.binary_cross_entropy_with_logits(logits, truth, reduction="none")


def _element_weights(
    prep: Prepared, weights: torch.Tensor | None, like: torch.Tensor
) -> torch.Tensor:
    """0 on ignored entries, else the class weight (1 without ``class_weights``)."""
    valid = prep.valid.to(like.dtype)  # (N, 1, H, W) or (N, C, H, W)
    if weights is None:
        return valid
    if prep.mode == "multilabel":
        return valid * weights.view(1, -1, 1, 1)  # one weight per channel
    return valid * weights[prep.target].unsqueeze(1)  # the weight of each pixel's true class


def _pow(base: torch.Tensor, gamma: float) -> torch.Tensor:
    """``base ** gamma`` for ``base >= 0`` with a finite gradient at 0 even when ``gamma < 1``."""
    if gamma == 0:
        return torch.ones_like(base)
    if gamma >= 1:
        return base.pow(gamma)
    positive = base > 0
    # Both branches of torch.where get a gradient: keep 0 out of pow's (infinite) derivative.
    return torch.where(positive, torch.where(positive, base, 1.0).pow(gamma), 0.0)


class CELoss(PixelLoss):
    """Cross-entropy averaged over the non-ignored pixels (multilabel: elements).

    * binary: ``F.binary_cross_entropy_with_logits(logits[:, 0], target)``;
    * multiclass: ``F.cross_entropy(logits, target, weight=class_weights, ignore_index=...)``;
    * multilabel: binary cross-entropy of every channel against its 0/1 target channel.

    With ``class_weights`` the result is the weighted mean ``Σ w·ℓ / Σ w`` over the non-ignored
    entries, exactly what ``F.cross_entropy`` does for ``reduction="mean"``. ``w`` is the weight of
    the pixel's true class (binary takes ``(w_background, w_foreground)``) or, multilabel, of the
    channel. ``smp.losses.SoftBCEWithLogitsLoss`` divides by *all* entries even when some are
    ignored; here ignored entries leave the denominator too.

    Shapes: ``logits (N, C, H, W)``; ``target (N, H, W)`` or, multilabel, ``(N, C, H, W)`` →
    scalar.
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        prep, weights = self.prepare(logits, target)
        return masked_mean(_cross_entropy(logits, prep), _element_weights(prep, weights, logits))


class FocalLoss(PixelLoss):
    """Focal loss ``(1 - p_t)^gamma · (-log p_t)``, averaged like :class:`CELoss`.

    ``p_t`` is the probability given to the true label: the sigmoid of each element (binary,
    multilabel) or the softmax probability of the pixel's class (multiclass). ``gamma = 0`` is
    :class:`CELoss`.

    ``alpha`` (binary and multilabel only) multiplies positives by ``alpha`` and negatives by
    ``1 - alpha``; like ``smp``, it is not part of the mean's denominator. ``class_weights`` give
    the weighted mean ``Σ w·ℓ / Σ w`` over the non-ignored entries, as in :class:`CELoss`.

    Parity with ``smp.losses.FocalLoss``: binary is identical (``alpha`` included). Multilabel
    matches when every channel has the same number of non-ignored elements; smp averages each
    channel first and then the channels, here all elements are averaged together (smp 0.6's
    multilabel mode also fails with ``ignore_index``; its binary mode per channel works). smp's
    ``"multiclass"`` mode is a one-vs-rest *sigmoid* focal loss per class, not this softmax one
    (it equals this loss in multilabel mode on a one-hot target); this multiclass mode is smp's
    ``softmax_focal_loss_with_logits``.

    Shapes: ``logits (N, C, H, W)``; ``target (N, H, W)`` or, multilabel, ``(N, C, H, W)`` →
    scalar.
    """

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: float | None = None,
        ignore_index: int | None = None,
        class_weights: Sequence[float] | None = None,
        mode: LossMode = "auto",
    ) -> None:
        super().__init__(ignore_index, class_weights, mode)
        self.gamma = check_number("gamma", gamma)
        self.alpha = None if alpha is None else check_number("alpha", alpha, high=1.0)
        if self.alpha is not None and self.mode == "multiclass":
            raise ValueError(_ALPHA_MULTICLASS)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, alpha={self.alpha}, {super().extra_repr()}"

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        prep, weights = self.prepare(logits, target)
        ce = _cross_entropy(logits, prep)  # (N, 1, H, W) or (N, C, H, W)
        # 1 - p_t = 1 - exp(-ce), accurate when p_t is close to 1.
        loss = _pow(-torch.expm1(-ce), self.gamma) * ce
        if self.alpha is not None:
            if prep.mode == "multiclass":
                raise ValueError(_ALPHA_MULTICLASS)
            positive = prep.target.view_as(logits) == 1
            loss = loss * torch.where(positive, self.alpha, 1 - self.alpha)
        return masked_mean(loss, _element_weights(prep, weights, logits))


_ALPHA_MULTICLASS = (
    "FocalLoss alpha weighs sigmoid positives against negatives (binary, multilabel); "
    "for multiclass set class_weights instead"
)
