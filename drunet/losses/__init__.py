"""Segmentation losses on logits: soft Dice, Tversky, (binary) cross-entropy, focal, their sums.

Conventions shared by every loss here:

* ``logits`` are ``(N, C, H, W)``. Three modes, chosen by ``mode=`` or, with ``"auto"`` (the
  default), by the shapes:

  - ``"binary"``: ``C == 1`` sigmoid logit, ``target (N, H, W)`` of 0/1 (foreground = 1);
  - ``"multiclass"``: ``C >= 2`` softmax over the classes (background included),
    ``target (N, H, W)`` of class indices ``0..C-1``;
  - ``"multilabel"``: ``C`` independent sigmoid channels, ``target (N, C, H, W)`` of 0/1.

  ``"auto"`` picks multilabel for a 4-D target, else binary for ``C == 1``, else multiclass.
* Targets are integer tensors. Entries equal to ``ignore_index`` contribute nothing: not to the
  Dice/Tversky sums, not to the (focal) cross-entropy, and not to its mean's denominator; a batch
  with everything ignored gives 0. In multilabel mode each element is ignored on its own.
* ``class_weights`` have one entry per class: 2 for binary (background, foreground), ``C`` for
  multiclass and one per channel for multilabel.

:func:`build_loss` turns a list of ``{"name": ..., "weight": ..., **options}`` terms (the YAML
``loss:`` section) into a :class:`WeightedSum`; ``None`` gives the default :class:`DiceCELoss`.
"""

from __future__ import annotations

from drunet.losses.base import LossMode
from drunet.losses.ce import CELoss, FocalLoss
from drunet.losses.combined import LOSSES, DiceCELoss, WeightedSum, build_loss
from drunet.losses.dice import SoftDiceLoss, TverskyLoss

__all__ = [
    "LOSSES",
    "CELoss",
    "DiceCELoss",
    "FocalLoss",
    "LossMode",
    "SoftDiceLoss",
    "TverskyLoss",
    "WeightedSum",
    "build_loss",
]
