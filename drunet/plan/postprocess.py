"""Post-processing chosen on validation, as nnU-Net does: each clean-up of :mod:`drunet.cleanup`
is kept only when it raises the validation score computed **per image**.

**Score.** For each validation image, the Dice (IoU when ``train.monitor`` is IoU) of each
foreground class in that image, averaged over the classes, then over the images (``macro-
imagewise`` in :mod:`drunet.metrics`). A class absent from both the prediction and the truth of
an image scores 1 for that image, so **an empty prediction for an empty mask counts as Dice 1**
and a few false pixels on an empty mask count as 0 — which a score pooled over the whole set
hardly sees. Pixels whose truth is ``ignore_index`` are left out.

**Order.** The steps are tried in the order :func:`drunet.cleanup.clean` applies them, each on
top of the ones kept before it: ``min_size``, ``fill_holes``, ``largest_component``,
``empty_below``. Of a step's candidate values the best is taken, and the step is kept only when
that score is higher than the score before the step — by at least ``MIN_GAIN`` (0.001) for the
steps that remove foreground (``min_size``, ``largest_component``, ``empty_below``); a tie keeps
the mask as it is. A removal fails by whole objects: on 2-px synthetic curves a gain of 0.00002
on four validation images chose a ``min_size`` of 5,891 px, which cost 0.08 Dice on the held-out
images, as predicted curves broke into pieces the validation masks never showed. Filling holes
fails only by the holes' area, and small validation gains carried over: on DSB 2018 its gains of
0.00014–0.00027 came with held-out gains of 0.002–0.003 (benchmarks/plan_vs_default.sh).

**Candidates** come from the validation masks, not from constants:

* ``min_size``: the ``QUANTILES`` (1, 5, 10, 25 %) of the areas of their objects (8-connected,
  per class): a predicted object smaller than most real ones is more likely noise; values below
  2 px remove nothing and are dropped;
* ``empty_below``: the same quantiles of the foreground area of each mask holding foreground,
  tried only when at least one validation mask is empty (else emptying can only lose);
* ``fill_holes`` and ``largest_component``: on.

Memory: the caller holds every validation prediction and mask (one label map each); the
selection adds two copies of the predictions (the best candidate's and the one being scored).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from drunet.cleanup import (
    Cleanup,
    empty_if_small,
    fill_holes,
    keep_largest_component,
    object_areas,
    remove_small_objects,
)
from drunet.metrics import image_stats, reduce_stats

POSTPROCESS_FILE = "postprocess.json"
QUANTILES = (1, 5, 10, 25)  # percentiles of the validation objects' areas tried as thresholds
MIN_GAIN = 0.001  # the least rise of the per-image score that keeps a removal (see above)
REMOVALS = ("min_size", "largest_component", "empty_below")
STEPS = ("min_size", "fill_holes", "largest_component", "empty_below")
_APPLY = {
    "min_size": remove_small_objects,
    "fill_holes": lambda mask, _: fill_holes(mask),
    "largest_component": lambda mask, _: keep_largest_component(mask),
    "empty_below": empty_if_small,
}
_OFF: dict[str, int | bool] = {
    "min_size": 0,
    "fill_holes": False,
    "largest_component": False,
    "empty_below": 0,
}


class StepChoice(BaseModel):
    """One step: the value chosen (its off value when not kept), the score before it and with
    the chosen value, every candidate tried with its score, and why."""

    model_config = ConfigDict(frozen=True)

    key: str  # the config key, e.g. postprocess.min_size
    value: int | bool
    before: float
    after: float
    tried: list[tuple[int | bool, float]]
    reason: str

    @property
    def kept(self) -> bool:
        return bool(self.value)


class Selection(BaseModel):
    """The outcome of :func:`select_postprocessing` (``postprocess.json`` in the run folder)."""

    model_config = ConfigDict(frozen=True)

    metric: str  # dice or iou, per image
    images: int
    empty_masks: int  # validation masks without foreground
    baseline: float  # the per-image score without post-processing
    score: float  # with the kept steps
    steps: list[StepChoice]

    @property
    def values(self) -> dict[str, Any]:
        """Dotted config keys → the chosen values (``postprocess.min_size`` …)."""
        return {step.key: step.value for step in self.steps}

    def cleanup(self) -> Cleanup:
        """The chosen steps as :func:`drunet.cleanup.clean` runs them."""
        chosen = {step.key.split(".")[1]: step.value for step in self.steps}
        return Cleanup(
            min_size=int(chosen.get("min_size", 0)),
            fill_holes=bool(chosen.get("fill_holes", False)),
            largest_component=bool(chosen.get("largest_component", False)),
            empty_below=int(chosen.get("empty_below", 0)),
        )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def image_scores(
    predictions: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    num_classes: int,
    ignore_index: int | None = None,
    metric: str = "dice",
) -> np.ndarray:
    """The per-image score of each ``(H, W)`` prediction against its truth ``(N,)`` (see the
    module docstring: foreground classes averaged, a class absent from both scores 1)."""
    scores = []
    for pred, truth in zip(predictions, truths, strict=True):
        stats = image_stats(
            torch.from_numpy(pred.astype(np.int64))[None],
            torch.from_numpy(truth.astype(np.int64))[None],
            num_classes,
            ignore_index,
        )
        per_class = reduce_stats(stats, "none", classes=range(1, num_classes))[metric]  # (1, K)
        scores.append(float(per_class.mean()))
    return np.asarray(scores, np.float64)


def candidates(
    truths: Sequence[np.ndarray], ignore_index: int | None = None
) -> dict[str, tuple[list[int | bool], str]]:
    """Each step's candidate values and where they come from (see the module docstring)."""
    areas = [object_areas(truth, ignore_index) for truth in truths]
    objects = np.concatenate(areas) if areas else np.zeros(0)
    totals = np.asarray([a.sum() for a in areas if a.size], np.float64)
    percent = "/".join(map(str, QUANTILES)) + " %"
    found: dict[str, tuple[list[int | bool], str]] = {
        "min_size": (_thresholds(objects), f"{percent} of the validation objects' areas"),
        "fill_holes": ([True], ""),
        "largest_component": ([True], ""),
        "empty_below": (
            _thresholds(totals),
            f"{percent} of the foreground area of validation masks holding foreground",
        ),
    }
    if objects.size == 0:
        found["min_size"] = ([], "no object in the validation masks")
        found["empty_below"] = ([], "no object in the validation masks")
    elif len(totals) == len(truths):
        found["empty_below"] = ([], "no validation mask is empty: emptying can only lose")
    return found


