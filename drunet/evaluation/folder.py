"""Score a folder of existing predictions against reference masks, without a model.

nnU-Net's ``evaluate_folder``. ``truth`` is a folder of masks, or a dataset folder with
``images/`` and ``masks/`` (or ``labels/``): then the images are shown in the report too.

**Pairing** (:func:`drunet.datasets.matching.match_files`): a truth mask ``<stem>.<ext>`` answers
to its stem; a prediction answers to its own stem and, when that ends in ``_mask`` (as
``drunet predict`` names masks: ``<stem>_mask.png``, ``<stem>_mask.tif`` for stacks), to the
stem without it. Each truth mask is scored against exactly one prediction and each prediction
against at most one truth mask: a truth mask with no prediction, with two candidate
predictions, or whose prediction another truth mask also names (truth ``a.png`` and
``a_mask.png`` with the one prediction ``a_mask.png``) is a listed failure naming the files,
and the others are scored. Predictions no truth mask names are left out.

**Classes**: ``num_classes`` when given (``--classes``), else the truth masks' largest index
plus one (at least 2). A prediction value outside ``0 … num_classes-1`` fails that case, naming
the file and the values: it is never a new class. Both files are read as class indices (0/255
masks as 0/1).

A multi-page TIFF mask is a stack: its prediction must have as many pages (else the case fails,
naming both files), and every page is scored as one slice ``<stem>#<page>``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drunet.datasets import IMAGE_SUFFIXES, MASK_SUFFIXES, MaskOptions, read_image, read_mask
from drunet.datasets.folder import Pair
from drunet.datasets.listing import join_limited
from drunet.datasets.matching import NameMatch, files_in, match_files
from drunet.datasets.stack_names import NumberedSlice, check_stack_pattern, match_slice
from drunet.datasets.stacks import frame_count
from drunet.errors import DataError, DrunetError
from drunet.evaluation.distance import Spacing
from drunet.evaluation.giant import giant_classes, score_giant_case
from drunet.evaluation.model import default_class_names
from drunet.evaluation.result import (
    MAX_CLASSES,
    Evaluation,
    ScoredCase,
    new_evaluation,
    score_case,
)
from drunet.giant.files import is_giant

PREDICTION_SUFFIX = "_mask.png"  # drunet.inference.files.MASK_SUFFIX
MASK_STEM = "_mask"


@dataclass(frozen=True)
class FolderCase:
    """A reference mask, its prediction (None when missing or ambiguous), its image (when
    found) and, when it cannot be paired, why (``problem``)."""

    name: str
    truth: Path
    prediction: Path | None
    image: Path | None = None
    problem: str | None = None


def prediction_names(path: Path) -> tuple[str, ...]:
    """The truth stems a prediction file answers to: its stem, and without ``_mask``."""
    stem = path.stem
    return (stem, stem.removesuffix(MASK_STEM)) if stem.endswith(MASK_STEM) else (stem,)


def folder_cases(pred_dir: str | Path, truth: str | Path) -> list[FolderCase]:
    """Every reference mask with its prediction (and image), sorted by name (see the module)."""
    pred_dir, truth = Path(pred_dir), Path(truth)
    for folder, flag in ((pred_dir, "--pred"), (truth, "--truth")):
        if not folder.is_dir():
            raise DrunetError(f"{flag} {folder} does not exist or is not a folder")
    masks_dir, images_dir = truth, None
    for name in ("masks", "labels"):
        if (truth / name).is_dir():
            masks_dir, images_dir = truth / name, truth / "images"
            break
    masks = files_in(masks_dir, MASK_SUFFIXES)
    if not masks:
        raise DrunetError(
            f"no masks in {masks_dir}: --truth takes a folder of masks (PNG/TIFF) or a dataset "
            "folder with masks/"
        )
    found = match_files(masks, files_in(pred_dir, MASK_SUFFIXES), right_names=prediction_names)
    problems = _problems(found, set(masks))
    images: dict[Path, Path] = {}
    if images_dir is not None and images_dir.is_dir():
        images = match_files(masks, files_in(images_dir, IMAGE_SUFFIXES), first_wins=True).partner
    predictions = found.partner
    return [
        FolderCase(mask.stem, mask, predictions.get(mask), images.get(mask), problems.get(mask))
        for mask in masks
    ]


def _problems(found: NameMatch, truths: set[Path]) -> dict[Path, str]:
    """Why each truth mask that has no one-to-one prediction cannot be scored."""
    problems: dict[Path, str] = {}
    for ambiguity in found.ambiguous:
        others = join_limited([str(p) for p in ambiguity.candidates])
        if ambiguity.path in truths:
            problems[ambiguity.path] = (
                f"{ambiguity.path} matches {len(ambiguity.candidates)} predictions: {others}; "
                "keep one (each mask is scored against exactly one prediction)"
            )
            continue
        for mask in ambiguity.candidates:
            problems.setdefault(
                mask,
                f"{mask} is not scored: its prediction {ambiguity.path} matches "
                f"{len(ambiguity.candidates)} truth masks ({others}); rename the prediction "
                "<stem>_mask.png after exactly one mask",
            )
    for mask in found.missing:
        problems[mask] = (
            f"no prediction for {mask}: expected {mask.stem}{PREDICTION_SUFFIX} "
            f"({mask.stem}_mask.tif for a stack) or {mask.name} in the --pred folder"
        )
    return problems


def _read(
    case: FolderCase, options: MaskOptions | None
) -> Iterator[tuple[int | None, np.ndarray, np.ndarray]]:
    """``(page, prediction, reference)`` label maps: one with page None for a 2D mask, one per
    page of a stack. A missing or ambiguous match, a page count or size mismatch is a
    DataError naming the files."""
    if case.prediction is None:
        raise DataError(case.problem or f"no prediction for {case.truth}")
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


def count_classes(truth: str | Path, mask_options: MaskOptions | None = None) -> int:
    """Classes of the truth masks: their largest index (``ignore_index`` aside) plus one, at
    least 2. Masks that cannot be read are skipped (they fail again, and are listed, when
    scored); predictions never add classes. More than ``MAX_CLASSES`` is a ``DataError``
    naming the mask and its value."""
    largest, where = 1, None
    ignore = mask_options.ignore_index if mask_options is not None else None
    for mask in _truth_masks(Path(truth)):
        try:
            if is_giant(mask):  # streamed: never read whole
                value = giant_classes(mask, mask_options) - 1
                if value > largest:
                    largest, where = value, mask
                continue
            pages = frame_count(mask)
            for page in range(pages) if pages > 1 else [None]:
                reference = read_mask(mask, mask_options, page)
                keep = reference != ignore if ignore is not None else True
                value = int(np.max(np.where(keep, reference, 0)))
                if value > largest:
                    largest, where = value, mask
        except DataError:
            continue
    if largest + 1 > MAX_CLASSES:
        raise DataError(
            f"truth mask {where} holds class {largest}: more than the {MAX_CLASSES} classes "
            "evaluate scores (a confusion matrix of classes² cells per image); check that it is "
            "a mask of class indices, not an image"
        )
    return largest + 1


def _truth_masks(truth: Path) -> list[Path]:
    for name in ("masks", "labels"):
        if (truth / name).is_dir():
            return files_in(truth / name, MASK_SUFFIXES)
    return files_in(truth, MASK_SUFFIXES) if truth.is_dir() else []


def check_prediction_values(
    prediction: np.ndarray, path: Path, page: int | None, evaluation: Evaluation
) -> None:
    """A prediction value outside the class set is a DataError naming the file and values."""
    num_classes = evaluation.num_classes
    stray = np.unique(prediction[(prediction < 0) | (prediction >= num_classes)])
    if stray.size:
        where = "" if page is None else f" page {page}"
        values = ", ".join(str(int(v)) for v in stray[:10]) + (", …" if stray.size > 10 else "")
        raise DataError(
            f"prediction {path}{where} holds value(s) {values} outside the classes "
            f"0…{num_classes - 1} (from {evaluation.classes_from}); a predicted value is never "
            "a new class — pass --classes N when the truth masks lack a class, or fix the "
            "predictions"
        )


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
    absent_as_one: bool = False,
    classes_from: str | None = None,
) -> Evaluation:
    """Score every prediction in ``pred_dir`` against its mask in ``truth`` (see the module).

    ``num_classes`` defaults to :func:`count_classes` of the truth masks. ``stack`` (a
    ``data.layout.stack`` pattern such as ``"{name}_z{index}"``) makes every 2D mask a slice
    of the stack its stem names, scored per slice and per stack as multi-page TIFF stacks are;
    a mask whose stem does not match is listed as failed, naming the pattern.
    ``absent_as_one`` scores classes absent from both files 1.0 (:mod:`~.scoring`);
    ``classes_from`` says where a given ``num_classes`` came from, for messages.
    """
    if stack is not None:
        try:
            check_stack_pattern(stack)
        except ValueError as err:  # the message names the config key; here it is the flag
            raise DrunetError(str(err).replace("data.layout.stack", "--stack", 1)) from None
    cases = folder_cases(pred_dir, truth)
    source = classes_from or f"--classes {num_classes}"
    if num_classes is None:
        num_classes, source = count_classes(truth, mask_options), "the truth masks"
    if class_names is None or len(class_names) != num_classes:
        class_names = default_class_names(num_classes)
    ignore_index = mask_options.ignore_index if mask_options else None
    evaluation = new_evaluation(
        num_classes, class_names, ignore_index, hd95, spacing, absent_as_one, source
    )
    for case in cases:
        try:
            _score(evaluation, case, mask_options, stack, on_case)
        except (DataError, DrunetError) as err:
            evaluation.failed[case.truth] = str(err)
        if on_done is not None:
            on_done(case)
    return evaluation


def _score(
    evaluation: Evaluation,
    case: FolderCase,
    mask_options: MaskOptions | None,
    stack: str | None,
    on_case: Callable[[ScoredCase], None] | None,
) -> None:
    numbered = _numbered(case, stack)
    if case.prediction is not None and (is_giant(case.truth) or is_giant(case.prediction)):
        name = Pair(case.truth, case.truth).name
        score_giant_case(evaluation, name, case.truth, case.prediction, mask_options)
        return  # region by region: no thumbnails for the report
    for page, prediction, reference in _read(case, mask_options):
        assert case.prediction is not None
        check_prediction_values(prediction, case.prediction, page, evaluation)
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
                    name, image, prediction, reference, case.image, case.truth, case.prediction
                )
            )
