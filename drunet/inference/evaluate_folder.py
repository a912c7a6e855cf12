"""Score a folder of existing predictions against reference masks, without a model.

nnU-Net's ``evaluate_folder``: every reference mask ``<stem>.<ext>`` is matched with the
prediction ``<stem>_mask.png`` (as ``drunet predict`` writes it) or one with the mask's own stem
(``<stem>.png`` / ``.tif``). Both are read as class indices (0/255 masks as 0/1) and scored as
:func:`drunet.inference.evaluate.evaluate` scores a model's output. ``truth`` is a folder of
masks, or a dataset folder with ``images/`` and ``masks/`` (or ``labels/``): then the images
are shown in the report too. A missing prediction or a size mismatch fails that case, naming
both files; the others are scored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drunet.datasets import IMAGE_SUFFIXES, MASK_SUFFIXES, MaskOptions, read_image, read_mask
from drunet.errors import DataError, DrunetError
from drunet.inference.distance import Spacing
from drunet.inference.evaluate import Evaluation, ScoredCase, new_evaluation, score_case

PREDICTION_SUFFIX = "_mask.png"  # drunet.inference.files.MASK_SUFFIX


@dataclass(frozen=True)
class FolderCase:
    """A reference mask, its prediction (None when missing) and its image (when found)."""

    name: str
    truth: Path
    prediction: Path | None
    image: Path | None = None


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes
    )


def folder_cases(pred_dir: str | Path, truth: str | Path) -> list[FolderCase]:
    """Match every reference mask with its prediction (and image); sorted by name."""
    pred_dir, truth = Path(pred_dir), Path(truth)
    for folder, flag in ((pred_dir, "--pred"), (truth, "--truth")):
        if not folder.is_dir():
            raise DrunetError(f"{flag} {folder} does not exist or is not a folder")
    masks_dir, images_dir = truth, None
    for name in ("masks", "labels"):
        if (truth / name).is_dir():
            masks_dir, images_dir = truth / name, truth / "images"
            break
    masks = _files(masks_dir, MASK_SUFFIXES)
    if not masks:
        raise DrunetError(
            f"no masks in {masks_dir}: --truth takes a folder of masks (PNG/TIFF) or a dataset "
            "folder with masks/"
        )
    predictions = {p.name: p for p in _files(pred_dir, MASK_SUFFIXES)}
    by_stem = {p.stem: p for p in reversed(predictions.values())}
    images = {}
    if images_dir is not None and images_dir.is_dir():
        images = {p.stem: p for p in reversed(_files(images_dir, IMAGE_SUFFIXES))}
    cases = []
    for mask in masks:
        found = predictions.get(mask.stem + PREDICTION_SUFFIX) or by_stem.get(mask.stem)
        cases.append(FolderCase(mask.stem, mask, found, images.get(mask.stem)))
    return cases


def _read(case: FolderCase, options: MaskOptions | None) -> tuple[np.ndarray, np.ndarray]:
    """``(prediction, reference)`` label maps; a missing file or size mismatch names both."""
    if case.prediction is None:
        raise DataError(
            f"no prediction for {case.truth}: expected {case.name}{PREDICTION_SUFFIX} or "
            f"{case.truth.name} in the --pred folder"
        )
    reference = read_mask(case.truth, options)
    prediction = read_mask(case.prediction)
    if prediction.shape != reference.shape:
        (ph, pw), (th, tw) = prediction.shape, reference.shape
        raise DataError(
            f"prediction {case.prediction} is {pw}×{ph} (W×H) but its mask {case.truth} is "
            f"{tw}×{th}; predict at the mask's size"
        )
    return prediction, reference


def count_classes(
    pred_dir: str | Path, truth: str | Path, mask_options: MaskOptions | None = None
) -> int:
    """Classes in the data: the largest index in any readable truth or prediction, plus one
    (at least 2). Call it first to size what an ``on_case`` hook keeps (the report)."""
    largest = 1
    for case in folder_cases(pred_dir, truth):
        try:
            prediction, reference = _read(case, mask_options)
        except DataError:
            continue  # failed again, and recorded, when scored
        ignore = mask_options.ignore_index if mask_options is not None else None
        keep = reference != ignore if ignore is not None else True
        largest = max(largest, int(np.max(np.where(keep, reference, 0))), int(prediction.max()))
    return largest + 1


def _image(case: FolderCase, shape: tuple[int, ...]) -> np.ndarray | None:
    """The case's image for the report, or None (none found, unreadable, another size)."""
    if case.image is None:
        return None
    try:
        image = read_image(case.image)
    except DataError:
        return None
    return image if image.shape[:2] == shape else None


def evaluate_folder(
    pred_dir: str | Path,
    truth: str | Path,
    hd95: bool = False,
    spacing: Spacing | None = None,
    num_classes: int | None = None,
    class_names: list[str] | None = None,
    mask_options: MaskOptions | None = None,
    on_done: Callable[[FolderCase], None] | None = None,
    on_case: Callable[[ScoredCase], None] | None = None,
) -> Evaluation:
    """Score every prediction in ``pred_dir`` against its mask in ``truth`` (see the module).

    ``num_classes`` defaults to :func:`count_classes`.
    """
    if num_classes is None:
        num_classes = count_classes(pred_dir, truth, mask_options)
    cases = folder_cases(pred_dir, truth)
    if class_names is None or len(class_names) != num_classes:
        class_names = ["background", *(f"class {c}" for c in range(1, num_classes))]
    ignore_index = mask_options.ignore_index if mask_options else None
    evaluation = new_evaluation(num_classes, class_names, ignore_index, hd95, spacing)
    for case in cases:
        try:
            prediction, reference = _read(case, mask_options)
            score_case(evaluation, case.name, case.truth, prediction, reference)
        except (DataError, DrunetError) as err:
            evaluation.failed[case.truth] = str(err)
        else:
            if on_case is not None:
                image = _image(case, reference.shape)
                on_case(
                    ScoredCase(
                        case.name,
                        image,
                        prediction,
                        reference,
                        case.image,
                        case.truth,
                        case.prediction,
                    )
                )
        if on_done is not None:
            on_done(case)
    return evaluation
