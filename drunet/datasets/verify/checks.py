"""Dataset-wide checks behind ``verify_dataset``, on compact per-pair records (no pixels kept)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from drunet.datasets.folder import Pair
from drunet.datasets.listing import format_ranges, join_limited
from drunet.datasets.masks import DecodedMask, mask_values
from drunet.datasets.options import MaskOptions
from drunet.datasets.problems import Problem, Severity

_FIRST = 3  # files named in a dataset-wide line
T = TypeVar("T")


@dataclass
class PairRecord:
    """What the checks need to know about one readable, consistent pair (no pixels)."""

    pair: Pair
    channels: int
    dtype: str
    size: tuple[int, int]  # (H, W)
    alpha: bool  # the image had an alpha channel, dropped
    values: np.ndarray  # distinct raw mask values, before the 0/255 rule
    binary_255: bool  # the 0/255 rule turned 255 into 1
    counts: np.ndarray  # pixels per final mask value below the counting limit
    ignored: int  # pixels equal to the ignore index
    has_foreground: bool  # any pixel neither 0 nor ignored
    over: list[int]  # distinct final values at or above the counting limit (ignore aside)

    @classmethod
    def measure(
        cls,
        pair: Pair,
        image: np.ndarray,
        mask: DecodedMask,
        alpha: bool,
        ignore_index: int | None,
        limit: int,
    ) -> PairRecord:
        """Summarise ``image (H, W, C)`` and its decoded mask.

        Pixels are counted per value below ``limit`` only: a mask value is untrusted data, and a
        count array as long as the largest value (kept for every pair) would let one stray
        pixel of 60000 allocate per mask what a real class count never needs.
        """
        height, width, channels = image.shape
        values = mask.mask.ravel()
        below = values < limit
        counts = np.bincount(values if below.all() else values[below], minlength=1)
        ignored = int(np.count_nonzero(values == ignore_index)) if ignore_index is not None else 0
        final = mask_values(mask.mask)
        over = [v for v in final[final >= limit].tolist() if v != ignore_index]
        # class 0 is background; with ignore_index 0 the ignored pixels are those zeros
        foreground = values.size - int(counts[0]) - (ignored if ignore_index else 0)
        return cls(
            pair,
            channels,
            image.dtype.name,
            (height, width),
            alpha,
            mask.values,
            mask.binary_255,
            counts,
            ignored,
            foreground > 0,
            over,
        )

    @property
    def final_values(self) -> np.ndarray:
        """Distinct final mask values (counted or above the counting limit), sorted."""
        return np.union1d(np.flatnonzero(self.counts), np.asarray(self.over, np.int64))


def majority(values: Sequence[T]) -> T | None:
    """The most common value (the first seen among equals); None for no values."""
    return Counter(values).most_common(1)[0][0] if values else None


def consistency_problems(records: list[PairRecord], in_channels: int | None) -> list[Problem]:
    """Odd channel counts (errors), odd bit depths (warnings), a model channel mismatch."""
    problems = []
    channels = majority([r.channels for r in records])
    dtype = majority([r.dtype for r in records])
    n_same = sum(r.channels == channels for r in records)
    for r in records:
        if r.channels != channels:
            problems.append(
                Problem(
                    r.pair.image,
                    "channel-mismatch",
                    f"image has {r.channels} channel(s) but {n_same} of {len(records)} readable "
                    f"images have {channels}",
                    "convert it so all images have the same channels (e.g. all gray or all RGB)",
                )
            )
    if in_channels is not None and channels is not None and channels != in_channels:
        problems.append(
            Problem(
                None,
                "model-channels",
                f"the images have {channels} channel(s) but the model expects {in_channels}",
                "remove model.in_channels to infer it from the data, or convert the images",
            )
        )
    n_dtype = sum(r.dtype == dtype for r in records)
    for r in records:
        if r.dtype != dtype:
            problems.append(
                Problem(
                    r.pair.image,
                    "bit-depth-mismatch",
                    f"image is {r.dtype} but {n_dtype} of {len(records)} readable images are "
                    f"{dtype}",
                    "save all images with one bit depth (intensities are compared in [0, 1] "
                    "units: uint8 / 255, uint16 / 65535)",
                    "warning",
                )
            )
    return problems


def class_problems(
    records: list[PairRecord], num_classes: int | None, masks: MaskOptions
) -> tuple[list[Problem], int, np.ndarray]:
    """Mask values against the classes → ``(problems, num_classes, pixel counts per value)``.

    With ``num_classes`` unknown it is inferred as the largest value + 1 (ignore value aside),
    and a value of ``masks.max_classes`` or more is an error on its mask.
    """
    ignore, problems = masks.ignore_index, []
    length = max((len(r.counts) for r in records), default=2)
    counts = np.zeros(max(length, 2), np.int64)
    for r in records:
        counts[: len(r.counts)] += r.counts
    labels = [v for v in np.flatnonzero(counts).tolist() if v != ignore]
    stray_255 = [
        r for r in records if ignore is None and 255 in r.final_values and len(r.final_values) > 1
    ]
    if num_classes is None:
        usable = [v for v in labels if not (v == 255 and stray_255)]
        num_classes = max(max(usable, default=0) + 1, 2)
        if stray_255:
            problems.append(
                _grouped(
                    stray_255,
                    "value-255",
                    ("mask holds", "masks hold"),
                    "255 next to other values: it would be read as class 255 (256 classes)",
                    "set masks.ignore_index: 255 if 255 marks pixels to skip (e.g. object "
                    "borders), or relabel the masks with classes 0, 1, 2, …",
                )
            )
        for r in records:
            over = [v for v in r.over if not (v == 255 and r in stray_255)]
            if over:
                problems.append(_over_cap(r.pair.mask, over, masks.max_classes))
    else:
        for r in records:
            bad = [v for v in r.final_values.tolist() if v >= num_classes and v != ignore]
            if bad:
                problems.append(_too_large(r.pair.mask, bad, num_classes, ignore))
    absent = [k for k in range(num_classes) if k >= len(counts) or counts[k] == 0]
    if records and absent:
        problems.append(
            Problem(
                None,
                "absent-class",
                f"class(es) {format_ranges(absent)} never occur in the {len(records)} mask(s) "
                f"({num_classes} classes)",
                "class indices must be 0, 1, 2, … without gaps: relabel the masks, or fix the "
                "number of classes / class_names",
                "warning",
            )
        )
    binary = [r for r in records if r.binary_255]
    if binary:
        mixed = num_classes > 2
        problems.append(
            _grouped(
                binary,
                "binary-255",
                ("mask holds", "masks hold"),
                "only {0, 255}: read as binary (255 → class 1)"
                + (f", but the dataset has {num_classes} classes" if mixed else ""),
                "relabel them with the right class indices" if mixed else "",
                "warning" if mixed else "info",
            )
        )
    return problems, num_classes, counts


def _over_cap(path: Path, over: list[int], cap: int) -> Problem:
    values = ", ".join(map(str, over[:5])) + (" …" if len(over) > 5 else "")
    return Problem(
        path,
        "too-many-classes",
        f"mask holds value {values}, which would mean {max(over) + 1} classes; drunet infers at "
        f"most data.masks.max_classes = {cap} classes from mask values",
        "fix the mask (class indices 0, 1, 2, …), or if the value is a real class raise the cap: "
        f"--set data.masks.max_classes={max(over) + 1} (or set model.num_classes / class_names)",
    )


def _too_large(path: Path, bad: list[int], num_classes: int, ignore: int | None) -> Problem:
    values = ", ".join(map(str, bad[:10])) + (" …" if len(bad) > 10 else "")
    if bad == [255] and ignore is None:
        fix = "set masks.ignore_index: 255 if 255 marks pixels to skip, or relabel the mask"
    else:
        fix = (
            f"relabel the mask, or use {max(bad) + 1} classes (num_classes / class_names), or set "
            f"masks.ignore_index: {bad[0]} if it marks pixels to skip"
        )
    return Problem(
        path,
        "unexpected-mask-values",
        f"mask holds value {values} but there are {num_classes} classes (0-{num_classes - 1})",
        fix,
    )


def dataset_notes(records: list[PairRecord], patch_size: int) -> list[Problem]:
    """Alpha channels dropped (warning) and images smaller than the patch (note)."""
    notes = []
    alpha = [r for r in records if r.alpha]
    if alpha:
        notes.append(
            _grouped(
                alpha,
                "alpha-dropped",
                ("image has", "images have"),
                "an alpha channel: it is dropped (RGB is used)",
                "save as RGB to silence this",
                "warning",
                lambda r: r.pair.image,
            )
        )
    small = [r for r in records if min(r.size) < patch_size]
    if small:
        notes.append(
            _grouped(
                small,
                "smaller-than-patch",
                ("image is", "images are"),
                f"smaller than the patch size {patch_size}: padded by mirroring",
                "lower the patch size to train on whole images",
                "info",
                lambda r: r.pair.image,
            )
        )
    return notes


def _grouped(
    records: list[PairRecord],
    kind: str,
    subject: tuple[str, str],
    text: str,
    fix: str,
    severity: Severity = "error",
    path_of: Callable[[PairRecord], Path] = lambda r: r.pair.mask,
) -> Problem:
    """One line for a finding shared by several files: the first file, a count, a few names.

    ``subject`` is the singular and plural start (``("mask holds", "masks hold")``).
    """
    if len(records) == 1:
        return Problem(path_of(records[0]), kind, f"{subject[0]} {text}", fix, severity)
    names = join_limited([path_of(r).name for r in records], _FIRST)
    message = f"{len(records)} {subject[1]} {text} ({names})"
    return Problem(path_of(records[0]), kind, message, fix, severity)
