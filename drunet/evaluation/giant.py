"""``drunet evaluate`` on giant masks: :mod:`drunet.giant.masks`' streamed counts, scored as
:func:`~drunet.evaluation.folder.evaluate_folder` scores masks read whole (HD95 aside).

``drunet evaluate --pred --truth`` scores a pair this way (:func:`score_giant_case`) when either
file is giant (:func:`drunet.giant.files.is_giant`: pyramidal, or more pixels than drunet reads
whole — the masks ``drunet predict`` streams are pyramidal); :func:`evaluate_giant` does it for
region sources from Python."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from drunet.datasets import MaskOptions
from drunet.errors import DataError
from drunet.evaluation.model import default_class_names
from drunet.evaluation.result import MAX_CLASSES, Evaluation, new_evaluation
from drunet.giant.masks import classes_of, confusion_of, mask_values, value_pairs
from drunet.giant.regions import RegionSource
from drunet.giant.sources import open_region_source


def giant_classes(truth: Path, mask_options: MaskOptions | None = None) -> int:
    """Classes of a giant reference mask (its largest class plus one, at least 2), streamed."""
    source = open_region_source(truth)
    try:
        return classes_of(mask_values(source), mask_options)
    finally:
        source.close()


def score_giant_case(
    evaluation: Evaluation,
    name: str,
    truth: Path,
    prediction: Path,
    mask_options: MaskOptions | None = None,
) -> None:
    """Add one giant pair's counts to ``evaluation`` (as ``score_case`` adds a pair read whole)."""
    if evaluation.hd95 is not None:
        raise DataError(
            f"{truth} is a giant mask: HD95 needs the whole mask in memory (a distance "
            "transform); drop --hd95 to score it region by region"
        )
    pred, reference = open_region_source(prediction), open_region_source(truth)
    try:
        pairs = value_pairs(pred, reference)
    finally:
        pred.close()
        reference.close()
    matrix = confusion_of(pairs, evaluation.num_classes, mask_options, (prediction, truth))
    assert evaluation.meter is not None
    evaluation.meter.add_confusion(matrix[None])
    evaluation.names.append(name)
    evaluation.stacks.append(None)
    evaluation.slices.append(None)


def evaluate_giant(
    cases: list[tuple[str, RegionSource, RegionSource]],
    num_classes: int | None = None,
    mask_options: MaskOptions | None = None,
    absent_as_one: bool = False,
) -> Evaluation:
    """Score ``(name, prediction, reference)`` cases streamed (see the module); a case that
    cannot be read is listed in ``failed`` and the others are scored."""
    counted: list[tuple[str, tuple[Path, Path], Counter[tuple[int, int]]]] = []
    failed: dict[Path, str] = {}
    for name, prediction, reference in cases:
        try:
            paths = (prediction.path, reference.path)
            counted.append((name, paths, value_pairs(prediction, reference)))
        except DataError as err:
            failed[reference.path] = str(err)
    source = f"--classes {num_classes}"
    if num_classes is None:
        source = "the truth masks"
        num_classes = max([classes_of(p, mask_options) for _, _, p in counted] or [2])
        if num_classes > MAX_CLASSES:
            raise DataError(
                f"the truth masks hold class {num_classes - 1}: more than the {MAX_CLASSES} "
                "classes evaluate scores; check that they are masks of class indices"
            )
    ignore = mask_options.ignore_index if mask_options else None
    evaluation = new_evaluation(
        num_classes, default_class_names(num_classes), ignore, False, None, absent_as_one, source
    )
    assert evaluation.meter is not None
    for name, paths, pairs in counted:
        try:
            matrix = confusion_of(pairs, num_classes, mask_options, paths)
        except DataError as err:
            evaluation.failed[paths[1]] = str(err)
            continue
        evaluation.meter.add_confusion(matrix[None])
        evaluation.names.append(name)
        evaluation.stacks.append(None)
        evaluation.slices.append(None)
    evaluation.failed.update(failed)
    return evaluation
