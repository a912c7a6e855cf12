"""Weighted sums, DiceCELoss and build_loss: values, the spec format and its error messages."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from drunet.losses import (
    CELoss,
    DiceCELoss,
    FocalLoss,
    SoftDiceLoss,
    TverskyLoss,
    WeightedSum,
    build_loss,
)
from tests.losses.cases import IGNORE, random_case


def test_dice_ce_is_weighted_sum_by_hand() -> None:
    # Binary, logits 0, one foreground pixel of four: dice loss 2/3, BCE = ln 2 per pixel.
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[1, 0], [0, 0]]])
    assert DiceCELoss()(logits, target).item() == pytest.approx(2 / 3 + math.log(2), abs=1e-6)
    weighted = DiceCELoss(dice_weight=0.5, ce_weight=2.0)(logits, target)
    assert weighted.item() == pytest.approx(1 / 3 + 2 * math.log(2), abs=1e-6)


def test_weighted_sum_by_hand() -> None:
    # Same batch: dice loss 2/3; focal per pixel (1 - 1/2)^2 · ln 2 = ln 2 / 4 (p_t = 1/2).
    # 0.5 · 2/3 + 2 · ln 2 / 4 = 1/3 + ln 2 / 2 = 0.679907
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[1, 0], [0, 0]]])
    loss = WeightedSum([(0.5, SoftDiceLoss()), (2.0, FocalLoss())])
    assert loss(logits, target).item() == pytest.approx(1 / 3 + math.log(2) / 2, abs=1e-6)


@pytest.mark.parametrize("channels", [1, 4])
def test_dice_ce_is_sum_of_parts(channels: int) -> None:
    logits, target = random_case(2, channels, 8, seed=7, ignore=True)
    parts = SoftDiceLoss(ignore_index=IGNORE)(logits, target), CELoss(IGNORE)(logits, target)
    total = DiceCELoss(dice_weight=0.3, ce_weight=1.7, ignore_index=IGNORE)(logits, target)
    torch.testing.assert_close(total, 0.3 * parts[0] + 1.7 * parts[1])
    assert total.ndim == 0


class _Explodes(nn.Module):
    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise AssertionError("a term of weight 0 must not be evaluated")


def test_weighted_sum_skips_zero_weights() -> None:
    logits, target = random_case(2, 3, 8, seed=1)
    loss = WeightedSum([(0.0, _Explodes()), (1.0, CELoss())])
    torch.testing.assert_close(loss(logits, target), CELoss()(logits, target))


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ([], "at least one"),
        ([(-1.0, CELoss())], r"terms\[0\] weight must be >= 0; got -1.0"),
        ([(1.0, CELoss()), (1.0, len)], r"terms\[1\] must be \(weight, nn.Module\)"),
        ([(0, CELoss()), (0.0, SoftDiceLoss())], "at least one weight must be positive"),
    ],
)
def test_weighted_sum_errors(terms: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WeightedSum(terms)


# --- build_loss -----------------------------------------------------------------------------------


def test_default_is_dice_ce() -> None:
    logits, target = random_case(2, 1, 8, seed=2, ignore=True)
    default = build_loss(None, num_classes=2, ignore_index=IGNORE)
    assert isinstance(default, DiceCELoss)
    expected = DiceCELoss(ignore_index=IGNORE)(logits, target)
    torch.testing.assert_close(default(logits, target), expected, atol=0, rtol=0)


def test_spec_builds_the_terms_it_names() -> None:
    spec = [
        {"name": "dice", "weight": 1.0, "smooth": 1.0},
        {"name": "ce", "weight": 0.5, "class_weights": [1, 3, 1]},
        {"name": "focal", "gamma": 1.5, "class_weights": [1, 1, 2]},
        {"name": "tversky", "weight": 2, "alpha": 0.3, "beta": 0.7, "smooth": 0.5},
    ]
    loss = build_loss(spec, num_classes=3, ignore_index=IGNORE)
    assert isinstance(loss, WeightedSum)
    assert loss.weights == (1.0, 0.5, 1.0, 2.0)
    dice, ce, focal, tversky = loss.terms
    assert (type(dice), dice.smooth) == (SoftDiceLoss, 1.0)
    assert (type(ce), ce.class_weights) == (CELoss, (1.0, 3.0, 1.0))
    assert (type(focal), focal.gamma, focal.alpha) == (FocalLoss, 1.5, None)
    assert (type(tversky), tversky.alpha, tversky.beta) == (TverskyLoss, 0.3, 0.7)
    assert all(term.ignore_index == IGNORE for term in loss.terms)

    logits, target = random_case(2, 3, 8, seed=3, ignore=True)
    expected = (
        SoftDiceLoss(smooth=1.0, ignore_index=IGNORE)(logits, target)
        + 0.5 * CELoss(IGNORE, [1, 3, 1])(logits, target)
        + FocalLoss(1.5, ignore_index=IGNORE, class_weights=[1, 1, 2])(logits, target)
        + 2 * TverskyLoss(0.3, 0.7, 0.5, IGNORE)(logits, target)
    )
    torch.testing.assert_close(loss(logits, target), expected)


def test_bce_alias_mode_and_single_term() -> None:
    loss = build_loss([{"name": "bce"}], num_classes=3, mode="multilabel")
    assert isinstance(loss, WeightedSum)
    assert isinstance(loss.terms[0], CELoss)
    assert loss.terms[0].mode == "multilabel"
    logits, target = random_case(2, 3, 8, seed=4, multilabel=True)
    torch.testing.assert_close(loss(logits, target), CELoss()(logits, target), atol=0, rtol=0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            [{"name": "dice"}, {"name": "lovasz"}],
            "loss[1] (lovasz): unknown loss; choose one of dice, ce, bce, focal, tversky",
        ),
        ([{"weight": 1}], "loss[0] (None): unknown loss; choose one of dice"),
        ([{"name": "dice", "gamma": 2}], "loss[0] (dice): "),
        ([{"name": "focal", "gamma": -1}], "loss[0] (focal): gamma must be >= 0; got -1"),
        (
            [{"name": "ce"}, {"name": "focal", "alpha": 2}],
            "loss[1] (focal): alpha must be >= 0 and <= 1; got 2",
        ),
        (
            [{"name": "dice", "weight": "heavy"}],
            "loss[0] (dice): weight must be a finite number; got 'heavy'",
        ),
        (
            [{"name": "dice", "smooth": True}],
            "loss[0] (dice): smooth must be a finite number; got True",
        ),
        (
            [{"name": "ce", "class_weights": [1, 2, 3]}],
            "loss[0] (ce): class_weights has 3 entries but num_classes is 2",
        ),
        (
            [{"name": "ce", "class_weights": [1, -2]}],
            "loss[0] (ce): class_weights must be >= 0 with a positive sum; got [1.0, -2.0]",
        ),
        (
            [{"name": "tversky", "alpha": 0, "beta": 0}],
            "loss[0] (tversky): alpha and beta cannot both be 0",
        ),
        ([{"name": "dice", "weight": 0}], "loss: every term has weight 0"),
        ([], "loss: the list is empty"),
    ],
)
def test_spec_errors_name_the_entry_and_key(spec: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        build_loss(spec, num_classes=2)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 1}, "num_classes must be >= 2 (background counts; binary is 2); got 1"),
        ({"num_classes": 3, "ignore_index": 0}, "ignore_index=0 is a real class"),
        ({"num_classes": 3, "mode": "binary"}, "mode='binary' means num_classes = 2; got 3"),
        ({"num_classes": 3, "mode": "multilabel", "ignore_index": 1}, "ignore_index=1 is a multi"),
        ({"num_classes": 2, "mode": "both"}, "mode must be one of auto, binary, multiclass"),
    ],
)
def test_build_arguments_are_checked(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        build_loss(None, **kwargs)
    assert str(info.value).startswith(message)


def test_multilabel_allows_one_channel() -> None:
    loss = build_loss([{"name": "dice", "class_weights": [1]}], num_classes=1, mode="multilabel")
    logits, target = random_case(2, 1, 8, seed=5, multilabel=True)
    assert torch.isfinite(loss(logits, target))


def test_repr_names_each_loss_options_then_the_shared_ones() -> None:
    assert repr(CELoss(ignore_index=255, class_weights=[1, 2])) == (
        "CELoss(mode='auto', ignore_index=255, class_weights=(1.0, 2.0))"
    )
    assert repr(FocalLoss(gamma=1.5, alpha=0.25, mode="binary")) == (
        "FocalLoss(gamma=1.5, alpha=0.25, mode='binary', ignore_index=None, class_weights=None)"
    )
    assert repr(SoftDiceLoss(smooth=1.0)) == (
        "SoftDiceLoss(alpha=0.5, beta=0.5, smooth=1.0, mode='auto', ignore_index=None, "
        "class_weights=None)"
    )
