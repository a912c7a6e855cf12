"""Cross-entropy and focal loss: hand-computed values, parity with smp and torch."""

from __future__ import annotations

import math

import pytest
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from segmentation_models_pytorch.losses._functional import softmax_focal_loss_with_logits
from torch import nn

from drunet.losses import CELoss, FocalLoss
from tests.losses.cases import IGNORE, random_case

# --- cross-entropy by hand ------------------------------------------------------------------------


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


def test_multilabel_ce_by_hand() -> None:
    # Two channels, one pixel each side: (logit, target) channel 0: (0, 1), (2, 0);
    # channel 1: (0, 0), (-1, ignored).  ℓ = softplus(x) - x·y:
    # ln 2, softplus(2) = 2.126928, ln 2 → mean over 3 kept = (2 ln 2 + 2.126928) / 3 = 1.171074
    logits = torch.tensor([[[[0.0, 2.0]], [[0.0, -1.0]]]])  # (1, 2, 1, 2)
    target = torch.tensor([[[[1, 0]], [[0, IGNORE]]]])
    softplus2 = math.log1p(math.exp(2))
    ce = CELoss(ignore_index=IGNORE)(logits, target)
    assert ce.item() == pytest.approx((2 * math.log(2) + softplus2) / 3, abs=1e-6)
    # channel weights (1, 3): (ln 2 + softplus(2) + 3·ln 2) / (1 + 1 + 3) = 0.979913
    weighted = CELoss(ignore_index=IGNORE, class_weights=[1, 3])(logits, target)
    assert weighted.item() == pytest.approx((4 * math.log(2) + softplus2) / 5, abs=1e-6)


# --- cross-entropy parity -------------------------------------------------------------------------


