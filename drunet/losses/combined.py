"""Weighted sums of losses and the builder that turns a YAML-style spec into one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from drunet.losses.base import LossMode, check_ignore_index, check_mode, check_number
from drunet.losses.ce import CELoss, FocalLoss
from drunet.losses.dice import SoftDiceLoss, TverskyLoss

# The loss names a term may use (the typed ``loss:`` section of the config checks the keys).
LOSSES: dict[str, type[nn.Module]] = {
    "dice": SoftDiceLoss,
    "ce": CELoss,
    "bce": CELoss,  # the same loss: BCE for one logit, CE for several
    "focal": FocalLoss,
    "tversky": TverskyLoss,
}


class WeightedSum(nn.Module):
    """``Σ weight_i · loss_i(logits, target)`` over ``terms = [(weight, loss), ...]``.

    Weights are ``>= 0`` and not all 0; a term of weight 0 is not evaluated at all.

    Shapes: whatever the terms take → scalar.
    """

    def __init__(self, terms: Sequence[tuple[float, nn.Module]]) -> None:
        super().__init__()
        if len(terms) == 0:
            raise ValueError("WeightedSum needs at least one (weight, loss) term")
        weights = []
        for i, (weight, loss) in enumerate(terms):
            weights.append(check_number(f"terms[{i}] weight", weight))
            if not isinstance(loss, nn.Module):
                raise ValueError(
                    f"terms[{i}] must be (weight, nn.Module); got {type(loss).__name__}"
                )
        if sum(weights) == 0:
            raise ValueError(f"at least one weight must be positive; got {weights}")
        self.weights = tuple(weights)
        self.terms = nn.ModuleList(loss for _, loss in terms)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        parts = [
            w * loss(logits, target)
            for w, loss in zip(self.weights, self.terms, strict=True)
            if w > 0
        ]
        return torch.stack(parts).sum()

    def extra_repr(self) -> str:
        return f"weights={self.weights}"


class DiceCELoss(WeightedSum):
    """``dice_weight · SoftDiceLoss + ce_weight · CELoss`` — the default segmentation loss.

    Shapes: ``logits (N, C, H, W)``; ``target (N, H, W)`` or, multilabel, ``(N, C, H, W)`` →
    scalar.
    """

    def __init__(
        self,
        dice_weight: float = 1.0,
        ce_weight: float = 1.0,
        smooth: float = 0.0,
        ignore_index: int | None = None,
        class_weights: Sequence[float] | None = None,
        mode: LossMode = "auto",
    ) -> None:
        if dice_weight < 0 or ce_weight < 0 or dice_weight + ce_weight == 0:
            raise ValueError(
                f"need dice_weight >= 0 and ce_weight >= 0, not both 0; got "
                f"dice_weight={dice_weight}, ce_weight={ce_weight}"
            )
        dice = SoftDiceLoss(
            smooth=smooth, ignore_index=ignore_index, class_weights=class_weights, mode=mode
        )
        ce = CELoss(ignore_index=ignore_index, class_weights=class_weights, mode=mode)
        super().__init__([(dice_weight, dice), (ce_weight, ce)])
        self.dice_weight, self.ce_weight = self.weights

    @property
    def dice(self) -> nn.Module:
        return self.terms[0]

    @property
    def ce(self) -> nn.Module:
        return self.terms[1]


def _build_term(
    i: int, term: Mapping[str, Any], num_classes: int, ignore_index: int | None, mode: LossMode
) -> tuple[float, nn.Module]:
    kwargs = dict(term)
    name, weight = kwargs.pop("name", None), kwargs.pop("weight", 1.0)
    where = f"loss[{i}] ({name})"
    if name not in LOSSES:
        raise ValueError(f"{where}: unknown loss; choose one of {', '.join(LOSSES)}")
    weights = kwargs.get("class_weights")
    if weights is not None and len(weights) != num_classes:
        raise ValueError(
            f"{where}: class_weights has {len(weights)} entries but num_classes is "
            f"{num_classes}; give one per class (binary: background and foreground; "
            "multilabel: one per channel)"
        )
    try:
        loss = LOSSES[name](**kwargs, ignore_index=ignore_index, mode=mode)
        return check_number("weight", weight), loss
    except (ValueError, TypeError) as error:
        raise ValueError(f"{where}: {error}") from error


def build_loss(
    terms: Sequence[Mapping[str, Any]] | None,
    num_classes: int,
    ignore_index: int | None = None,
    mode: LossMode = "auto",
) -> nn.Module:
    """A weighted sum of loss terms; ``None`` is :class:`DiceCELoss`.

    Each term is ``{"name": ..., "weight": 1.0, **options}`` — the names of :data:`LOSSES` and
    the options of their classes (the config's typed ``loss:`` section checks the keys):

    * ``dice``: ``smooth``, ``class_weights`` (:class:`SoftDiceLoss`)
    * ``ce`` / ``bce``: ``class_weights`` (:class:`CELoss`)
    * ``focal``: ``gamma``, ``alpha``, ``class_weights`` (:class:`FocalLoss`)
    * ``tversky``: ``alpha``, ``beta``, ``smooth``, ``class_weights`` (:class:`TverskyLoss`)

    ``ignore_index`` and ``mode`` apply to every term. ``num_classes`` counts background (binary
    is 2, trained with one logit); multilabel counts channels. A mistake raises ``ValueError``
    naming the term (``loss[1] (dice): class_weights has 3 entries …``).
    """
    check_mode(mode)
    multilabel = mode == "multilabel"
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise ValueError(f"num_classes must be an integer; got {num_classes!r}")
    if num_classes < (1 if multilabel else 2):
        raise ValueError(
            f"num_classes must be >= 2 (background counts; binary is 2); got {num_classes}"
            if not multilabel
            else f"num_classes (channels) must be >= 1 for multilabel; got {num_classes}"
        )
    if mode == "binary" and num_classes != 2:
        raise ValueError(f"mode='binary' means num_classes = 2; got {num_classes}")
    check_ignore_index(ignore_index, 2 if multilabel else num_classes, multilabel)
    if terms is None:
        return DiceCELoss(ignore_index=ignore_index, mode=mode)
    if not terms:
        raise ValueError("loss: the list is empty; give at least one term, e.g. {name: dice}")
    built = [_build_term(i, term, num_classes, ignore_index, mode) for i, term in enumerate(terms)]
    if sum(weight for weight, _ in built) == 0:
        raise ValueError("loss: every term has weight 0; give at least one a positive weight")
    return WeightedSum(built)
