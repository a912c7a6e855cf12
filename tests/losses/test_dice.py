"""Soft Dice and Tversky: hand-computed values, Dice = Tversky(1/2, 1/2), parity with smp."""

from __future__ import annotations

import pytest
import segmentation_models_pytorch as smp
import torch

from drunet.losses import SoftDiceLoss, TverskyLoss
from tests.losses.cases import IGNORE, random_case

# --- hand-computed values -------------------------------------------------------------------------


def test_binary_dice_by_hand() -> None:
    # Logits 0 → p = 0.5 everywhere; one foreground pixel of four.
    # I = 0.5, P = 4·0.5 = 2, T = 1 → dice = I / ((P + T)/2) = 0.5 / 1.5 = 1/3, loss = 2/3.
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[1, 0], [0, 0]]])
    assert SoftDiceLoss()(logits, target).item() == pytest.approx(2 / 3, abs=1e-6)
    # smooth = 1 (smp's convention): (0.5 + 1) / (1.5 + 1) = 0.6 → loss 0.4.
    assert SoftDiceLoss(smooth=1.0)(logits, target).item() == pytest.approx(0.4, abs=1e-6)


def test_binary_dice_ignore_index_changes_the_result() -> None:
    # Ignoring the bottom-right pixel: I = 0.5, P = 1.5, T = 1 → dice = 0.5 / 1.25 = 0.4, loss 0.6.
    # Calling it background instead gives the 2/3 of the test above.
    logits = torch.zeros(1, 1, 2, 2)
    ignored = torch.tensor([[[1, 0], [0, IGNORE]]])
    background = torch.tensor([[[1, 0], [0, 0]]])
    loss = SoftDiceLoss(ignore_index=IGNORE)
    assert loss(logits, ignored).item() == pytest.approx(0.6, abs=1e-6)
    assert loss(logits, background).item() == pytest.approx(2 / 3, abs=1e-6)


def test_multiclass_dice_by_hand() -> None:
    # C = 2, logits 0 → p = 0.5 for both classes; target has one pixel of class 1.
    # class 0: I = 3·0.5 = 1.5, P = 2, T = 3 → dice 1.5 / 2.5 = 3/5, loss 0.4
    # class 1: I = 0.5, P = 2, T = 1 → dice 0.5 / 1.5 = 1/3, loss 2/3;  mean = 8/15
    logits = torch.zeros(1, 2, 2, 2)
    target = torch.tensor([[[1, 0], [0, 0]]])
    assert SoftDiceLoss()(logits, target).item() == pytest.approx(8 / 15, abs=1e-6)
    # class_weights (1, 3): (1·0.4 + 3·2/3) / 4 = 0.6
    weighted = SoftDiceLoss(class_weights=[1.0, 3.0])
    assert weighted(logits, target).item() == pytest.approx(0.6, abs=1e-6)


def test_multiclass_dice_absent_class_is_zero_but_counted() -> None:
    # C = 3, p = 1/3; classes 0 and 1 fill two pixels each, class 2 is absent.
    # class 0: I = 2/3, P = 4/3, T = 2 → dice = (2/3) / (5/3) = 0.4, loss 0.6; class 1 the same.
    # class 2: absent → loss 0, still counted: mean = (0.6 + 0.6 + 0) / 3 = 0.4.
    logits = torch.zeros(1, 3, 2, 2)
    target = torch.tensor([[[0, 1], [0, 1]]])
    assert SoftDiceLoss()(logits, target).item() == pytest.approx(0.4, abs=1e-6)


def test_multilabel_dice_by_hand() -> None:
    # Two independent channels, logits 0 → p = 0.5 everywhere.
    # channel 0, target [1, 0, 0, 0]: I = 0.5, P = 2, T = 1 → dice 1/3, loss 2/3
    # channel 1, target [1, 1, 0, 0]: I = 1, P = 2, T = 2 → dice 1/2, loss 1/2;  mean = 7/12
    logits = torch.zeros(1, 2, 2, 2)
    target = torch.tensor([[[[1, 0], [0, 0]], [[1, 1], [0, 0]]]])
    assert SoftDiceLoss()(logits, target).item() == pytest.approx(7 / 12, abs=1e-6)
    # Ignoring channel 1's last element only: P = 1.5, T = 2, I = 1 → dice 1 / 1.75 = 4/7,
    # loss 3/7; channel 0 is unchanged → mean (2/3 + 3/7) / 2 = 23/42.
    target[0, 1, 1, 1] = IGNORE
    loss = SoftDiceLoss(ignore_index=IGNORE, mode="multilabel")
    assert loss(logits, target).item() == pytest.approx(23 / 42, abs=1e-6)
    # class_weights (3, 1): (3·2/3 + 1·3/7) / 4 = 17/28
    weighted = SoftDiceLoss(ignore_index=IGNORE, class_weights=[3, 1])
    assert weighted(logits, target).item() == pytest.approx(17 / 28, abs=1e-6)


