"""What an evaluation holds: per-image counts, HD95, failures, and the tables drawn from them.

Per image and class: tp / fp / fn pixel counts, Dice, IoU, precision and recall and, when asked
for, HD95 in pixels or, with a pixel ``spacing``, in its unit (:mod:`drunet.evaluation.distance`).
A class absent from both prediction and truth is reported as absent and left out of the means
(:mod:`drunet.evaluation.scoring`; ``absent_as_one`` restores the training rule). The summary
gives every reduction in smp's names; its headline ``mean`` is ``macro`` — counts summed over
the images, each foreground class scored, the classes averaged.

Slices of stacks are scored one by one (named ``<stack>#<page>``, e.g. ``cell#0003``) and, per
stack, from their summed counts (:mod:`drunet.evaluation.stacks`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from drunet.errors import DataError
from drunet.evaluation.distance import Spacing, hd95_per_class
from drunet.evaluation.scoring import (
    REDUCTIONS,
    SCORES,
    class_scores,
    json_number,
    nanmean,
    reduce_counts,
)
from drunet.evaluation.stacks import StackScores, stack_scores, stack_summary
from drunet.metrics import StatsMeter

MAX_CLASSES = 1024  # classes² confusion cells and one HD95 per class, per image


@dataclass
class ScoredCase:
    """One scored image, as the ``on_case`` hook receives it (the report keeps thumbnails).

    ``image`` is ``(H, W, C)`` in the file's dtype, or None when only masks were compared;
    ``prediction`` and ``reference`` are ``(H, W)`` class indices.
    """

    name: str
    image: np.ndarray | None
    prediction: np.ndarray
    reference: np.ndarray
    image_path: Path | None
    mask_path: Path
    prediction_path: Path | None = None


@dataclass
class Evaluation:
    """Per-image counts (``meter.stats``: ``(N, C)`` each) and HD95, and what failed.

    ``classes_from`` says where the class set came from (the run, ``--classes``, the truth
    masks), for messages about values outside it.
    """

    num_classes: int
    class_names: list[str]
    ignore_index: int | None = None
    spacing: Spacing | None = None  # HD95 unit: pixels when None
    absent_as_one: bool = False  # the training rule: a class absent from both scores 1.0
    classes_from: str = "the run"
    names: list[str] = field(default_factory=list)  # the pairs' names, in ``stats`` order
    stacks: list[str | None] = field(default_factory=list)  # each image's stack (None: 2D)
    slices: list[int | None] = field(default_factory=list)  # its page in that stack
    meter: StatsMeter | None = None
    hd95: list[list[float]] | None = None  # (N, C) when computed; NaN when undefined or absent
    failed: dict[Path, str] = field(default_factory=dict)
    predict_seconds: float = 0.0  # spent predicting (reading and scoring aside)

    @property
    def num_images(self) -> int:
        return len(self.names)

    @property
    def has_stacks(self) -> bool:
        """Whether any scored image is a slice of a stack."""
        return any(stack is not None for stack in self.stacks)

    def _stats(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        assert self.meter is not None
        stats = self.meter.stats
        return stats.tp, stats.fp, stats.fn

    def stack_scores(self) -> list[StackScores]:
        """Every stack's scores from its slices' summed counts, sorted by name."""
        return stack_scores(self._stats(), self.stacks, self.absent_as_one)

    def rows(self) -> list[dict[str, Any]]:
        """One row per image and class: counts, scores (NaN when absent), ``absent`` (1 when
        the class is in neither file) and HD95; with stacks also each image's ``stack`` and
        ``slice`` (empty for a 2D image)."""
        tp, fp, fn = self._stats()
        per_image = class_scores(tp, fp, fn, self.absent_as_one)  # (N, C) each
        absent = ((tp + fp + fn) == 0).numpy()
        rows = []
        for i, name in enumerate(self.names):
            for c in range(self.num_classes):
                row: dict[str, Any] = {"image": name}
                if self.has_stacks:
                    row["stack"], row["slice"] = self.stacks[i] or "", _blank(self.slices[i])
                row.update({"class": c, "name": self.class_names[c]})
                row.update({k: float(per_image[k][i, c]) for k in SCORES})
                row.update({"tp": int(tp[i, c]), "fp": int(fp[i, c]), "fn": int(fn[i, c])})
                row["absent"] = int(absent[i, c])
                if self.hd95 is not None:
                    row["hd95"] = self.hd95[i][c]
                rows.append(row)
        return rows

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary: ``mean`` (macro, foreground), ``per_class`` (with
        ``absent``), every reduction (and ``hd95``, and ``per_stack`` when images are stack
        slices: see ``stack_summary``). Scores of absent classes are ``None``."""
        tp, fp, fn = self._stats()
        sums = (tp.sum(0), fp.sum(0), fn.sum(0))
        totals = class_scores(*sums, self.absent_as_one)
        per_class = {
            name: {
                **{k: json_number(totals[k][c]) for k in SCORES},
                "absent": bool(sum(int(s[c]) for s in sums) == 0),
            }
            for c, name in enumerate(self.class_names)
        }
        foreground = slice(1, None)
        reductions = {
            reduction: {
                k: json_number(v)
                for k, v in reduce_counts(
                    tp[:, foreground],
                    fp[:, foreground],
                    fn[:, foreground],
                    reduction,
                    self.absent_as_one,
                ).items()
            }
            for reduction in REDUCTIONS
        }
        out: dict[str, Any] = {
            "images": self.num_images,
            "failed": {str(k): v for k, v in self.failed.items()},
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "classes_from": self.classes_from,
            "absent_classes": "score 1.0" if self.absent_as_one else "left out of the means",
            "mean": reductions["macro"],
            "per_class": per_class,
            "reductions": reductions,
        }
        if self.hd95 is not None:
            out["hd95"] = self._hd95_summary(per_class, (tp + fp + fn) == 0)
        if self.has_stacks:
            out["per_stack"] = stack_summary(self.stack_scores(), self.class_names)
        return out

    def _hd95_summary(self, per_class: dict[str, dict], absent: torch.Tensor) -> dict[str, Any]:
        assert self.hd95 is not None
        values = np.array(self.hd95, dtype=np.float64).reshape(-1, self.num_classes)
        class_means = [nanmean(values[:, c]) for c in range(self.num_classes)]
        for c, name in enumerate(self.class_names):
            per_class[name]["hd95"] = json_number(class_means[c])
        undefined = np.isnan(values[:, 1:]) & ~absent[:, 1:].numpy()  # one side empty
        return {
            "unit": "px" if self.spacing is None else f"spacing {list(self.spacing)}",
            "mean": json_number(nanmean(class_means[1:])),
            "per_class": [json_number(m) for m in class_means],
            "undefined": int(undefined.sum()),
        }


