"""Image/mask pairs: match two folders by file stem (:mod:`drunet.datasets.matching`), read a
pair."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drunet.datasets.io import IMAGE_SUFFIXES, MASK_SUFFIXES, read_image
from drunet.datasets.masks import read_mask
from drunet.datasets.matching import files_in, match_files
from drunet.datasets.options import MaskOptions
from drunet.datasets.stack_names import NumberedSlice
from drunet.errors import DataError

LAYOUT = (
    "expected layout: <root>/images/<name>.png and <root>/masks/<name>.png (or labels/), one "
    "mask per image with the same file name stem"
)


@dataclass(frozen=True)
class Pair:
    """One training example: an image file and the mask file with the same stem.

    ``extra_channels`` are further image files whose channels follow ``image``'s, in order
    (nnU-Net stores channel k of case ``c`` as ``c_000k.png``); most pairs have none.
    ``page`` is set for one slice of a multi-page TIFF stack: frame ``page`` of every image
    file and of the mask (see ``drunet.datasets.stacks``). ``numbered`` is set for a 2D file
    that is slice ``numbered.index`` of stack ``numbered.stack`` under ``data.layout.stack``
    (see ``drunet.datasets.stack_names``).
    """

    image: Path
    mask: Path
    extra_channels: tuple[Path, ...] = ()
    page: int | None = None
    numbered: NumberedSlice | None = None

    @property
    def image_files(self) -> tuple[Path, ...]:
        return (self.image, *self.extra_channels)

    @property
    def case(self) -> str:
        """The case name used in split files: the mask's file stem, or the stack's name for a
        numbered slice (a whole stack's slices share it, so a split never separates them). A
        numbered slice of a pattern without ``{name}`` (one stack: the folder) keeps its stem,
        so such a dataset is split by slice."""
        if self.numbered is not None and self.numbered.stack:
            return self.numbered.stack
        return self.mask.stem

    @property
    def name(self) -> str:
        """The pair's name in reports: the mask's stem, with ``#page`` for a slice of a
        multi-page stack."""
        return self.mask.stem if self.page is None else f"{self.mask.stem}#{self.page:04d}"


@dataclass
class PairScan:
    """What matching two folders found, without judging it (``discover`` judges it)."""

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
    found = match_files(
        _files(images_dir, IMAGE_SUFFIXES), _files(masks_dir, MASK_SUFFIXES), first_wins=True
    )
    return PairScan(
        pairs=[Pair(image, mask) for image, mask in found.pairs],
        lonely_images=found.missing,
        lonely_masks=found.extra,
        duplicates=found.duplicates,
    )


def masks_folder(root: Path) -> Path:
    """``root/masks``, or ``root/labels`` when only that exists."""
    masks, labels = root / "masks", root / "labels"
    if not masks.is_dir() and labels.is_dir():
        return labels
    return masks


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The files of ``folder`` with one of ``suffixes`` (hidden files left out), sorted."""
    if not folder.is_dir():
        raise DataError(f"missing folder {folder}; {LAYOUT}")
    return files_in(folder, suffixes)


def read_pair_image(pair: Pair) -> np.ndarray:
    """The pair's image ``(H, W, C)`` in the file's dtype; extra channel files are appended."""
    return stack_channels(pair, [read_image(path, pair.page) for path in pair.image_files])


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
    image, mask = read_pair_image(pair), read_mask(pair.mask, mask_options, pair.page)
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
