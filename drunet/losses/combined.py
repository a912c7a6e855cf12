"""Weighted sums of losses and the builder that turns a YAML-style spec into one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from drunet.losses.base import LossMode, check_ignore_index, check_mode, check_number
from drunet.losses.ce import CELoss, FocalLoss
from drunet.losses.dice import SoftDiceLoss, TverskyLoss

# name → (class, the keys a spec entry may set besides ``name`` and ``weight``)
_LOSSES: dict[str, tuple[type[nn.Module], tuple[str, ...]]] = {
    "dice": (SoftDiceLoss, ("smooth", "class_weights")),
    "ce": (CELoss, ("class_weights",)),
    "focal": (FocalLoss, ("gamma", "alpha", "class_weights")),
    "tversky": (TverskyLoss, ("alpha", "beta", "smooth", "class_weights")),
}
_ALIASES = {"bce": "ce"}
LOSS_NAMES: tuple[str, ...] = tuple(_LOSSES)


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
    i: int, entry: object, num_classes: int, ignore_index: int | None, mode: str
) -> tuple[float, nn.Module]:
    where = f"loss[{i}]"
    choose = f"choose one of {', '.join(LOSS_NAMES)}"
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: each term is a mapping such as {{name: dice}}; got {entry!r}")
    if "name" not in entry:
        raise ValueError(f"{where}: missing key 'name'; {choose}")
    name = entry["name"]
    name = _ALIASES.get(name, name) if isinstance(name, str) else None
    if name not in _LOSSES:
        raise ValueError(f"{where}: unknown loss {entry['name']!r}; {choose}")
    cls, keys = _LOSSES[name]
    allowed = ("name", "weight", *keys)
    for key in entry:
        if key not in allowed:
            hint = (
                " (ignore_index and mode are set once for the whole loss)"
                if key in ("ignore_index", "mode")
                else ""
            )
            raise ValueError(
                f"{where}: unknown key {key!r} for {name}; allowed keys: {', '.join(allowed)}"
                + hint
            )
    kwargs: dict[str, Any] = {k: v for k, v in entry.items() if k not in ("name", "weight")}
    try:
        weight = check_number("weight", entry.get("weight", 1.0))
        weights = kwargs.get("class_weights")
        loss = cls(**kwargs, ignore_index=ignore_index, mode=mode)
    except ValueError as error:
        raise ValueError(f"{where} ({name}): {error}") from error
    if weights is not None and len(weights) != num_classes:
        raise ValueError(
            f"{where} ({name}): class_weights has {len(weights)} entries but num_classes is "
            f"{num_classes}; give one per class (binary: background and foreground; "
            "multilabel: one per channel)"
        )
    return weight, loss


def build_loss(
    spec: Sequence[Mapping[str, Any]] | None,
    num_classes: int,
    ignore_index: int | None = None,
    mode: LossMode = "auto",
) -> nn.Module:
    """A loss from a list of terms, as written in YAML; ``None`` is :class:`DiceCELoss`.

    Each term is ``{"name": ..., "weight": 1.0, **options}`` with the names and options

    * ``dice``: ``smooth``, ``class_weights`` (:class:`SoftDiceLoss`)
    * ``ce`` (alias ``bce``): ``class_weights`` (:class:`CELoss`)
    * ``focal``: ``gamma``, ``alpha``, ``class_weights`` (:class:`FocalLoss`)
    * ``tversky``: ``alpha``, ``beta``, ``smooth``, ``class_weights`` (:class:`TverskyLoss`)

    ``ignore_index`` and ``mode`` apply to every term. ``num_classes`` counts background (binary
    is 2, trained with one logit); multilabel counts channels. Any mistake raises ``ValueError``
    naming the term, e.g. ``loss[1]: unknown loss 'lovasz'; choose one of dice, ce, focal,
    tversky``. A spec always gives a :class:`WeightedSum`, even with a single term.
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
    if spec is None:
        return DiceCELoss(ignore_index=ignore_index, mode=mode)
    if isinstance(spec, (Mapping, str, bytes)) or not isinstance(spec, Sequence):
        raise ValueError(
            f"loss must be a list of terms such as [{{name: dice}}, {{name: ce}}]; got {spec!r}"
        )
    if len(spec) == 0:
        raise ValueError("loss: the list is empty; give at least one term, e.g. {name: dice}")
    terms = [_build_term(i, entry, num_classes, ignore_index, mode) for i, entry in enumerate(spec)]
    if sum(weight for weight, _ in terms) == 0:
        raise ValueError("loss: every term has weight 0; give at least one a positive weight")
    return WeightedSum(terms)


def make_loss(num_classes: int, ignore_index: int | None = None) -> nn.Module:
    """The default loss: :class:`DiceCELoss` with equal weights (``build_loss(None, ...)``).

    ``num_classes`` counts background (binary is 2, trained with one logit channel).
    """
    return build_loss(None, num_classes, ignore_index)
