"""``drunet evaluate`` on giant masks: :mod:`drunet.giant.masks`' streamed counts, scored as
:func:`~drunet.evaluation.folder.evaluate_folder` scores masks read whole (HD95 aside)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from drunet.datasets import MaskOptions
from drunet.errors import DataError
from drunet.evaluation.folder import MAX_CLASSES
from drunet.evaluation.model import default_class_names
from drunet.evaluation.result import Evaluation, new_evaluation
from drunet.giant.masks import classes_of, confusion_of, value_pairs
from drunet.giant.regions import RegionSource


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
