"""Score a folder of existing predictions against reference masks, without a model.

nnU-Net's ``evaluate_folder``: every reference mask ``<stem>.<ext>`` is matched with the
prediction ``<stem>_mask.png`` or ``<stem>_mask.tif`` (as ``drunet predict`` writes them for
images and for multi-page TIFF stacks) or one with the mask's own stem (``<stem>.png`` /
``.tif``). Both are read as class indices (0/255 masks as 0/1) and scored as
:func:`drunet.inference.evaluate.evaluate` scores a model's output. ``truth`` is a folder of
masks, or a dataset folder with ``images/`` and ``masks/`` (or ``labels/``): then the images
are shown in the report too. A missing prediction or a size mismatch fails that case, naming
both files; the others are scored.

A multi-page TIFF mask is a stack: its prediction must have as many pages (else the case fails,
naming both files), and every page is scored as one slice ``<stem>#<page>``, with per-stack
scores as :mod:`drunet.inference.evaluate` gives them for stacks in a dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drunet.datasets import IMAGE_SUFFIXES, MASK_SUFFIXES, MaskOptions, read_image, read_mask
from drunet.datasets.folder import Pair
from drunet.datasets.stack_names import NumberedSlice, check_stack_pattern, match_slice
from drunet.datasets.stacks import frame_count
from drunet.errors import DataError, DrunetError
from drunet.inference.distance import Spacing
from drunet.inference.evaluate import Evaluation, ScoredCase, new_evaluation, score_case
from drunet.inference.stack_files import STACK_MASK_SUFFIX

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
        found = (
            predictions.get(mask.stem + PREDICTION_SUFFIX)
            or predictions.get(mask.stem + STACK_MASK_SUFFIX)
            or by_stem.get(mask.stem)
        )
        cases.append(FolderCase(mask.stem, mask, found, images.get(mask.stem)))
    return cases


def _read(
    case: FolderCase, options: MaskOptions | None
) -> Iterator[tuple[int | None, np.ndarray, np.ndarray]]:
    """``(page, prediction, reference)`` label maps: one with page None for a 2D mask, one per
    page of a stack. A missing file, a page count or size mismatch is a DataError naming both."""
    if case.prediction is None:
        raise DataError(
            f"no prediction for {case.truth}: expected {case.name}{PREDICTION_SUFFIX} "
            f"({case.name}{STACK_MASK_SUFFIX} for a stack) or {case.truth.name} in the --pred "
            "folder"
        )
    pages, predicted = frame_count(case.truth), frame_count(case.prediction)
    if pages != predicted:
        raise DataError(
            f"prediction {case.prediction} has {predicted} page(s) but its mask {case.truth} "
            f"has {pages}; predict the whole stack (one mask page per image page)"
        )
    for page in range(pages) if pages > 1 else [None]:
        reference = read_mask(case.truth, options, page)
        prediction = read_mask(case.prediction, None, page)
        if prediction.shape != reference.shape:
            (ph, pw), (th, tw) = prediction.shape, reference.shape
            where = "" if page is None else f" page {page}"
            raise DataError(
                f"prediction {case.prediction}{where} is {pw}×{ph} (W×H) but its mask "
                f"{case.truth}{where} is {tw}×{th}; predict at the mask's size"
            )
        yield page, prediction, reference


def count_classes(
    pred_dir: str | Path, truth: str | Path, mask_options: MaskOptions | None = None
) -> int:
    """Classes in the data: the largest index in any readable truth or prediction, plus one
    (at least 2). Call it first to size what an ``on_case`` hook keeps (the report)."""
    largest = 1
    ignore = mask_options.ignore_index if mask_options is not None else None
    for case in folder_cases(pred_dir, truth):
        try:
            for _, prediction, reference in _read(case, mask_options):
                keep = reference != ignore if ignore is not None else True
                largest = max(
                    largest, int(np.max(np.where(keep, reference, 0))), int(prediction.max())
                )
        except DataError:
            continue  # failed again, and recorded, when scored
    return largest + 1


def _image(case: FolderCase, shape: tuple[int, ...], page: int | None) -> np.ndarray | None:
    """The case's image (that page of a stack) for the report, or None (none found,
    unreadable, another size)."""
    if case.image is None:
        return None
    try:
        image = read_image(case.image, page)
    except DataError:
        return None
    return image if image.shape[:2] == shape else None


def _numbered(case: FolderCase, pattern: str | None) -> NumberedSlice | None:
    """The numbered slice a 2D mask is under ``--stack`` (multi-page TIFFs are stacks already)."""
    if pattern is None or frame_count(case.truth) > 1:
        return None
    numbered = match_slice(case.name, pattern)
    if numbered is None:
        raise DataError(
            f"{case.truth.name} does not match --stack {pattern!r}; name the slices by the "
            "pattern or choose one that fits them"
        )
    return numbered


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
    stack: str | None = None,
) -> Evaluation:
    """Score every prediction in ``pred_dir`` against its mask in ``truth`` (see the module).

    ``num_classes`` defaults to :func:`count_classes`. ``stack`` (a ``data.layout.stack``
    pattern such as ``"{name}_z{index}"``) makes every 2D mask a slice of the stack its stem
    names, scored per slice and per stack as multi-page TIFF stacks are; a mask whose stem does
    not match is listed as failed, naming the pattern.
    """
    if stack is not None:
        try:
            check_stack_pattern(stack)
        except ValueError as err:  # the message names the config key; here it is the flag
            raise DrunetError(str(err).replace("data.layout.stack", "--stack", 1)) from None
    if num_classes is None:
        num_classes = count_classes(pred_dir, truth, mask_options)
    cases = folder_cases(pred_dir, truth)
    if class_names is None or len(class_names) != num_classes:
        class_names = ["background", *(f"class {c}" for c in range(1, num_classes))]
    ignore_index = mask_options.ignore_index if mask_options else None
    evaluation = new_evaluation(num_classes, class_names, ignore_index, hd95, spacing)
    for case in cases:
        try:
            numbered = _numbered(case, stack)
            for page, prediction, reference in _read(case, mask_options):
                # A stack's slice is named as in a dataset: <stem>#<page>.
                name = Pair(case.truth, case.truth, page=page).name
                volume, index = (case.name, page) if page is not None else (None, None)
                if numbered is not None:
                    volume, index = numbered.volume, numbered.index
                score_case(evaluation, name, case.truth, prediction, reference, volume, index)
                if on_case is not None:
                    image = _image(case, reference.shape, page)
                    on_case(
                        ScoredCase(
                            name,
                            image,
                            prediction,
                            reference,
                            case.image,
                            case.truth,
                            case.prediction,
                        )
                    )
        except (DataError, DrunetError) as err:
            evaluation.failed[case.truth] = str(err)
        if on_done is not None:
            on_done(case)
    return evaluation
