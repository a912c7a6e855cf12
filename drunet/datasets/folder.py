"""Image/mask pairs: match two folders by file stem, read a pair, split pairs by seed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drunet.datasets.io import IMAGE_SUFFIXES, MASK_SUFFIXES, read_image
from drunet.datasets.masks import read_mask
from drunet.datasets.options import MaskOptions
from drunet.errors import DataError

log = logging.getLogger(__name__)

LAYOUT = (
    "expected layout: <root>/images/<name>.png and <root>/masks/<name>.png (or labels/), one "
    "mask per image with the same file name stem"
)
_MAX_LISTED = 10


@dataclass(frozen=True)
class Pair:
    """One training example: an image file and the mask file with the same stem.

    ``extra_channels`` are further image files whose channels follow ``image``'s, in order
    (nnU-Net stores channel k of case ``c`` as ``c_000k.png``); most pairs have none.
    """

    image: Path
    mask: Path
    extra_channels: tuple[Path, ...] = ()

    @property
    def image_files(self) -> tuple[Path, ...]:
        return (self.image, *self.extra_channels)

    @property
    def name(self) -> str:
        """The case name used in split files: the mask's file stem."""
        return self.mask.stem


@dataclass
class PairScan:
    """What matching two folders found, without judging it (``find_pairs`` raises on problems)."""

    pairs: list[Pair]
    lonely_images: list[Path] = field(default_factory=list)
    lonely_masks: list[Path] = field(default_factory=list)
    duplicates: list[tuple[Path, Path]] = field(default_factory=list)  # (kept, also found)


def scan_pairs(images_dir: str | Path, masks_dir: str | Path) -> PairScan:
    """Match ``images_dir/*`` with ``masks_dir/*`` by file stem; sorted by stem.

    Images may be any of ``IMAGE_SUFFIXES``, masks any of ``MASK_SUFFIXES``; hidden files and
    other files are ignored. Missing folders raise ``DataError``; everything else is recorded.
    """
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    duplicates: list[tuple[Path, Path]] = []
    images = _files_by_stem(images_dir, IMAGE_SUFFIXES, duplicates)
    masks = _files_by_stem(masks_dir, MASK_SUFFIXES, duplicates)
    return PairScan(
        pairs=[Pair(images[s], masks[s]) for s in sorted(images.keys() & masks.keys())],
        lonely_images=[images[s] for s in sorted(images.keys() - masks.keys())],
        lonely_masks=[masks[s] for s in sorted(masks.keys() - images.keys())],
        duplicates=duplicates,
    )


def masks_folder(root: Path) -> Path:
    """``root/masks``, or ``root/labels`` when only that exists."""
    masks, labels = root / "masks", root / "labels"
    if not masks.is_dir() and labels.is_dir():
        return labels
    return masks