@pytest.mark.parametrize("multilabel", [False, True])
def test_bce_matches_smp_without_ignore(multilabel: bool) -> None:
    channels = 3 if multilabel else 1
    logits, target = random_case(4, channels, 16, seed=3, multilabel=multilabel)
    ref = smp.losses.SoftBCEWithLogitsLoss(ignore_index=None)(
        logits, target.view_as(logits).float()
    )
    torch.testing.assert_close(CELoss()(logits, target), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("multilabel", [False, True])
def test_bce_with_ignore_is_smp_rescaled_to_kept_entries(multilabel: bool) -> None:
    # smp zeroes ignored entries but still divides by *all* of them; we divide by the kept ones.
    channels = 3 if multilabel else 1
    logits, target = random_case(4, channels, 16, 4, ignore=True, multilabel=multilabel)
    kept = (target != IGNORE).sum().item()
    ref = smp.losses.SoftBCEWithLogitsLoss(ignore_index=IGNORE)(
        logits, target.view_as(logits).float()
    )
    ours = CELoss(ignore_index=IGNORE)(logits, target)
    torch.testing.assert_close(ours, ref * target.numel() / kept, atol=1e-5, rtol=0)
    assert abs(ours.item() - ref.item()) > 1e-3  # the two conventions really differ here


def test_weighted_multilabel_bce_matches_torch() -> None:
    logits, target = random_case(2, 3, 8, seed=5, ignore=True, multilabel=True)
    weights = torch.tensor([0.5, 1.0, 4.0]).view(1, 3, 1, 1)
    keep = (target != IGNORE).float()
    per_element = F.binary_cross_entropy_with_logits(
        logits, target.clamp(max=1).float(), weight=weights * keep, reduction="sum"
    )
    ref = per_element / (weights * keep).sum()
    ours = CELoss(ignore_index=IGNORE, class_weights=[0.5, 1.0, 4.0])(logits, target)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("ignore", [False, True])
@pytest.mark.parametrize("weights", [None, [0.5, 1.0, 2.0]])
def test_multiclass_ce_matches_torch(ignore: bool, weights: list[float] | None) -> None:
    logits, target = random_case(3, 3, 12, seed=5, ignore=ignore)
    kwargs = {"ignore_index": IGNORE} if ignore else {}
    weight = None if weights is None else torch.tensor(weights)
    ref = nn.CrossEntropyLoss(weight=weight, **kwargs)(logits, target)
    ours = CELoss(ignore_index=IGNORE if ignore else None, class_weights=weights)(logits, target)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_weighted_binary_ce_equals_two_class_ce() -> None:
    # A binary logit x is the two-class logit pair (0, x): sigmoid(x) = softmax(0, x)[1].
    logits, target = random_case(2, 1, 8, seed=6, ignore=True)
    pair = torch.cat([torch.zeros_like(logits), logits], dim=1)
    weights = [0.3, 2.0]
    ref = nn.CrossEntropyLoss(weight=torch.tensor(weights), ignore_index=IGNORE)(pair, target)
    ours = CELoss(ignore_index=IGNORE, class_weights=weights)(logits, target)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


# --- focal by hand --------------------------------------------------------------------------------


def test_binary_focal_by_hand() -> None:
    # ℓ = (1 - p_t)^2 · (-ln p_t), gamma 2. Pixels (logit, target):
    #   a (0, 1):    p_t = 1/2 → (1/2)^2 · ln 2     = 0.173287
    #   b (ln 3, 1): p_t = 3/4 → (1/4)^2 · ln(4/3)  = 0.017980
    #   c (ln 3, 0): p_t = 1/4 → (3/4)^2 · ln 4     = 0.779791
    #   d ignored.  mean over 3 = 0.971058 / 3 = 0.323686
    ln3 = math.log(3)
    logits = torch.tensor([[[[0.0, ln3], [ln3, 5.0]]]])
    target = torch.tensor([[[1, 1], [0, IGNORE]]])
    a, b, c = math.log(2) / 4, math.log(4 / 3) / 16, 9 / 16 * math.log(4)
    focal = FocalLoss(ignore_index=IGNORE)(logits, target)
    assert focal.item() == pytest.approx((a + b + c) / 3, abs=1e-6)
    assert focal.item() == pytest.approx(0.323686, abs=1e-6)
    # alpha 0.25 scales positives (a, b) by 0.25 and negatives (c) by 0.75, denominator 3 kept:
    # (0.25·0.191267 + 0.75·0.779791) / 3 = 0.210887
    alpha = FocalLoss(alpha=0.25, ignore_index=IGNORE)(logits, target)
    assert alpha.item() == pytest.approx((0.25 * (a + b) + 0.75 * c) / 3, abs=1e-6)
    # class_weights (background 2, foreground 1): (a + b + 2c) / (1 + 1 + 2) = 0.437715
    weighted = FocalLoss(ignore_index=IGNORE, class_weights=[2, 1])(logits, target)
    assert weighted.item() == pytest.approx((a + b + 2 * c) / 4, abs=1e-6)


def test_multiclass_focal_by_hand() -> None:
    # Softmax focal, gamma 2. Pixel a: logits (0, 0, 0), class 0 → p_t = 1/3:
    #   (2/3)^2 · ln 3 = 0.488272.  Pixel b: logits (ln 2, 0, 0), class 1 → p_t = 1/4:
    #   (3/4)^2 · ln 4 = 0.779791.  mean = 0.634032; weights (1, 2, 1): (a + 2b) / 3 = 0.682618
    logits = torch.tensor([[0.0, math.log(2)], [0.0, 0.0], [0.0, 0.0]]).reshape(1, 3, 1, 2)
    target = torch.tensor([[[0, 1]]])
    a, b = 4 / 9 * math.log(3), 9 / 16 * math.log(4)
    assert FocalLoss()(logits, target).item() == pytest.approx((a + b) / 2, abs=1e-6)
    weighted = FocalLoss(class_weights=[1, 2, 1])(logits, target)
    assert weighted.item() == pytest.approx((a + 2 * b) / 3, abs=1e-6)
    # gamma 1: (2/3)·ln 3 and (3/4)·ln 4
    gamma1 = FocalLoss(gamma=1.0)(logits, target)
    assert gamma1.item() == pytest.approx((2 / 3 * math.log(3) + 0.75 * math.log(4)) / 2)


@pytest.mark.parametrize(
    ("channels", "multilabel"), [(1, False), (4, False), (3, True)], ids=["bin", "mc", "ml"]
)
def test_focal_with_gamma_zero_is_ce(channels: int, multilabel: bool) -> None:
    logits, target = random_case(2, channels, 8, seed=7, ignore=True, multilabel=multilabel)
    weights = [0.5 + c for c in range(max(2, channels))]
    kwargs = {"ignore_index": IGNORE, "class_weights": weights}
    focal = FocalLoss(gamma=0.0, **kwargs)(logits, target)
    torch.testing.assert_close(focal, CELoss(**kwargs)(logits, target), atol=1e-6, rtol=0)


# --- focal parity ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ignore", [False, True])
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_binary_focal_matches_smp(ignore: bool, alpha: float | None) -> None:
    logits, target = random_case(4, 1, 16, seed=8, ignore=ignore)
    index = IGNORE if ignore else None
    ours = FocalLoss(alpha=alpha, ignore_index=index)(logits, target)
    ref = smp.losses.FocalLoss("binary", alpha=alpha, ignore_index=index)(logits, target)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("alpha", [None, 0.25])
@pytest.mark.parametrize("weights", [None, [0.5, 1.0, 3.0]])
def test_multilabel_focal_matches_smp(alpha: float | None, weights: list[float] | None) -> None:
    logits, target = random_case(3, 3, 12, seed=9, multilabel=True)
    ours = FocalLoss(alpha=alpha, class_weights=weights)(logits, target)
    ref = smp.losses.FocalLoss("multilabel", alpha=alpha, class_weights=weights)(logits, target)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def _smp_channel_focals(logits: torch.Tensor, target: torch.Tensor, **kwargs) -> torch.Tensor:
    """smp's multilabel focal per channel, ``(C,)``. (smp 0.6's own multilabel mode raises
    IndexError with ignore_index, so each channel goes through its binary mode.)"""
    binary = smp.losses.FocalLoss("binary", ignore_index=IGNORE, **kwargs)
    return torch.stack([binary(logits[:, c : c + 1], target[:, c]) for c in range(3)])


@pytest.mark.parametrize("alpha", [None, 0.25])
@pytest.mark.parametrize("weights", [None, [0.5, 1.0, 3.0]])
def test_multilabel_focal_with_whole_pixels_ignored_matches_smp(
    alpha: float | None, weights: list[float] | None
) -> None:
    # smp averages each channel, then the channels (weighted); that equals our mean over all
    # elements whenever every channel keeps the same number of elements: ignore whole pixels.
    logits, target = random_case(3, 3, 12, seed=9, multilabel=True)
    pixels = torch.rand(3, 1, 12, 12, generator=torch.Generator().manual_seed(0)) < 0.2
    target = target.masked_fill(pixels, IGNORE)
    means = _smp_channel_focals(logits, target, alpha=alpha)
    w = torch.ones(3) if weights is None else torch.tensor(weights)
    ours = FocalLoss(alpha=alpha, ignore_index=IGNORE, class_weights=weights)(logits, target)
    torch.testing.assert_close(ours, (w * means).sum() / w.sum(), atol=1e-5, rtol=0)


def test_multilabel_focal_with_ragged_ignore_weights_channels_by_kept_count() -> None:
    # Element-wise ignoring leaves channels with different counts n_c: we average all kept
    # elements, i.e. Σ n_c·m_c / Σ n_c with m_c smp's per-channel focal mean.
    logits, target = random_case(2, 3, 10, seed=10, ignore=True, multilabel=True)
    counts = (target != IGNORE).sum(dim=(0, 2, 3)).float()  # (C,)
    means = _smp_channel_focals(logits, target)
    ours = FocalLoss(ignore_index=IGNORE)(logits, target)
    torch.testing.assert_close(ours, (counts * means).sum() / counts.sum(), atol=1e-5, rtol=0)
    assert abs(ours.item() - means.mean().item()) > 1e-5  # smp's mean of means differs here


@pytest.mark.parametrize("ignore", [False, True])
def test_multiclass_focal_matches_smp_softmax_focal(ignore: bool) -> None:
    # smp's FocalLoss("multiclass") is one-vs-rest sigmoid; its softmax focal is a function.
    logits, target = random_case(3, 4, 12, seed=11, ignore=ignore)
    keep = (target != IGNORE).reshape(-1)
    flat_logits = logits.permute(0, 2, 3, 1).reshape(-1, 4)[keep]  # (P, C)
    ref = softmax_focal_loss_with_logits(flat_logits, target.reshape(-1)[keep], gamma=2.0)
    ours = FocalLoss(ignore_index=IGNORE if ignore else None)(logits, target)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("weights", [None, [1.0, 2.0, 0.5, 1.0]])
def test_smp_multiclass_focal_is_our_multilabel_on_one_hot(weights: list[float] | None) -> None:
    logits, target = random_case(2, 4, 10, seed=12)
    one_hot = F.one_hot(target, 4).permute(0, 3, 1, 2)
    ours = FocalLoss(class_weights=weights, mode="multilabel")(logits, one_hot)
    ref = smp.losses.FocalLoss("multiclass", class_weights=weights)(logits, target)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


# --- focal behaviour and arguments ----------------------------------------------------------------


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_focal_gradient_is_finite_on_saturated_logits(gamma: float) -> None:
    # logit 200 on a positive: p_t = 1 exactly in float32, 1 - p_t = 0 and 0^(gamma-1) = inf.
    logits = torch.tensor([[[[200.0, -3.0]]]], requires_grad=True)
    FocalLoss(gamma=gamma)(logits, torch.tensor([[[1, 1]]])).backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad[0, 0, 0, 1] < 0  # the wrong pixel is pushed up


def test_alpha_is_rejected_for_multiclass() -> None:
    with pytest.raises(ValueError, match="for multiclass set class_weights"):
        FocalLoss(alpha=0.25, mode="multiclass")
    with pytest.raises(ValueError, match="for multiclass set class_weights"):
        FocalLoss(alpha=0.25)(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gamma": -1}, "gamma must be >= 0; got -1"),
        ({"alpha": 1.5}, "alpha must be >= 0 and <= 1; got 1.5"),
        ({"gamma": float("nan")}, "gamma must be a finite number; got nan"),
        ({"class_weights": "1,2"}, "class_weights must be a list of numbers; got '1,2'"),
    ],
)
def test_bad_focal_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FocalLoss(**kwargs)
