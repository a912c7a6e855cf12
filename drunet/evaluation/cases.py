"""What the evaluation report keeps of each scored image, collected while evaluating.

:class:`CaseCollector` is the ``on_case`` hook of :func:`drunet.evaluation.model.evaluate` and
:func:`drunet.evaluation.folder.evaluate_folder`. Memory stays bounded whatever the
number of images: every case keeps one small PNG strip (image | truth | prediction | errors) and
its foreground Dice; only the ``worst`` lowest-Dice cases keep larger panels, in a heap; the
confusion matrix is a running sum.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from drunet.evaluation.result import ScoredCase
from drunet.report.figures import panels, png_bytes, strip


def foreground_dice(
    prediction: np.ndarray,
    reference: np.ndarray,
    num_classes: int,
    ignore_index: int | None,
    absent_as_one: bool = True,
) -> float:
    """Mean Dice of the foreground classes of one image. A class absent from both scores 1.0
    (``absent_as_one``, training's rule) or is left out; an image with no class present is
    1.0 either way (nothing to find, nothing found: never among the worst)."""
    keep = reference != ignore_index if ignore_index is not None else np.ones(reference.shape, bool)
    scores = []
    for c in range(1, num_classes):
        p, t = (prediction == c) & keep, (reference == c) & keep
        denominator = int(p.sum()) + int(t.sum())
        if denominator:
            scores.append(2 * int((p & t).sum()) / denominator)
        elif absent_as_one:
            scores.append(1.0)
    return float(np.mean(scores)) if scores else 1.0


@dataclass
class Case:
    """One scored image as the report shows it."""

    index: int  # position in the evaluation (``Evaluation.names``)
    name: str
    dice: float  # foreground mean
    strip: bytes  # small PNG: image | truth | prediction | errors
    panels: dict[str, bytes] = field(default_factory=dict)  # larger PNGs, worst cases only


@dataclass
class CaseCollector:
    """Collects :class:`Case` thumbnails and the confusion matrix (see the module)."""

    num_classes: int
    ignore_index: int | None = None
    worst: int = 12
    absent_as_one: bool = False  # how a class absent from both counts in the ranking Dice
    thumb_side: int = 80
    panel_side: int = 256
    cases: list[Case] = field(default_factory=list)
    _heap: list[tuple[float, int]] = field(default_factory=list)  # (-dice, -index): max-heap
    confusion: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def __call__(self, scored: ScoredCase) -> None:
        prediction, reference = scored.prediction, scored.reference
        dice = foreground_dice(
            prediction, reference, self.num_classes, self.ignore_index, self.absent_as_one
        )
        small = panels(
            prediction,
            reference,
            scored.image,
            self.num_classes,
            self.thumb_side,
            self.ignore_index,
        )
        case = Case(len(self.cases), scored.name, dice, png_bytes(strip(list(small.values()))))
        self.cases.append(case)
        self._add_confusion(prediction, reference)
        if self.worst <= 0:
            return
        entry = (-dice, -case.index)  # the heap's top is the best case kept
        if len(self._heap) < self.worst:
            heapq.heappush(self._heap, entry)
        elif dice < -self._heap[0][0]:  # ties: the earlier image stays
            dropped = heapq.heapreplace(self._heap, entry)
            self.cases[-dropped[1]].panels = {}
        else:
            return
        large = panels(
            prediction,
            reference,
            scored.image,
            self.num_classes,
            self.panel_side,
            self.ignore_index,
        )
        case.panels = {title: png_bytes(panel) for title, panel in large.items()}

    def _add_confusion(self, prediction: np.ndarray, reference: np.ndarray) -> None:
        keep = (reference >= 0) & (reference < self.num_classes)
        if self.ignore_index is not None:
            keep &= reference != self.ignore_index
        keep &= (prediction >= 0) & (prediction < self.num_classes)
        codes = reference[keep].astype(np.int64) * self.num_classes + prediction[keep]
        counts = np.bincount(codes, minlength=self.num_classes**2)
        self.confusion += counts.reshape(self.num_classes, self.num_classes)

    def worst_cases(self) -> list[Case]:
        """The kept worst cases, lowest Dice first."""
        return sorted((c for c in self.cases if c.panels), key=lambda c: (c.dice, c.index))