def find_pairs(root: str | Path) -> list[Pair]:
    """Match ``root/images/*`` with ``root/masks/*`` (or ``root/labels/*``) by file stem.

    Sorted by stem. Raises ``DataError`` if a folder is missing, nothing matches, a stem
    appears twice in one folder, or some image has no mask (or the reverse).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist or is not a folder; {LAYOUT}")
    images_dir, masks_dir = root / "images", masks_folder(root)
    scan = scan_pairs(images_dir, masks_dir)
    if scan.duplicates:
        first, second = scan.duplicates[0]
        raise DataError(
            f"{first} and {second} have the same stem {first.stem!r}, so they cannot be matched "
            "to one partner; rename or remove one of them"
        )
    problems = []
    if scan.lonely_images:
        problems.append(
            f"{len(scan.lonely_images)} image(s) in {images_dir} have no mask in {masks_dir}: "
            + _listing([p.stem for p in scan.lonely_images])
        )
    if scan.lonely_masks:
        problems.append(
            f"{len(scan.lonely_masks)} mask(s) in {masks_dir} have no image in {images_dir}: "
            + _listing([p.stem for p in scan.lonely_masks])
        )
    if problems:
        hint = (
            f"add the missing files or move the unmatched ones out (masks must be one of "
            f"{', '.join(MASK_SUFFIXES)}; {LAYOUT})"
        )
        raise DataError("; ".join(problems) + f"; {hint}")
    if not scan.pairs:
        raise DataError(
            f"no image/mask pairs in {root}: looked for {', '.join(IMAGE_SUFFIXES)} in images/ "
            f"and {', '.join(MASK_SUFFIXES)} in {masks_dir.name}/; {LAYOUT}"
        )
    return scan.pairs


def _files_by_stem(
    folder: Path, suffixes: tuple[str, ...], duplicates: list[tuple[Path, Path]]
) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(f"missing folder {folder}; {LAYOUT}")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in suffixes or not path.is_file():
            continue
        if path.stem in found:
            duplicates.append((found[path.stem], path))
            continue
        found[path.stem] = path
    return found


def _listing(stems: Sequence[str]) -> str:
    shown = ", ".join(stems[:_MAX_LISTED])
    more = len(stems) - _MAX_LISTED
    return shown + (f" … and {more} more" if more > 0 else "")


def read_pair_image(pair: Pair) -> np.ndarray:
    """The pair's image ``(H, W, C)`` in the file's dtype; extra channel files are appended."""
    return stack_channels(pair, [read_image(path) for path in pair.image_files])


def stack_channels(pair: Pair, parts: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate the ``(H, W, C_i)`` arrays read from ``pair.image_files`` along channels."""
    first = parts[0]
    for path, part in zip(pair.image_files[1:], parts[1:], strict=True):
        if part.shape[:2] != first.shape[:2] or part.dtype != first.dtype:
            raise DataError(
                f"channel file {path} is {part.shape[1]}×{part.shape[0]} {part.dtype} but "
                f"{pair.image} is {first.shape[1]}×{first.shape[0]} {first.dtype}; all channel "
                "files of one case need the same size and pixel type — re-export them"
            )
    return first if len(parts) == 1 else np.concatenate(parts, axis=2)


def read_pair(pair: Pair, mask_options: MaskOptions | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(image (H, W, C) in the file's dtype, mask (H, W) int64)``; sizes must agree."""
    image, mask = read_pair_image(pair), read_mask(pair.mask, mask_options)
    check_sizes(pair, image, mask)
    return image, mask


def check_sizes(pair: Pair, image: np.ndarray, mask: np.ndarray) -> None:
    """Raise ``DataError`` naming both files if image and mask differ in size."""
    if image.shape[:2] != mask.shape:
        raise DataError(
            f"image {pair.image} is {image.shape[1]}×{image.shape[0]} (W×H) but its mask "
            f"{pair.mask} is {mask.shape[1]}×{mask.shape[0]}; they must have the same size — "
            "re-export the mask at the image's size"
        )


def split_pairs(
    pairs: Sequence[Pair], val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[Pair], list[Pair]]:
    """Shuffle with ``seed`` and split into ``(train, val)``; same pairs + seed → same split.

    The split depends only on the set of pairs, not their order. With two or more pairs both
    parts get at least one; a single pair is used for both (with a warning), so a one-image
    experiment still runs but its validation score is a training score.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    if not pairs:
        raise ValueError("split_pairs got no pairs; call find_pairs first")
    ordered = sorted(pairs, key=lambda p: (p.image.stem, str(p.image), str(p.mask)))
    if len(ordered) == 1:
        log.warning(
            "only one image (%s): it is used for both training and validation, so validation "
            "scores measure fit, not generalisation",
            ordered[0].image,
        )
        return list(ordered), list(ordered)
    n_val = min(max(round(len(ordered) * val_fraction), 1), len(ordered) - 1)
    order = np.random.default_rng(seed).permutation(len(ordered))
    val_idx, train_idx = sorted(order[:n_val]), sorted(order[n_val:])
    return [ordered[i] for i in train_idx], [ordered[i] for i in val_idx]
