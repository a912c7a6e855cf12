"""Per-image statistics and every reduction against segmentation_models_pytorch.metrics."""

from __future__ import annotations

import math

import pytest
import segmentation_models_pytorch as smp
import torch

from drunet.metrics import StatsMeter, image_stats, logits_to_labels, reduce_stats

IGNORE = 255
METRICS = {"dice": "f1_score", "iou": "iou_score", "precision": "precision", "recall": "recall"}
REDUCTIONS = ["micro", "macro", "micro-imagewise", "macro-imagewise"]


def _case(kind: str, seed: int = 0) -> tuple[dict, tuple[torch.Tensor, ...]]:
    """Our ``image_stats`` arguments and smp's ``(tp, fp, fn, tn)`` for the foreground classes.

    Image 0 is empty (background only, in prediction and truth) so every imagewise reduction
    meets a zero denominator; multiclass class 4 is never present, so macro meets one too.
    """
    gen = torch.Generator().manual_seed(seed)
    ignore = kind.endswith("+ignore")
    if kind.startswith("multilabel"):
        logits = torch.randn(4, 3, 12, 12, generator=gen)
        pred = logits_to_labels(logits, mode="multilabel")  # (N, C, H, W)
        target = (torch.rand(4, 3, 12, 12, generator=gen) < 0.4).long()
        pred[0], target[0] = 0, 0
        ours = {"num_classes": 3, "multilabel": True}
        classes = [0, 1, 2]
        if ignore:
            target[torch.rand(target.shape, generator=gen) < 0.2] = IGNORE
            # smp has no multilabel ignore_index: zeroing both sides leaves tp, fp, fn unchanged.
            kept = target != IGNORE
            stats = smp.metrics.get_stats(pred * kept, target * kept, "multilabel")
        else:
            stats = smp.metrics.get_stats(pred, target, "multilabel")
    elif kind.startswith("binary"):
        logits = torch.randn(4, 1, 12, 12, generator=gen)
        pred = logits_to_labels(logits)  # (N, H, W)
        target = (torch.rand(4, 12, 12, generator=gen) < 0.3).long()
        pred[0], target[0] = 0, 0
        ours = {"num_classes": 2}
        classes = [1]
        stats = smp.metrics.get_stats(pred.unsqueeze(1), target.unsqueeze(1), "binary")
    else:
        logits = torch.randn(4, 5, 12, 12, generator=gen)
        logits[:, 4] = -100  # class 4 is never predicted, and never in the target
        pred = logits_to_labels(logits)
        target = torch.randint(0, 4, (4, 12, 12), generator=gen)
        pred[0], target[0] = 0, 0
        ours = {"num_classes": 5}
        classes = [1, 2, 3, 4]
        if ignore:
            target[torch.rand(target.shape, generator=gen) < 0.15] = IGNORE
        index = IGNORE if ignore else None
        stats = smp.metrics.get_stats(pred, target, "multiclass", ignore_index=index, num_classes=5)
        stats = tuple(s[:, 1:] for s in stats)  # foreground
    if ignore:
        ours["ignore_index"] = IGNORE
    return {"pred": pred, "target": target, "classes": classes, **ours}, stats


KINDS = ["binary", "multiclass", "multiclass+ignore", "multilabel", "multilabel+ignore"]


@pytest.mark.parametrize("kind", KINDS)
def test_stats_match_smp(kind: str) -> None:
    args, ref = _case(kind)
    classes = args.pop("classes")
    stats = image_stats(**args)
    for name, ours, theirs in zip(("tp", "fp", "fn"), stats[:3], ref[:3], strict=True):
        assert torch.equal(ours[:, classes], theirs), name
    if kind != "multilabel+ignore":  # there smp counts the ignored elements as tn
        assert torch.equal(stats.tn[:, classes], ref[3])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_reductions_match_smp(kind: str, reduction: str) -> None:
    args, ref = _case(kind, seed=1)
    classes = args.pop("classes")
    ours = reduce_stats(image_stats(**args), reduction, classes)
    for name, smp_name in METRICS.items():
        theirs = getattr(smp.metrics, smp_name)(*ref, reduction=reduction, zero_division=1.0)
        assert math.isfinite(theirs.item())  # micro: the summed denominators are non-zero
        assert ours[name].item() == pytest.approx(theirs.item(), abs=1e-5), name


@pytest.mark.parametrize("kind", KINDS)
def test_meter_means_match_smp(kind: str) -> None:
    args, ref = _case(kind, seed=2)
    args.pop("classes")
    pred, target = args.pop("pred"), args.pop("target")
    meter = StatsMeter(**args)
    meter.update(pred[:2], target[:2])
    meter.update(pred[2:], target[2:])
    for reduction in REDUCTIONS:
        scores = meter.compute(reduction)
        theirs = smp.metrics.iou_score(*ref, reduction=reduction, zero_division=1.0)
        assert scores.mean_iou == pytest.approx(theirs.item(), abs=1e-5)


def test_smp_micro_ignores_zero_division_but_we_apply_the_empty_rule() -> None:
    # Nothing predicted, nothing true: smp's reduction="micro" divides 0 by 0 whatever
    # zero_division says; every other reduction (and all of ours) gives the empty score.
    empty = torch.zeros(2, 1, 4, 4, dtype=torch.long)
    ref = smp.metrics.get_stats(empty, empty, "binary")
    assert math.isnan(smp.metrics.f1_score(*ref, reduction="micro", zero_division=1.0).item())
    assert smp.metrics.f1_score(*ref, reduction="macro", zero_division=1.0).item() == 1.0
    stats = image_stats(empty[:, 0], empty[:, 0], num_classes=2)
    assert reduce_stats(stats, "micro", classes=[1])["dice"].item() == 1.0
