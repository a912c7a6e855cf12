"""Losses: hand-computed values, parity with smp / torch, ignore_index, errors and gradients."""

from __future__ import annotations

import math
import re

import pytest
import segmentation_models_pytorch as smp
import torch
from torch import nn

from drunet.losses import CELoss, DiceCELoss, SoftDiceLoss, make_loss

IGNORE = 255


def _random_case(
    n: int, c: int, hw: int, seed: int, ignore: bool, classes: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random logits (n, c, hw, hw) and target (n, hw, hw); ~20 % of pixels ignored if asked."""
    gen = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(n, c, hw, hw, generator=gen)
    target = torch.randint(0, classes or max(2, c), (n, hw, hw), generator=gen)
    if ignore:
        target[torch.rand(n, hw, hw, generator=gen) < 0.2] = IGNORE
    return logits, target


# --- hand-computed values -------------------------------------------------------------------------


def test_binary_dice_by_hand() -> None:
    # Logits 0 → p = 0.5 everywhere; one foreground pixel of four.
    # I = 0.5, P = 4·0.5 = 2, T = 1 → dice = 2·0.5 / 3 = 1/3, loss = 2/3.
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[1, 0], [0, 0]]])
    assert SoftDiceLoss()(logits, target).item() == pytest.approx(2 / 3, abs=1e-6)
    # smooth = 1: (2·0.5 + 1) / (2 + 1 + 1) = 0.5 → loss 0.5.
    assert SoftDiceLoss(smooth=1.0)(logits, target).item() == pytest.approx(0.5, abs=1e-6)


def test_binary_dice_ignore_index_changes_the_result() -> None:
    # Ignoring the bottom-right pixel: I = 0.5, P = 1.5, T = 1 → dice = 1 / 2.5 = 0.4, loss 0.6.
    # Calling it background instead gives the 2/3 of the test above.
    logits = torch.zeros(1, 1, 2, 2)
    ignored = torch.tensor([[[1, 0], [0, IGNORE]]])
    background = torch.tensor([[[1, 0], [0, 0]]])
    loss = SoftDiceLoss(ignore_index=IGNORE)
    assert loss(logits, ignored).item() == pytest.approx(0.6, abs=1e-6)
    assert loss(logits, background).item() == pytest.approx(2 / 3, abs=1e-6)


def test_multiclass_dice_by_hand() -> None:
    # C = 2, logits 0 → p = 0.5 for both classes; target has one pixel of class 1.
    # class 0: I = 3·0.5 = 1.5, P = 2, T = 3 → dice 3/5, loss 0.4
    # class 1: I = 0.5, P = 2, T = 1 → dice 1/3, loss 2/3;  mean = (0.4 + 2/3) / 2 = 8/15
    logits = torch.zeros(1, 2, 2, 2)
    target = torch.tensor([[[1, 0], [0, 0]]])
    assert SoftDiceLoss()(logits, target).item() == pytest.approx(8 / 15, abs=1e-6)
    # class_weights (1, 3): (1·0.4 + 3·2/3) / 4 = 0.6
    weighted = SoftDiceLoss(class_weights=[1.0, 3.0])
    assert weighted(logits, target).item() == pytest.approx(0.6, abs=1e-6)


def test_multiclass_dice_absent_class_is_zero_but_counted() -> None:
    # C = 3, p = 1/3; classes 0 and 1 fill two pixels each, class 2 is absent.
    # class 0: I = 2/3, P = 4/3, T = 2 → dice = (4/3) / (10/3) = 0.4, loss 0.6; class 1 the same.
    # class 2: absent → loss 0, still counted: mean = (0.6 + 0.6 + 0) / 3 = 0.4.
    logits = torch.zeros(1, 3, 2, 2)
    target = torch.tensor([[[0, 1], [0, 1]]])
    assert SoftDiceLoss()(logits, target).item() == pytest.approx(0.4, abs=1e-6)


def test_binary_ce_by_hand_with_ignore() -> None:
    # BCE(x, y) = softplus(x) - x·y. Pixels: (2, 1) → ln(1+e^-2) = 0.126928,
    # (-1, 0) → ln(1+e^-1) = 0.313262, (3, 1) → ln(1+e^-3) = 0.048587; (0, ignored).
    # mean over the 3 kept pixels = 0.488777 / 3 = 0.162926.
    logits = torch.tensor([[[[2.0, -1.0], [0.0, 3.0]]]])
    target = torch.tensor([[[1, 0], [IGNORE, 1]]])
    kept = [math.log1p(math.exp(-2)), math.log1p(math.exp(-1)), math.log1p(math.exp(-3))]
    ce = CELoss(ignore_index=IGNORE)(logits, target)
    assert ce.item() == pytest.approx(sum(kept) / 3, abs=1e-6)
    assert ce.item() == pytest.approx(0.162926, abs=1e-6)
    # Calling the pixel background adds ln 2 (logit 0) and divides by 4: 0.295469.
    background = torch.tensor([[[1, 0], [0, 1]]])
    assert CELoss()(logits, background).item() == pytest.approx((sum(kept) + math.log(2)) / 4)


def test_multiclass_weighted_ce_by_hand() -> None:
    # Pixel a: logits (0, 0, 0), class 0 → -ln(1/3) = ln 3.
    # Pixel b: logits (ln 2, 0, 0), class 1 → p1 = 1 / (2 + 1 + 1) → ln 4.
    # weights (1, 2, 1): (1·ln 3 + 2·ln 4) / (1 + 2) = 1.290349
    logits = torch.tensor([[0.0, math.log(2)], [0.0, 0.0], [0.0, 0.0]]).reshape(1, 3, 1, 2)
    target = torch.tensor([[[0, 1]]])
    ce = CELoss(class_weights=[1.0, 2.0, 1.0])(logits, target)
    assert ce.item() == pytest.approx((math.log(3) + 2 * math.log(4)) / 3, abs=1e-6)


def test_dice_ce_is_weighted_sum_by_hand() -> None:
    # Binary, logits 0, one foreground pixel of four: dice loss 2/3, BCE = ln 2 per pixel.
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[1, 0], [0, 0]]])
    assert DiceCELoss()(logits, target).item() == pytest.approx(2 / 3 + math.log(2), abs=1e-6)
    weighted = DiceCELoss(dice_weight=0.5, ce_weight=2.0)(logits, target)
    assert weighted.item() == pytest.approx(1 / 3 + 2 * math.log(2), abs=1e-6)


# --- parity with smp and torch --------------------------------------------------------------------


@pytest.mark.parametrize("ignore", [False, True])
def test_binary_dice_matches_smp(ignore: bool) -> None:
    logits, target = _random_case(4, 1, 16, seed=1, ignore=ignore)
    index = IGNORE if ignore else None
    ours = SoftDiceLoss(ignore_index=index)(logits, target)
    ref = smp.losses.DiceLoss("binary", from_logits=True, ignore_index=index)(logits, target)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("ignore", [False, True])
@pytest.mark.parametrize("weights", [None, [0.5, 1.0, 2.0, 3.0]])
def test_multiclass_dice_matches_smp(ignore: bool, weights: list[float] | None) -> None:
    # classes=3 with 4 channels: class 3 is absent from the target and must be masked like smp.
    logits, target = _random_case(3, 4, 12, seed=2, ignore=ignore, classes=3)
    index = IGNORE if ignore else None
    ours = SoftDiceLoss(ignore_index=index, class_weights=weights)(logits, target)
    ref = smp.losses.DiceLoss(
        "multiclass", from_logits=True, ignore_index=index, class_weights=weights
    )(logits, target)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_binary_empty_foreground_dice_is_zero_like_smp() -> None:
    # Every pixel predicted foreground, none is: Dice has nothing to score (0, as in smp) ...
    logits = torch.full((2, 1, 4, 4), 3.0)
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    ref = smp.losses.DiceLoss("binary", from_logits=True)(logits, target)
    assert SoftDiceLoss()(logits, target).item() == 0.0 == ref.item()
    # ... but the BCE term still punishes the false positives: softplus(3) = 3.048587.
    assert DiceCELoss()(logits, target).item() == pytest.approx(math.log1p(math.exp(3)), abs=1e-5)


def test_binary_ce_matches_smp_without_ignore() -> None:
    logits, target = _random_case(4, 1, 16, seed=3, ignore=False)
    ref = smp.losses.SoftBCEWithLogitsLoss(ignore_index=None)(logits[:, 0], target.float())
    torch.testing.assert_close(CELoss()(logits, target), ref, atol=1e-5, rtol=0)


def test_binary_ce_with_ignore_is_smp_rescaled_to_kept_pixels() -> None:
    # smp zeroes ignored pixels but still divides by *all* pixels; we divide by the kept ones.
    logits, target = _random_case(4, 1, 16, seed=4, ignore=True)
    kept = (target != IGNORE).sum().item()
    ref = smp.losses.SoftBCEWithLogitsLoss(ignore_index=IGNORE)(logits[:, 0], target.float())
    ours = CELoss(ignore_index=IGNORE)(logits, target)
    torch.testing.assert_close(ours, ref * target.numel() / kept, atol=1e-5, rtol=0)
    assert abs(ours.item() - ref.item()) > 1e-3  # the two conventions really differ here


@pytest.mark.parametrize("ignore", [False, True])
@pytest.mark.parametrize("weights", [None, [0.5, 1.0, 2.0]])
def test_multiclass_ce_matches_torch(ignore: bool, weights: list[float] | None) -> None:
    logits, target = _random_case(3, 3, 12, seed=5, ignore=ignore)
    kwargs = {"ignore_index": IGNORE} if ignore else {}
    weight = None if weights is None else torch.tensor(weights)
    ref = nn.CrossEntropyLoss(weight=weight, **kwargs)(logits, target)
    ours = CELoss(ignore_index=IGNORE if ignore else None, class_weights=weights)(logits, target)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_weighted_binary_ce_equals_two_class_ce() -> None:
    # A binary logit x is the two-class logit pair (0, x): sigmoid(x) = softmax(0, x)[1].
    logits, target = _random_case(2, 1, 8, seed=6, ignore=True)
    pair = torch.cat([torch.zeros_like(logits), logits], dim=1)
    weights = [0.3, 2.0]
    ref = nn.CrossEntropyLoss(weight=torch.tensor(weights), ignore_index=IGNORE)(pair, target)
    ours = CELoss(ignore_index=IGNORE, class_weights=weights)(logits, target)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("channels", [1, 4])
def test_dice_ce_is_sum_of_parts(channels: int) -> None:
    logits, target = _random_case(2, channels, 8, seed=7, ignore=True)
    parts = SoftDiceLoss(ignore_index=IGNORE)(logits, target), CELoss(IGNORE)(logits, target)
    total = DiceCELoss(dice_weight=0.3, ce_weight=1.7, ignore_index=IGNORE)(logits, target)
    torch.testing.assert_close(total, 0.3 * parts[0] + 1.7 * parts[1])
    assert total.ndim == 0


# --- behaviour ------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_loss_is_differentiable(channels: int) -> None:
    logits, target = _random_case(2, channels, 8, seed=8, ignore=True)
    logits.requires_grad_(True)
    DiceCELoss(ignore_index=IGNORE)(logits, target).backward()
    assert logits.grad is not None
    assert torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0
    # Ignored pixels get no gradient at all.
    assert logits.grad.permute(1, 0, 2, 3)[:, target == IGNORE].abs().max() == 0


@pytest.mark.parametrize("channels", [1, 3])
def test_every_pixel_ignored_gives_zero_not_nan(channels: int) -> None:
    logits = torch.randn(1, channels, 4, 4, requires_grad=True)
    target = torch.full((1, 4, 4), IGNORE)
    loss = DiceCELoss(ignore_index=IGNORE)(logits, target)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(logits.grad).all()


def test_perfect_prediction_reaches_the_floor() -> None:
    # Logits ±20 on the right class: CE per pixel ≈ (C-1)·e^-20 ≈ 4e-9, Dice ≈ 1.
    target = torch.randint(0, 3, (2, 8, 8), generator=torch.Generator().manual_seed(9))
    multi = 40 * nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() - 20
    binary = (40 * (target == 1).float() - 20).unsqueeze(1)
    assert DiceCELoss()(multi, target).item() < 1e-6
    assert DiceCELoss()(binary, (target == 1).long()).item() < 1e-6
    assert 1 - SoftDiceLoss()(multi, target).item() == pytest.approx(1.0, abs=1e-6)


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("logits_shape", "target_shape"),
    [((2, 1, 4, 4), (2, 1, 4, 4)), ((2, 3, 4, 4), (2, 4, 5)), ((2, 3, 4, 4), (1, 4, 4))],
)
def test_shape_mismatch_names_both_shapes(
    logits_shape: tuple[int, ...], target_shape: tuple[int, ...]
) -> None:
    target = torch.zeros(target_shape, dtype=torch.long)
    pattern = re.escape(str(logits_shape)) + ".*" + re.escape(str(target_shape))
    with pytest.raises(ValueError, match=pattern):
        DiceCELoss()(torch.zeros(logits_shape), target)


def test_bad_target_values_are_named() -> None:
    # A 0/255 mask fed to a binary loss without ignore_index is the classic mistake.
    target = torch.tensor([[[0, 255], [1, 2]]])
    with pytest.raises(ValueError, match=r"\[2, 255\]"):
        DiceCELoss()(torch.zeros(1, 1, 2, 2), target)
    with pytest.raises(ValueError, match=r"\[3\]"):
        CELoss()(torch.zeros(1, 3, 1, 2), torch.tensor([[[0, 3]]]))
    with pytest.raises(ValueError, match="float32"):
        SoftDiceLoss()(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2))


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="ignore_index=1"):
        SoftDiceLoss(ignore_index=1)(
            torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long)
        )
    with pytest.raises(ValueError, match="has 2 entries but there are 3 classes"):
        CELoss(class_weights=[1.0, 1.0])(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2).long())
    with pytest.raises(ValueError, match=r"\[-1.0, 1.0\]"):
        SoftDiceLoss(class_weights=[-1.0, 1.0])
    with pytest.raises(ValueError, match="ce_weight=0"):
        DiceCELoss(dice_weight=0, ce_weight=0)


def test_make_loss() -> None:
    with pytest.raises(ValueError, match="got 1"):
        make_loss(1)
    with pytest.raises(ValueError, match="ignore_index=0"):
        make_loss(3, ignore_index=0)
    loss = make_loss(2, ignore_index=IGNORE)
    assert isinstance(loss, DiceCELoss)
    logits, target = _random_case(2, 1, 8, seed=10, ignore=True)
    assert torch.isfinite(loss(logits, target))
