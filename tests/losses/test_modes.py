"""Every loss in every mode: mode selection, gradients, ignored entries, input errors."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import torch
from torch import nn

from drunet.losses import CELoss, DiceCELoss, FocalLoss, SoftDiceLoss, TverskyLoss
from tests.losses.cases import IGNORE, random_case

LOSSES: dict[str, Callable[..., nn.Module]] = {
    "dice": SoftDiceLoss,
    "tversky": lambda **kw: TverskyLoss(alpha=0.3, beta=0.7, **kw),
    "ce": CELoss,
    "focal": FocalLoss,
    "dice_ce": DiceCELoss,
}
MODES = {"binary": (1, False), "multiclass": (3, False), "multilabel": (3, True)}


def _case(mode: str, seed: int, ignore: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    channels, multilabel = MODES[mode]
    return random_case(2, channels, 8, seed, ignore=ignore, multilabel=multilabel)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("mode", MODES)
def test_auto_mode_is_decided_by_the_shapes(name: str, mode: str) -> None:
    logits, target = _case(mode, seed=1)
    auto = LOSSES[name](ignore_index=IGNORE)(logits, target)
    explicit = LOSSES[name](ignore_index=IGNORE, mode=mode)(logits, target)
    assert torch.equal(auto, explicit)


@pytest.mark.parametrize("name", LOSSES)
def test_one_channel_multilabel_is_binary(name: str) -> None:
    logits, target = _case("binary", seed=2)
    binary = LOSSES[name](ignore_index=IGNORE)(logits, target)
    multilabel = LOSSES[name](ignore_index=IGNORE)(logits, target.unsqueeze(1))
    torch.testing.assert_close(binary, multilabel, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("mode", MODES)
def test_gradient_flows_and_skips_ignored_entries(name: str, mode: str) -> None:
    logits, target = _case(mode, seed=3)
    logits.requires_grad_(True)
    loss = LOSSES[name](ignore_index=IGNORE)(logits, target)
    assert loss.ndim == 0
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0
    if mode == "multilabel":
        assert logits.grad[target == IGNORE].abs().max() == 0
    else:  # an ignored pixel gets no gradient on any channel
        assert logits.grad.permute(1, 0, 2, 3)[:, target == IGNORE].abs().max() == 0


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("mode", MODES)
def test_every_entry_ignored_gives_zero_not_nan(name: str, mode: str) -> None:
    logits, target = _case(mode, seed=4)
    logits.requires_grad_(True)
    loss = LOSSES[name](ignore_index=IGNORE)(logits, torch.full_like(target, IGNORE))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("mode", MODES)
def test_perfect_prediction_reaches_the_floor(mode: str) -> None:
    # Logits ±20 on the right answer: CE per entry ≈ (C-1)·e^-20 ≈ 4e-9, Dice ≈ 1.
    _, target = _case(mode, seed=5, ignore=False)
    if mode == "multiclass":
        logits = 40 * nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() - 20
    else:
        logits = (40 * target.float() - 20).view(2, -1, 8, 8)
    assert DiceCELoss()(logits, target).item() < 1e-6
    assert 1 - SoftDiceLoss()(logits, target).item() == pytest.approx(1.0, abs=1e-6)
    assert FocalLoss()(logits, target).item() < 1e-12


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("logits_shape", "target_shape"),
    [((2, 3, 4, 4), (2, 2, 4, 4)), ((2, 3, 4, 4), (2, 4, 5)), ((2, 3, 4, 4), (1, 4, 4))],
)
def test_shape_mismatch_names_both_shapes(
    logits_shape: tuple[int, ...], target_shape: tuple[int, ...]
) -> None:
    target = torch.zeros(target_shape, dtype=torch.long)
    pattern = re.escape(str(logits_shape)) + ".*" + re.escape(str(target_shape))
    with pytest.raises(ValueError, match=pattern):
        DiceCELoss()(torch.zeros(logits_shape), target)


@pytest.mark.parametrize(
    ("mode", "logits_shape", "target_shape", "message"),
    [
        ("binary", (1, 2, 2, 2), (1, 2, 2), "mode='binary' expects one sigmoid logit channel"),
        ("multiclass", (1, 1, 2, 2), (1, 2, 2), r"mode='multiclass' expects .* \(C >= 2\)"),
        ("multilabel", (1, 3, 2, 2), (1, 2, 2), r"class-index masks are \(N, H, W\)"),
    ],
)
def test_explicit_mode_checks_the_shapes(
    mode: str, logits_shape: tuple, target_shape: tuple, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        CELoss(mode=mode)(torch.zeros(logits_shape), torch.zeros(target_shape, dtype=torch.long))


def test_bad_target_values_are_named() -> None:
    # A 0/255 mask fed to a binary loss without ignore_index is the classic mistake.
    target = torch.tensor([[[0, 255], [1, 2]]])
    with pytest.raises(ValueError, match=r"\[2, 255\]"):
        DiceCELoss()(torch.zeros(1, 1, 2, 2), target)
    with pytest.raises(ValueError, match=r"\[3\]"):
        CELoss()(torch.zeros(1, 3, 1, 2), torch.tensor([[[0, 3]]]))
    with pytest.raises(ValueError, match=r"target values \[2\] are not 0/1"):
        FocalLoss()(torch.zeros(1, 2, 1, 2), torch.tensor([[[[0, 1]], [[2, 1]]]]))
    with pytest.raises(ValueError, match="float32"):
        SoftDiceLoss()(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2))


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="ignore_index=1"):
        SoftDiceLoss(ignore_index=1)(
            torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long)
        )
    with pytest.raises(ValueError, match="ignore_index=1 is a multilabel target value"):
        CELoss(ignore_index=1)(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="has 2 entries but there are 3 classes"):
        CELoss(class_weights=[1.0, 1.0])(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2).long())
    with pytest.raises(ValueError, match=r"\[-1.0, 1.0\]"):
        SoftDiceLoss(class_weights=[-1.0, 1.0])
    with pytest.raises(ValueError, match="ce_weight=0"):
        DiceCELoss(dice_weight=0, ce_weight=0)