def test_tversky_by_hand() -> None:
    # Logits 0 → p = 0.5; one foreground pixel of four: tp = 0.5, fp = 3·0.5 = 1.5, fn = 0.5.
    # alpha 0.3, beta 0.7: T = 0.5 / (0.5 + 0.45 + 0.35) = 0.5 / 1.3 → loss 0.8 / 1.3
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[1, 0], [0, 0]]])
    loss = TverskyLoss(alpha=0.3, beta=0.7)(logits, target)
    assert loss.item() == pytest.approx(0.8 / 1.3, abs=1e-6)
    # smooth 1: (0.5 + 1) / (1.3 + 1) = 1.5 / 2.3 → loss 0.8 / 2.3
    smoothed = TverskyLoss(alpha=0.3, beta=0.7, smooth=1.0)(logits, target)
    assert smoothed.item() == pytest.approx(0.8 / 2.3, abs=1e-6)
    # alpha = beta = 1 is soft IoU: 0.5 / (0.5 + 1.5 + 0.5) = 0.2 → loss 0.8
    assert TverskyLoss(1.0, 1.0)(logits, target).item() == pytest.approx(0.8, abs=1e-6)


# --- Dice is Tversky(1/2, 1/2) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channels", "multilabel"), [(1, False), (4, False), (3, True)], ids=["bin", "mc", "ml"]
)
@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_tversky_half_half_is_dice_exactly(channels: int, multilabel: bool, smooth: float) -> None:
    logits, target = random_case(2, channels, 8, seed=1, ignore=True, multilabel=multilabel)
    weights = None if channels == 1 else [float(c + 1) for c in range(channels)]
    kwargs = {"smooth": smooth, "ignore_index": IGNORE, "class_weights": weights}
    dice = SoftDiceLoss(**kwargs)(logits, target)
    tversky = TverskyLoss(alpha=0.5, beta=0.5, **kwargs)(logits, target)
    assert torch.equal(dice, tversky)


# --- parity with smp ------------------------------------------------------------------------------

_SMP_CASES = [  # (smp mode, channels, multilabel target, class weights)
    ("binary", 1, False, None),
    ("multiclass", 4, False, None),
    ("multiclass", 4, False, [0.5, 1.0, 2.0, 3.0]),
    ("multilabel", 3, True, None),
    ("multilabel", 3, True, [2.0, 1.0, 0.5]),
]


@pytest.mark.parametrize(("mode", "channels", "multilabel", "weights"), _SMP_CASES)
@pytest.mark.parametrize("ignore", [False, True])
@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_dice_matches_smp(
    mode: str,
    channels: int,
    multilabel: bool,
    weights: list[float] | None,
    ignore: bool,
    smooth: float,
) -> None:
    # Multiclass draws classes 0..2 of 4: class 3 is absent and must be masked like smp does.
    classes = 3 if mode == "multiclass" else None
    logits, target = random_case(3, channels, 12, 2, ignore, classes, multilabel)
    index = IGNORE if ignore else None
    ours = SoftDiceLoss(smooth=smooth, ignore_index=index, class_weights=weights)(logits, target)
    ref = smp.losses.DiceLoss(
        mode, from_logits=True, smooth=smooth, ignore_index=index, class_weights=weights
    )(logits, target)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("mode", "channels", "multilabel", "weights"), _SMP_CASES)
@pytest.mark.parametrize("ignore", [False, True])
def test_tversky_matches_smp(
    mode: str, channels: int, multilabel: bool, weights: list[float] | None, ignore: bool
) -> None:
    classes = 3 if mode == "multiclass" else None
    logits, target = random_case(3, channels, 12, 3, ignore, classes, multilabel)
    index = IGNORE if ignore else None
    kwargs = {"alpha": 0.3, "beta": 0.7, "smooth": 0.5, "ignore_index": index}
    ours = TverskyLoss(**kwargs, class_weights=weights, mode=mode)(logits, target)
    ref = smp.losses.TverskyLoss(mode, class_weights=weights, **kwargs)(logits, target)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_tversky_one_one_matches_smp_jaccard(mode: str) -> None:
    channels = 1 if mode == "binary" else 3
    logits, target = random_case(2, channels, 10, 4, True, multilabel=mode == "multilabel")
    ours = TverskyLoss(alpha=1.0, beta=1.0, ignore_index=IGNORE)(logits, target)
    ref = smp.losses.JaccardLoss(mode, ignore_index=IGNORE)(logits, target)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_binary_empty_foreground_dice_is_zero_like_smp() -> None:
    # Every pixel predicted foreground, none is: Dice has nothing to score (0, as in smp).
    logits = torch.full((2, 1, 4, 4), 3.0)
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    ref = smp.losses.DiceLoss("binary", from_logits=True)(logits, target)
    assert SoftDiceLoss()(logits, target).item() == 0.0 == ref.item()


# --- arguments ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": -0.1}, "alpha must be >= 0; got -0.1"),
        ({"beta": "x"}, "beta must be a finite number; got 'x'"),
        ({"alpha": 0, "beta": 0}, "cannot both be 0"),
        ({"smooth": -1}, "smooth must be >= 0; got -1"),
        ({"eps": 0}, "eps must be > 0; got 0"),
        (
            {"mode": "multi"},
            "mode must be one of auto, binary, multiclass, multilabel; got 'multi'",
        ),
    ],
)
def test_bad_tversky_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TverskyLoss(**kwargs)
