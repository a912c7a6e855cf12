"""``verify_dataset``: every problem of a dataset, one precise line each, and a summary.

Each file is read once. Problems name the file, what is wrong and the fix; dataset-wide notes
(0/255 masks, alpha channels, images smaller than the patch) are one line each, naming the
first files. The summary says what training would use: classes and their frequencies, sizes,
channels, bit depths, the normalisation (measured on the training split) and the patch size.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drunet.datasets.folder import Pair, check_sizes, stack_channels
from drunet.datasets.io import decode_image
from drunet.datasets.layouts import DatasetLayout, discover
from drunet.datasets.limits import max_image_pixels
from drunet.datasets.masks import decode_mask
from drunet.datasets.normalization import IntensityAccumulator
from drunet.datasets.options import LayoutOptions, MaskOptions, NormalizationOptions
from drunet.datasets.problems import Problem
from drunet.datasets.verify.checks import (
    PairRecord,
    class_problems,
    consistency_problems,
    dataset_notes,
    majority,
)
from drunet.errors import DataError


@dataclass
class VerifySummary:
    """What training would use (see ``VerifyReport``). Frequencies exclude ignored pixels."""

    source: str
    split: str
    pairs: int  # matched image/mask pairs
    usable: int  # pairs that could be read and are consistent
    train: int
    val: int
    test: int
    num_classes: int
    class_names: list[str]
    class_frequencies: list[float]  # share of labelled pixels per class (sums to 1)
    ignore_index: int | None
    ignored_share: float  # share of all mask pixels equal to ignore_index
    empty_mask_share: float  # share of masks without any foreground pixel
    size_min: tuple[int, int]  # (H, W)
    size_median: tuple[int, int]
    size_max: tuple[int, int]
    size_counts: dict[str, int]  # "HxW" → images, most common first
    channels: int | None
    channel_names: list[str] | None
    bit_depths: dict[str, int]  # dtype name → images
    normalization: NormalizationOptions | None  # measured on the training split
    patch_size: int
    smaller_than_patch: int  # images padded to reach the patch size

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["normalization"] = (
            self.normalization.model_dump(mode="json") if self.normalization else None
        )
        return data


@dataclass
class VerifyReport:
    """``problems`` (errors, warnings, notes; one line each) and the ``summary`` (None if no
    pair could be read)."""

    problems: list[Problem] = field(default_factory=list)
    summary: VerifySummary | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        """True when nothing stops training (warnings and notes may remain)."""
        return not self.errors and self.summary is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": [p.to_json() for p in self.problems],
            "summary": self.summary.to_json() if self.summary else None,
        }

    def raise_for_errors(self) -> None:
        """Raise ``DataError`` listing the errors (and the summary) unless ``ok``."""
        if self.ok:
            return
        lines = format_problem_lines(VerifyReport(self.errors)) or ["no usable image/mask pairs"]
        summary = format_summary_lines(self.summary) if self.summary else []
        raise DataError(
            f"the dataset has {len(self.errors)} error(s); fix them and try again:\n"
            + "\n".join(lines + summary)
        )


def verify_dataset(
    source: str | Path | DatasetLayout,
    masks: MaskOptions | None = None,
    *,
    layout: LayoutOptions | None = None,
    normalization: NormalizationOptions | None = None,
    num_classes: int | None = None,
    in_channels: int | None = None,
    patch_size: int = 256,
) -> VerifyReport:
    """Check every pair of a dataset folder (or an already discovered layout).

    ``num_classes`` / ``in_channels`` are what the model expects (None: inferred; class names
    in ``masks`` also fix the number of classes). Never raises for bad files: each becomes a
    ``Problem``; a folder without a recognisable layout is a single error. A malformed
    ``DRUNET_MAX_IMAGE_PIXELS`` raises ``DataError``.
    """
    masks = masks or MaskOptions()
    max_image_pixels()  # a malformed DRUNET_MAX_IMAGE_PIXELS: one error, not one per file
    if isinstance(source, DatasetLayout):
        found = source
    else:
        try:
            found = discover(source, layout, strict=False)
        except DataError as err:
            return VerifyReport([Problem(Path(source), "layout", *_split_fix(str(err)))])
    if masks.ignore_index is None and found.ignore_index is not None:
        masks = masks.model_copy(update={"ignore_index": found.ignore_index})
    problems = list(found.problems)
    classes = num_classes or masks.num_classes or (len(found.class_names or []) or None)
    from_labels = not num_classes and masks.num_classes is None  # dataset.json: data
    if from_labels and classes is not None and classes > masks.max_classes:
        problems.append(_too_many_labels(found, classes, masks.max_classes))
        classes = None
    limit = max(classes or 0, masks.max_classes)  # mask values counted per pair below this
    train = set(found.train)
    records: list[PairRecord] = []
    accumulators: dict[int, IntensityAccumulator] = {}
    for pair in found.pairs:
        read = _read(pair, masks, limit, problems)
        if read is None:
            continue
        record, image = read
        records.append(record)  # keeps no pixels: memory stays small for large datasets
        if pair in train:
            accumulator = accumulators.setdefault(record.channels, IntensityAccumulator())
            accumulator.add(image, pair.image)
    problems += consistency_problems(records, in_channels)
    class_lines, classes, counts = class_problems(records, classes, masks)
    problems += class_lines + dataset_notes(records, patch_size)
    problems = list(dict.fromkeys(problems))  # the slices of one bad stack: one line
    if not records:
        return VerifyReport(problems)
    return VerifyReport(
        problems,
        _summary(found, records, masks, classes, counts, accumulators, normalization, patch_size),
    )


def _too_many_labels(found: DatasetLayout, labels: int, cap: int) -> Problem:
    return Problem(
        None,
        "too-many-classes",
        f"dataset.json of {found.source} lists {labels} labels, more than the "
        f"data.masks.max_classes = {cap} classes drunet takes from the data",
        f"fix its labels, or if they are real raise the cap: --set data.masks.max_classes={labels}",
    )


def _read(
    pair: Pair, masks: MaskOptions, limit: int, problems: list[Problem]
) -> tuple[PairRecord, np.ndarray] | None:
    """Read one pair once → ``(record, image)``; file-level problems go to ``problems``."""
    image = mask = None
    decoded = []
    for path in pair.image_files:
        try:
            decoded.append(decode_image(path, pair.page))
        except DataError as err:
            problems.append(_unreadable(path, err))
    if len(decoded) == len(pair.image_files):
        try:
            image = stack_channels(pair, [d.array for d in decoded])
        except DataError as err:
            problems.append(Problem(pair.image, "channel-files", *_split_fix(str(err))))
    try:
        mask = decode_mask(pair.mask, masks, pair.page)
    except DataError as err:
        problems.append(_unreadable(pair.mask, err))
    if image is None or mask is None:
        return None
    try:
        check_sizes(pair, image, mask.mask)
    except DataError:
        problems.append(
            Problem(
                pair.mask,
                "size-mismatch",
                f"mask is {_size(mask.mask.shape)} (W×H) but its image "
                f"{pair.image.name} is {_size(image.shape)}",
                "re-export the mask at the image's size",
            )
        )
        return None
    if image.dtype == np.float32 and not np.all(np.isfinite(image)):
        problems.append(
            Problem(
                pair.image,
                "non-finite",
                "image holds NaN or infinite values",
                "replace them (e.g. by 0) and save the image again",
            )
        )
        return None
    alpha = any(d.alpha_dropped for d in decoded)
    return PairRecord.measure(pair, image, mask, alpha, masks.ignore_index, limit), image


def _unreadable(path: Path, err: DataError) -> Problem:
    """``cannot read image X: what; fix`` → a Problem on X with ``what`` and ``fix`` apart."""
    text = str(err)
    for prefix in ("cannot read image", "cannot read mask", "cannot use mask"):
        if text.startswith(f"{prefix} {path}: "):
            text = text[len(f"{prefix} {path}: ") :]
    return Problem(path, "unreadable", *_split_fix(text))


def _split_fix(text: str) -> tuple[str, str]:
    message, _, fix = text.partition("; ")
    return message, fix


def _size(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}×{shape[0]}"


def _summary(
    found: DatasetLayout,
    records: list[PairRecord],
    masks: MaskOptions,
    num_classes: int,
    counts: np.ndarray,
    accumulators: dict[int, IntensityAccumulator],
    normalization: NormalizationOptions | None,
    patch_size: int,
) -> VerifySummary:
    channels = majority([r.channels for r in records])
    names = masks.class_names or found.class_names
    if not names or len(names) != num_classes:
        names = ["background", *(f"class {k}" for k in range(1, num_classes))]
    labelled = counts[:num_classes]
    total = max(int(labelled.sum()), 1)
    pixels = sum(r.size[0] * r.size[1] for r in records)
    sizes = np.array([r.size for r in records])  # (N, 2) as (H, W)
    accumulator = accumulators.get(channels) if channels is not None else None
    norm = accumulator.finish(normalization) if accumulator is not None else None
    return VerifySummary(
        source=found.source,
        split=found.split,
        pairs=len(found.pairs),
        usable=len(records),
        train=len(found.train),
        val=len(found.val),
        test=len(found.test),
        num_classes=num_classes,
        class_names=list(names),
        class_frequencies=[float(c) / total for c in labelled],
        ignore_index=masks.ignore_index,
        ignored_share=sum(r.ignored for r in records) / max(pixels, 1),
        empty_mask_share=sum(not r.has_foreground for r in records) / len(records),
        size_min=(int(sizes[:, 0].min()), int(sizes[:, 1].min())),
        size_median=(int(np.median(sizes[:, 0])), int(np.median(sizes[:, 1]))),
        size_max=(int(sizes[:, 0].max()), int(sizes[:, 1].max())),
        size_counts={
            f"{h}x{w}": n for (h, w), n in Counter(map(tuple, sizes.tolist())).most_common()
        },
        channels=channels,
        channel_names=found.channel_names,
        bit_depths=dict(Counter(r.dtype for r in records).most_common()),
        normalization=norm,
        patch_size=patch_size,
        smaller_than_patch=sum(min(r.size) < patch_size for r in records),
    )


def format_problem_lines(report: VerifyReport) -> list[str]:
    """One plain-text line per problem, errors first (for logs and error messages)."""
    order = {"error": 0, "warning": 1, "info": 2}
    return [p.line() for p in sorted(report.problems, key=lambda p: order[p.severity])]


def format_summary_lines(summary: VerifySummary) -> list[str]:
    """The summary as a few plain-text lines."""
    classes = ", ".join(
        f"{name} {share:.1%}"
        for name, share in zip(summary.class_names, summary.class_frequencies, strict=True)
    )
    lines = [
        f"data: {summary.source}; split: {summary.split}",
        f"pairs: {summary.pairs} ({summary.usable} usable; train {summary.train}, "
        f"val {summary.val}, test {summary.test})",
        f"classes: {summary.num_classes} ({classes}); masks without foreground: "
        f"{summary.empty_mask_share:.0%}",
        f"images: {summary.channels} channel(s), {', '.join(summary.bit_depths)}; sizes "
        f"{_hw(summary.size_min)} … {_hw(summary.size_max)} (median {_hw(summary.size_median)})",
    ]
    if summary.ignore_index is not None:
        lines.append(f"ignored pixels (value {summary.ignore_index}): {summary.ignored_share:.1%}")
    norm = summary.normalization
    if norm is not None:
        text = f"normalisation: {norm.mode}"
        if norm.window is not None:
            text += f", window {_floats(list(norm.window))}"
        if norm.clip_low is not None:
            text += f", clipped to percentiles {norm.clip_percentiles}"
        if norm.mean is not None:
            text += f", mean {_floats(norm.mean)}, std {_floats(norm.std)}"
        lines.append(text)
    lines.append(
        f"patch size: {summary.patch_size} ({summary.smaller_than_patch} image(s) smaller, padded)"
    )
    return lines


def _hw(size: tuple[int, int]) -> str:
    return f"{size[1]}×{size[0]}"


def _floats(values: list[float] | None) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values or []) + "]"
