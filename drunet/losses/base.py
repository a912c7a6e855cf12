"""Input checking shared by every loss (the mode, the valid-pixel mask, class weights, arguments)
and :class:`PixelLoss`, the base of the per-pixel losses.

Nothing here is public; :mod:`drunet.losses` documents the conventions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import nn

from drunet.metrics.confusion import check_ignore_index

LossMode = Literal["auto", "binary", "multiclass", "multilabel"]
MODES: tuple[str, ...] = get_args(LossMode)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    return mode


def check_number(
    name: str, value: object, low: float = 0.0, high: float = math.inf, low_open: bool = False
) -> float:
    """``value`` as a float in ``[low, high]`` (``(low, high]`` when ``low_open``)."""
    # bool is an int subclass: `smooth: true` in YAML is a mistake, not 1.0.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}")
    below = value <= low if low_open else value < low
    if below or value > high:
        bounds = f"{'>' if low_open else '>='} {low:g}"
        if high < math.inf:
            bounds += f" and <= {high:g}"
        raise ValueError(f"{name} must be {bounds}; got {value!r}")
    return float(value)


def check_weights(class_weights: Sequence[float] | None) -> tuple[float, ...] | None:
    """``class_weights`` as a tuple of floats ``>= 0`` with a positive sum, or ``None``."""
    if class_weights is None:
        return None
    if isinstance(class_weights, (str, bytes)) or not isinstance(class_weights, Sequence):
        raise ValueError(f"class_weights must be a list of numbers; got {class_weights!r}")
    weights = tuple(check_number("each class weight", w, low=-math.inf) for w in class_weights)
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"class_weights must be >= 0 with a positive sum; got {list(weights)}")
    return weights


@dataclass(frozen=True)
class Prepared:
    """A checked batch.

    ``target`` has ignored entries replaced by 0 (a harmless class) and is int64:
    ``(N, H, W)`` for binary and multiclass, ``(N, C, H, W)`` for multilabel. ``valid`` is the
    bool mask of the entries that count, broadcastable to the logits: ``(N, 1, H, W)`` or
    ``(N, C, H, W)``. ``num_weights`` is how many ``class_weights`` the mode takes.
    """

    mode: str
    target: torch.Tensor
    valid: torch.Tensor
    num_weights: int


def resolve_mode(mode: str, logits: torch.Tensor, target: torch.Tensor) -> str:
    """``auto``: a 4-D target is multilabel, else one logit channel is binary, else multiclass."""
    if mode != "auto":
        return mode
    if target.ndim == 4:
        return "multilabel"
    return "binary" if logits.ndim == 4 and logits.shape[1] == 1 else "multiclass"


def _check_shapes(mode: str, logits: torch.Tensor, target: torch.Tensor) -> None:
    shapes = f"got logits {tuple(logits.shape)} and target {tuple(target.shape)}"
    if mode == "multilabel":
        if logits.ndim != 4 or target.shape != logits.shape:
            raise ValueError(
                f"multilabel losses expect logits (N, C, H, W) and a 0/1 target of the same "
                f"shape; {shapes} (class-index masks are (N, H, W))"
            )
        return
    if logits.ndim != 4 or target.ndim != 3 or target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(
            f"expected logits (N, C, H, W) and target (N, H, W) with the same N, H, W; {shapes}"
        )
    if mode == "binary" and logits.shape[1] != 1:
        raise ValueError(
            f"mode='binary' expects one sigmoid logit channel; {shapes} "
            "(use mode='multiclass' for one channel per class)"
        )
    if mode == "multiclass" and logits.shape[1] < 2:
        raise ValueError(
            f"mode='multiclass' expects one logit channel per class (C >= 2); {shapes} "
            "(use mode='binary' for one sigmoid channel)"
        )


def prepare(
    logits: torch.Tensor, target: torch.Tensor, mode: str, ignore_index: int | None
) -> Prepared:
    """Validate shapes and target values for ``mode``; see :class:`Prepared`."""
    mode = resolve_mode(mode, logits, target)
    _check_shapes(mode, logits, target)
    if target.is_floating_point() or target.is_complex():
        raise ValueError(
            f"target must hold integers (class indices, or 0/1 per channel for multilabel); "
            f"got dtype {target.dtype}"
        )
    multilabel = mode == "multilabel"
    # Binary has one channel but two classes; multilabel targets are 0/1 per channel.
    num_weights = max(2, logits.shape[1]) if not multilabel else logits.shape[1]
    num_values = 2 if multilabel else num_weights
    check_ignore_index(ignore_index, num_values, multilabel)

    target = target.long()
    valid = (
        torch.ones_like(target, dtype=torch.bool)
        if ignore_index is None
        else target != ignore_index
    )
    bad = ((target < 0) | (target >= num_values)) & valid
    if bool(bad.any()):
        values = torch.unique(target[bad]).tolist()[:10]
        what = "not 0/1" if multilabel else f"outside the classes 0..{num_values - 1}"
        raise ValueError(
            f"target values {values} are {what} (logits have {logits.shape[1]} channel(s), "
            f"mode={mode}) and are not ignore_index={ignore_index}"
        )
    target = torch.where(valid, target, 0)
    if not multilabel:
        valid = valid.unsqueeze(1)  # (N, 1, H, W)
    return Prepared(mode, target, valid, num_weights)


def weights_tensor(
    class_weights: tuple[float, ...] | None, count: int, like: torch.Tensor
) -> torch.Tensor | None:
    """``(count,)`` weights on ``like``'s device and dtype, or ``None``."""
    if class_weights is None:
        return None
    if len(class_weights) != count:
        raise ValueError(
            f"class_weights has {len(class_weights)} entries but there are {count} classes "
            "(binary segmentation counts 2: background and foreground; multilabel one per channel)"
        )
    return torch.as_tensor(class_weights, dtype=like.dtype, device=like.device)


def one_hot(prep: Prepared, num_classes: int) -> torch.Tensor:
    """``(N, H, W)`` class indices → ``(N, C, H, W)`` bool."""
    return torch.nn.functional.one_hot(prep.target, num_classes).permute(0, 3, 1, 2).bool()


def masked_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``Σ weight·values / Σ weight``; 0 (not NaN) when every weight is 0 (all ignored)."""
    return (values * weight).sum() / weight.sum().clamp_min(1e-12)


class PixelLoss(nn.Module):
    """What every per-pixel loss takes and checks alike: ``ignore_index``, ``class_weights`` and
    ``mode``; :meth:`prepare` is the first step of its ``forward``."""

    def __init__(
        self,
        ignore_index: int | None = None,
        class_weights: Sequence[float] | None = None,
        mode: LossMode = "auto",
    ) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.class_weights = check_weights(class_weights)
        self.mode = check_mode(mode)

    def extra_repr(self) -> str:
        return (
            f"mode={self.mode!r}, ignore_index={self.ignore_index}, "
            f"class_weights={self.class_weights}"
        )

    def prepare(
        self, logits: torch.Tensor, target: torch.Tensor
    ) -> tuple[Prepared, torch.Tensor | None]:
        """The checked batch (see :class:`Prepared`) and its class weights on ``logits``'s
        device, or ``None``."""
        prep = prepare(logits, target, self.mode, self.ignore_index)
        return prep, weights_tensor(self.class_weights, prep.num_weights, logits)