def _blank(value: int | None) -> int | str:
    return "" if value is None else value


def new_evaluation(
    num_classes: int,
    names: list[str],
    ignore_index: int | None = None,
    hd95: bool = False,
    spacing: Spacing | None = None,
    absent_as_one: bool = False,
    classes_from: str = "the run",
) -> Evaluation:
    """An empty :class:`Evaluation` ready for :func:`score_case`."""
    evaluation = Evaluation(
        num_classes,
        names,
        ignore_index=ignore_index,
        spacing=spacing,
        absent_as_one=absent_as_one,
        classes_from=classes_from,
    )
    evaluation.meter = StatsMeter(num_classes, ignore_index=ignore_index)
    evaluation.hd95 = [] if hd95 else None
    return evaluation


def score_case(
    evaluation: Evaluation,
    name: str,
    mask: Path,
    prediction: np.ndarray,
    reference: np.ndarray,
    stack: str | None = None,
    page: int | None = None,
) -> None:
    """Add one image's counts (and HD95) to ``evaluation``; ``mask`` names it in errors.

    ``stack`` and ``page`` say which stack the image is a slice of (None for a 2D image).
    """
    assert evaluation.meter is not None
    try:
        evaluation.meter.update(
            torch.from_numpy(prediction.astype(np.int64))[None], torch.from_numpy(reference)[None]
        )
    except ValueError as err:  # mask values outside the class set
        raise DataError(
            f"mask {mask}: {err}; the class set has {evaluation.num_classes} classes (from "
            f"{evaluation.classes_from}) — check that the masks match the data the run was "
            "trained on, or pass --classes"
        ) from None
    if evaluation.hd95 is not None:
        distances = hd95_per_class(
            prediction,
            reference,
            evaluation.num_classes,
            evaluation.ignore_index,
            evaluation.spacing,
        )
        if not evaluation.absent_as_one:  # both empty: no distance to report, as for Dice
            ignore = evaluation.ignore_index
            keep = reference != ignore if ignore is not None else np.ones(reference.shape, bool)
            present = set(np.unique(prediction[keep])) | set(np.unique(reference[keep]))
            distances = [d if c in present else math.nan for c, d in enumerate(distances)]
        evaluation.hd95.append(distances)
    evaluation.names.append(name)
    evaluation.stacks.append(stack)
    evaluation.slices.append(page)