def _thresholds(areas: np.ndarray) -> list[int | bool]:
    if areas.size == 0:
        return []
    values = np.ceil(np.percentile(areas, QUANTILES)).astype(int)
    return [int(v) for v in sorted(set(values.tolist())) if v >= 2]


def select_postprocessing(
    predictions: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    num_classes: int,
    ignore_index: int | None = None,
    metric: str = "dice",
) -> Selection:
    """Choose the clean-ups for ``predictions`` (``(H, W)`` class indices, one per validation
    image) against ``truths`` by the rules of the module docstring."""
    if not predictions:
        raise ValueError("no validation image to choose the post-processing on")

    def score(masks: Sequence[np.ndarray]) -> float:
        return float(image_scores(masks, truths, num_classes, ignore_index, metric).mean())

    current = [p.copy() for p in predictions]
    baseline = before = score(current)
    name = "Dice" if metric == "dice" else "IoU"
    steps = []
    for step, (values, origin) in candidates(truths, ignore_index).items():
        tried: list[tuple[int | bool, float]] = []
        best: tuple[int | bool, float, list[np.ndarray]] | None = None  # the first on ties
        for candidate in values:  # one candidate's masks at a time beside the best one's
            masks = [_APPLY[step](m.copy(), candidate) for m in current]
            tried.append((candidate, score(masks)))
            if best is None or tried[-1][1] > best[1]:
                best = (candidate, tried[-1][1], masks)
        listed = ", ".join(f"{_shown(v)}: {s:.4f}" for v, s in tried) + (origin and f"; {origin}")
        value, after = _OFF[step], before
        if best is None:
            reason = f"not tried: {origin}"
        elif best[1] > before and best[1] >= before + (MIN_GAIN if step in REMOVALS else 0):
            value, after, current = best
            reason = f"kept: per-image {name} {before:.4f} → {after:.4f} (tried {listed})"
        else:
            least = f" by {MIN_GAIN:g}" if step in REMOVALS else ""
            reason = f"off: per-image {name} {before:.4f} not raised{least} (tried {listed})"
        key = f"postprocess.{step}"
        choice = StepChoice(
            key=key, value=value, before=before, after=after, tried=tried, reason=reason
        )
        steps.append(choice)
        before = after
    empty = sum(1 for t in truths if not _has_foreground(t, ignore_index))
    return Selection(
        metric=metric,
        images=len(predictions),
        empty_masks=empty,
        baseline=baseline,
        score=before,
        steps=steps,
    )


def _has_foreground(truth: np.ndarray, ignore_index: int | None) -> bool:
    foreground = truth != 0 if ignore_index is None else (truth != 0) & (truth != ignore_index)
    return bool(foreground.any())


def _shown(value: int | bool) -> str:
    return "on" if value is True else f"{value} px"
