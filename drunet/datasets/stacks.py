"""Multi-page TIFF stacks in a dataset are volumes of 2D slices, one pair per slice.

An image stack of N frames (pages, or ImageJ/OME Z/time points) and its mask stack of N
frames become N pairs ``Pair(image, mask, page=k)``; every slice keeps the case name of its
stack, so splits keep all slices of one stack on the same side (no leakage between training and
validation). Frame counts come from the files' TIFF metadata; nothing is decoded here. A folder
of numbered 2D slices of one stack needs nothing: each file already is one pair. Several stacks
stored as numbered 2D files (``cellA_z0.png`` …, ``cellB_z0.png`` …) are named by the pattern
``data.layout.stack`` (:func:`number_slices`, ``drunet.datasets.stack_names``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from drunet.datasets.folder import Pair
from drunet.datasets.problems import Problem
from drunet.datasets.stack_names import match_slice
from drunet.datasets.tiff import tiff_frames, tiff_pages
from drunet.errors import DataError

_TIFF = (".tif", ".tiff")
_FIX = (
    "save the mask stack with one page per image page; if the image's pages are its channels, "
    "save them as one page of C samples (tifffile.imwrite(path, image_hwc, "
    "photometric='minisblack', planarconfig='contig')) or as nnU-Net channel files"
)


def frame_count(path: Path) -> int:
    """Frames in an image file: a TIFF's from its metadata, 1 for other files (and for files
    that cannot be parsed: reading them reports why)."""
    if path.suffix.lower() not in _TIFF:
        return 1
    return tiff_frames(path) or 1


def page_count(path: Path) -> int:
    """Pages of a TIFF file — also pages its metadata declares channels (an ImageJ hyperstack
    of ``channels=N``, which ``tifffile.imwrite(path, volume, imagej=True)`` writes for an
    ``(N, H, W)`` volume); 1 for other files."""
    if path.suffix.lower() not in _TIFF:
        return 1
    return tiff_pages(path)


def expand_stacks(pairs: list[Pair], problems: list[Problem]) -> list[Pair]:
    """Each pair whose files are N-frame stacks → N slice pairs, in frame order.

    An image stack whose mask (or extra channel file) has another frame count is a problem
    (error) on the mask, and its pairs are left out.
    """
    expanded: list[Pair] = []
    for pair in pairs:
        images = [frame_count(path) for path in pair.image_files]
        masks = frame_count(pair.mask)
        if max(*images, masks) == 1:
            expanded.append(pair)
            continue
        if len(set(images)) > 1 or masks != images[0]:
            files = zip(pair.image_files, images, strict=True)
            counts = ", ".join(f"{path.name}: {n}" for path, n in files)
            problems.append(
                Problem(
                    pair.mask,
                    "stack-mismatch",
                    f"mask has {masks} page(s) but its image stack has {counts}; a multi-page "
                    "TIFF in a dataset is a stack of slices, each with its own mask page",
                    _FIX,
                )
            )
            continue
        expanded.extend(dataclasses.replace(pair, page=k) for k in range(images[0]))
    return expanded


def number_slices(pairs: list[Pair], pattern: str | None, problems: list[Problem]) -> list[Pair]:
    """Each pair with ``numbered`` set from its mask stem (the case name) under ``pattern``.

    A file whose stem does not match, a multi-page stack (already slices of its own), or a
    second file of one stack's slice (``cellA_z1`` and ``cellA_z01``) is a problem (error)
    naming the file and the pattern, and is left out; a pattern that matches no file at all is a
    ``DataError`` naming it and one of the files. ``pattern`` ``None`` returns ``pairs``
    unchanged.
    """
    if pattern is None:
        return pairs
    numbered: list[Pair] = []
    seen: dict[tuple[Path, str, int], Path] = {}
    for pair in pairs:
        found = match_slice(pair.mask.stem, pattern)
        key = (pair.image.parent, found.stack, found.index) if found is not None else None
        if found is None:
            problems.append(
                Problem(
                    pair.image,
                    "stack-name-mismatch",
                    f"file stem {pair.mask.stem!r} does not match data.layout.stack "
                    f"{pattern!r}, so its stack and slice number are unknown",
                    f"rename it to match {pattern!r} (e.g. {_example(pattern)}), move it out of "
                    "the dataset, or change data.layout.stack",
                )
            )
        elif pair.page is not None:
            if pair.page == 0:  # one problem per file, not per page
                problems.append(
                    Problem(
                        pair.image,
                        "stack-name-multipage",
                        f"is a multi-page stack, but data.layout.stack {pattern!r} says each "
                        "file is one numbered 2D slice",
                        "save one 2D file per slice, or unset data.layout.stack to use "
                        "multi-page TIFF stacks",
                    )
                )
        elif key is not None and key in seen:
            problems.append(
                Problem(
                    pair.image,
                    "duplicate-slice",
                    f"is slice {found.index} of stack {found.stack!r} under data.layout.stack "
                    f"{pattern!r}, as {seen[key].name} is already",
                    "rename or remove one of the two files (one file per slice)",
                )
            )
        else:
            if key is not None:
                seen[key] = pair.image
            numbered.append(dataclasses.replace(pair, numbered=found))
    off = next(
        (p for p in pairs if p.page is None and match_slice(p.mask.stem, pattern) is None), None
    )
    if not numbered and off is not None:
        raise DataError(
            f"data.layout.stack {pattern!r} matches none of the {len(pairs)} file(s) in "
            f"{off.image.parent} (e.g. {off.image.name}: stem {off.mask.stem!r} does not match); "
            f"rename the files to match it (e.g. {_example(pattern)}), or change or unset "
            "data.layout.stack"
        )
    return numbered


def _example(pattern: str) -> str:
    return pattern.replace("{name}", "cellA").replace("{index}", "0") + ".png"
