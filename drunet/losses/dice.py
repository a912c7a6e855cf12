"""Overlap losses: Tversky and its special case soft Dice (``alpha = beta = 1/2``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from drunet.losses.base import LossMode, PixelLoss, check_number, one_hot


class TverskyLoss(PixelLoss):
    """``1 - Tversky index``, the sums taken over the whole batch (``N, H, W`` together).

    Per class, with ``tp = Σ p·t``, ``fp = Σ p·(1 - t)`` and ``fn = Σ (1 - p)·t`` over the
    non-ignored pixels::

        T = (tp + smooth) / max(tp + alpha·fp + beta·fn + smooth, eps)

    ``alpha`` weighs false positives and ``beta`` false negatives; ``alpha = beta = 1/2`` is soft
    Dice (:class:`SoftDiceLoss`) and ``alpha = beta = 1`` soft IoU. The classes scored are:

    * binary: the sigmoid foreground against ``target == 1`` (one term, so ``class_weights``,
      which has 2 entries, cannot change it);
    * multiclass: each softmax channel against the one-hot target;
    * multilabel: each sigmoid channel against its 0/1 target channel.

    A class absent from this batch's target has no meaningful gradient, so its term is 0 but it
    still counts in the mean's denominator; the mean over classes is weighted by
    ``class_weights`` when given. All of this is ``smp.losses.TverskyLoss`` (``gamma=1``).

    Shapes: ``logits (N, C, H, W)``; ``target (N, H, W)`` class indices or, multilabel,
    ``(N, C, H, W)`` 0/1 → scalar.
    """

    def __init__(
        self,
        alpha: float = 0.5,
        beta: float = 0.5,
        smooth: float = 0.0,
        ignore_index: int | None = None,
        class_weights: Sequence[float] | None = None,
        mode: LossMode = "auto",
        eps: float = 1e-7,
    ) -> None:
        super().__init__(ignore_index, class_weights, mode)
        self.alpha = check_number("alpha", alpha)
        self.beta = check_number("beta", beta)
        if self.alpha + self.beta == 0:
            raise ValueError("alpha and beta cannot both be 0 (the index would always be 1)")
        self.smooth = check_number("smooth", smooth)
        self.eps = check_number("eps", eps, low_open=True)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, smooth={self.smooth}, {super().extra_repr()}"

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        prep, weights = self.prepare(logits, target)
        if prep.mode == "multiclass":
            probs = torch.softmax(logits, dim=1)  # (N, C, H, W)
            truth = one_hot(prep, logits.shape[1])  # (N, C, H, W)
        else:
            probs = torch.sigmoid(logits)  # (N, C, H, W), C = 1 for binary
            truth = prep.target.view_as(logits) == 1  # binary (N, H, W) → (N, 1, H, W)
        if prep.mode == "binary":
            weights = None  # one foreground term: weighting cannot change it
        probs = probs * prep.valid
        truth = (truth & prep.valid).to(probs.dtype)

        dims = (0, 2, 3)
        tp = (probs * truth).sum(dims)  # (C,)
        fp = probs.sum(dims) - tp
        fn = truth.sum(dims) - tp
        denominator = tp + self.alpha * fp + self.beta * fn + self.smooth
        index = (tp + self.smooth) / denominator.clamp_min(self.eps)  # (C,)
        loss = (1 - index) * (truth.sum(dims) > 0)  # absent classes: 0, still counted
        if weights is None:
            return loss.mean()
        return (loss * weights).sum() / weights.sum()


class SoftDiceLoss(TverskyLoss):
    """``1 - soft Dice``: :class:`TverskyLoss` with ``alpha = beta = 1/2``.

    Per class ``D = (I + smooth) / max((P + T)/2 + smooth, eps)`` with ``I = Σ p·t``,
    ``P = Σ p``, ``T = Σ t`` — that is ``(2I + 2·smooth) / (P + T + 2·smooth)``, the smoothing
    convention of ``smp.losses.DiceLoss``. Everything else (modes, absent classes, weights,
    ``ignore_index``) is as in :class:`TverskyLoss`.

    Shapes: ``logits (N, C, H, W)``; ``target (N, H, W)`` or, multilabel, ``(N, C, H, W)`` →
    scalar.
    """

    def __init__(
        self,
        smooth: float = 0.0,
        eps: float = 1e-7,
        ignore_index: int | None = None,
        class_weights: Sequence[float] | None = None,
        mode: LossMode = "auto",
    ) -> None:
        super().__init__(
            alpha=0.5,
            beta=0.5,
            smooth=smooth,
            ignore_index=ignore_index,
            class_weights=class_weights,
            mode=mode,
            eps=eps,
        )
