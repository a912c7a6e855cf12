"""A dataset folder ``root/images`` + ``root/masks``: match, read and split (image, mask) pairs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drunet.datasets.io import IMAGE_SUFFIXES, MASK_SUFFIXES, read_image, read_mask
from drunet.errors import DataError

log = logging.getLogger(__name__)

LAYOUT = (
    "expected layout: <root>/images/<name>.png and <root>/masks/<name>.png, one mask per image "
    "with the same file name stem"
)
_MAX_LISTED = 10


@dataclass(frozen=True)
class Pair:
    """One training example: an image file and the mask file with the same stem."""

    image: Path
    mask: Path


def find_pairs(root: str | Path) -> list[Pair]:
    """Match ``root/images/*`` with ``root/masks/*`` by file stem; sorted by stem.

    Images may be any of ``IMAGE_SUFFIXES``, masks any of ``MASK_SUFFIXES``; hidden files
    (``.name``) and other files are ignored. Raises ``DataError`` if a folder is missing, nothing
    matches, a stem appears twice in one folder, or some image has no mask (or the reverse).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist or is not a folder; {LAYOUT}")
    images = _files_by_stem(root / "images", IMAGE_SUFFIXES)
    masks = _files_by_stem(root / "masks", MASK_SUFFIXES)
    lonely_images = sorted(images.keys() - masks.keys())
    lonely_masks = sorted(masks.keys() - images.keys())
    problems = []
    if lonely_images:
        problems.append(
            f"{len(lonely_images)} image(s) in {root / 'images'} have no mask in {root / 'masks'}: "
            + _listing(lonely_images)
        )
    if lonely_masks:
        problems.append(
            f"{len(lonely_masks)} mask(s) in {root / 'masks'} have no image in {root / 'images'}: "
            + _listing(lonely_masks)
        )
    if problems:
        hint = (
            f"add the missing files or move the unmatched ones out (masks must be one of "
            f"{', '.join(MASK_SUFFIXES)}; {LAYOUT})"
        )
        raise DataError("; ".join(problems) + f"; {hint}")
    if not images:
        raise DataError(
            f"no image/mask pairs in {root}: looked for {', '.join(IMAGE_SUFFIXES)} in images/ "
            f"and {', '.join(MASK_SUFFIXES)} in masks/; {LAYOUT}"
        )
    return [Pair(images[stem], masks[stem]) for stem in sorted(images)]


def _files_by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(f"missing folder {folder}; {LAYOUT}")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in suffixes or not path.is_file():
            continue
        if path.stem in found:
            raise DataError(
                f"{found[path.stem]} and {path} have the same stem {path.stem!r}, so they cannot "
                "be matched to one partner; rename or remove one of them"
            )
        found[path.stem] = path
    return found


def _listing(stems: Sequence[str]) -> str:
    shown = ", ".join(stems[:_MAX_LISTED])
    more = len(stems) - _MAX_LISTED
    return shown + (f" … and {more} more" if more > 0 else "")


def read_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(image (H, W, C) in the file's dtype, mask (H, W) int64)``; sizes must agree."""
    image, mask = read_image(pair.image), read_mask(pair.mask)
    if image.shape[:2] != mask.shape:
        raise DataError(
            f"image {pair.image} is {image.shape[1]}×{image.shape[0]} (W×H) but its mask "
            f"{pair.mask} is {mask.shape[1]}×{mask.shape[0]}; they must have the same size — "
            "re-export the mask at the image's size"
        )
    return image, mask


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
