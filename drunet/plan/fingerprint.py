"""The dataset fingerprint: what the training images and masks look like, measured once.

Computed from the training pairs ``drunet train`` reads (``drunet.datasets.discover`` with the
run's layout options, so every layout train accepts works: folders, ``images/`` + ``masks/``,
nnU-Net, multi-page TIFF stacks, numbered slices) and cached in the run folder as
``fingerprint.json``. Measured: image sizes and their spread, channels and pixel types,
intensity statistics per channel (raw values, so int16 CT keeps its units), pixel spacing when
TIFF tags carry it, class frequencies, the share of masks without foreground, objects per class
(8-connected components) and the width of each class's structures (``drunet.plan.measure``).

Bounded work: at most ``max_images`` pairs are read (evenly spaced over the sorted training
pairs, so every stack and folder is represented; all of them when there are fewer), and each is
measured on its centre ``max_side × max_side`` window (sizes are the whole image's). Per image at
most 4096 ridge widths, object areas and pixels per channel are kept (evenly strided), so the
work and memory are bounded by ``max_images × max_side²`` whatever the dataset's size.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from drunet.atomic import atomic_write_text
from drunet.datasets import MaskOptions, Pair, read_pair
from drunet.errors import DataError
from drunet.plan.measure import (
    ClassSamples,
    centre_crop,
    intensity_sample,
    measure_mask,
    percentile,
)
from drunet.plan.spacing import Spacing, read_spacing

FINGERPRINT_FILE = "fingerprint.json"
MAX_IMAGES = 100
MAX_SIDE = 1024


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SizeStats(_Frozen):
    """Image sizes ``(H, W)`` of the sampled images."""

    min: tuple[int, int]
    median: tuple[int, int]
    max: tuple[int, int]
    long_side_median: int  # median of max(H, W)
    distinct: int  # different sizes
    most_common: list[tuple[int, int, int]]  # (H, W, images), at most 5, most common first


class ChannelStats(_Frozen):
    """Raw intensities of one channel (the file's values: 0–255, 0–65535, Hounsfield …)."""

    mean: float
    std: float
    min: float
    max: float
    p00_5: float  # 0.5th percentile
    p99_5: float


class ClassStats(_Frozen):
    """One class: its share of labelled pixels, its structures' width and (foreground) objects.

    Widths are ``2·d`` on the ridge of the distance transform (``drunet.plan.measure``);
    objects are 8-connected components (None for the background, class 0).
    """

    index: int
    name: str
    frequency: float  # share of labelled pixels
    image_share: float  # share of masks holding the class
    width_median: float | None
    width_p10: float | None
    width_p90: float | None
    objects_per_image: float | None  # median over the masks holding the class
    object_area_median: float | None  # px
    object_area_p05: float | None
    object_area_p95: float | None


class Fingerprint(_Frozen):
    """See the module docstring; ``to_json`` / ``from_json`` round-trip it."""

    source: str
    split: str
    pairs: int  # training pairs
    sampled: int  # pairs read
    skipped: int  # pairs chosen but unreadable or inconsistent (drunet verify says why)
    max_images: int
    max_side: int
    sizes: SizeStats
    channels: int
    dtypes: dict[str, int]  # pixel type → sampled images
    intensity: list[ChannelStats]
    spacing: Spacing | None  # the most common spacing among the sampled files carrying one
    spacing_files: int  # sampled files that carry a spacing
    num_classes: int
    ignore_index: int | None
    ignored_share: float  # share of mask pixels equal to ignore_index
    empty_mask_fraction: float  # masks without any foreground pixel
    classes: list[ClassStats]

    @property
    def foreground(self) -> list[ClassStats]:
        return [c for c in self.classes if c.index > 0]

    @property
    def thinnest_width(self) -> float | None:
        """The smallest median width of a foreground class (None: no foreground seen)."""
        widths = [c.width_median for c in self.foreground if c.width_median is not None]
        return min(widths) if widths else None

    @property
    def rarest_frequency(self) -> float | None:
        """The smallest pixel share of a foreground class that occurs (None: none occurs)."""
        shares = [c.frequency for c in self.foreground if c.frequency > 0]
        return min(shares) if shares else None

    def to_json(self) -> dict:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: dict) -> Fingerprint:
        return cls.model_validate(data)


def sample_pairs(pairs: Sequence[Pair], max_images: int) -> list[Pair]:
    """At most ``max_images`` of ``pairs``, evenly spaced (the first and last included)."""
    if len(pairs) <= max_images:
        return list(pairs)
    picks = np.unique(np.linspace(0, len(pairs) - 1, max_images).round().astype(int))
    return [pairs[i] for i in picks]


def compute_fingerprint(
    pairs: Sequence[Pair],
    masks: MaskOptions | None = None,
    *,
    source: str = "",
    split: str = "",
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    max_images: int = MAX_IMAGES,
    max_side: int = MAX_SIDE,
) -> Fingerprint:
    """Measure ``pairs`` (see the module docstring). ``num_classes`` is the model's class count
    when known (else from the largest label seen, at least 2). Pairs that cannot be read, or
    whose image has another channel count than the first, are left out and counted in
    ``skipped`` (training's checks and ``drunet verify`` name them); none readable is a
    ``DataError`` naming the first."""
    if not pairs:
        raise DataError("no training pairs to fingerprint; check the data folder (drunet verify)")
    masks = masks or MaskOptions()
    ignore = masks.ignore_index
    chosen = sample_pairs(pairs, max_images)
    classes: list[ClassSamples] = []
    counts = np.zeros(0, np.int64)
    sizes: list[tuple[int, int]] = []
    dtypes: Counter[str] = Counter()
    spacings: Counter[Spacing] = Counter()
    samples: list[np.ndarray] = []
    moments = _Moments()
    ignored = total = empty = 0
    skipped: list[str] = []
    for pair in chosen:
        try:
            image, mask = read_pair(pair, masks)
            if samples and image.shape[2] != samples[0].shape[1]:
                raise DataError(
                    f"{pair.image} has {image.shape[2]} channel(s) but the first image read has "
                    f"{samples[0].shape[1]}; all images of a dataset need the same channels"
                )
        except DataError as err:  # training's own checks name every such pair
            skipped.append(str(err))
            continue
        sizes.append((image.shape[0], image.shape[1]))
        dtypes[image.dtype.name] += 1
        if (spacing := read_spacing(pair.image)) is not None:
            spacings[spacing] += 1
        image, mask = centre_crop(image, max_side), centre_crop(mask, max_side)
        samples.append(intensity_sample(image))
        moments.add(image)
        found = measure_mask(mask, max(num_classes or 0, 2), ignore, classes)
        counts = _add(counts, found)
        empty += int(found[1:].sum() == 0)
        ignored += int((mask == ignore).sum()) if ignore is not None else 0
        total += mask.size
    if not samples:
        raise DataError(f"no training pair could be read: {skipped[0]}")
    classes_count = max(num_classes or 0, counts.size, 2)
    counts = _add(np.zeros(classes_count, np.int64), counts)
    names = _names(class_names, classes_count)
    return Fingerprint(
        source=source,
        split=split,
        pairs=len(pairs),
        sampled=len(samples),
        skipped=len(skipped),
        max_images=max_images,
        max_side=max_side,
        sizes=_sizes(sizes),
        channels=samples[0].shape[1],
        dtypes=dict(dtypes.most_common()),
        intensity=moments.channels(np.concatenate(samples)),
        spacing=spacings.most_common(1)[0][0] if spacings else None,
        spacing_files=sum(spacings.values()),
        num_classes=classes_count,
        ignore_index=ignore,
        ignored_share=ignored / max(total, 1),
        empty_mask_fraction=empty / len(samples),
        classes=[
            _class_stats(k, names[k], counts, classes, len(samples)) for k in range(classes_count)
        ],
    )


class _Moments:
    """Exact per-channel sums, minima and maxima over every measured pixel."""

    def __init__(self) -> None:
        self.n = 0
        self.sum: np.ndarray | float = 0.0
        self.squares: np.ndarray | float = 0.0
        self.low: np.ndarray | None = None
        self.high: np.ndarray | None = None

    def add(self, image: np.ndarray) -> None:
        flat = image.reshape(-1, image.shape[2]).astype(np.float64)  # (H·W, C)
        self.n += flat.shape[0]
        self.sum = self.sum + flat.sum(0)
        self.squares = self.squares + (flat**2).sum(0)
        low, high = flat.min(0), flat.max(0)
        self.low = low if self.low is None else np.minimum(self.low, low)
        self.high = high if self.high is None else np.maximum(self.high, high)

    def channels(self, sample: np.ndarray) -> list[ChannelStats]:
        """Per-channel statistics; percentiles from ``sample`` ``(n, C)``."""
        assert self.low is not None and self.high is not None  # add() ran at least once
        mean = np.asarray(self.sum) / self.n
        std = np.sqrt(np.maximum(np.asarray(self.squares) / self.n - mean**2, 0.0))
        low, high = np.percentile(sample, [0.5, 99.5], axis=0)
        return [
            ChannelStats(
                mean=float(mean[c]),
                std=float(std[c]),
                min=float(self.low[c]),
                max=float(self.high[c]),
                p00_5=float(low[c]),
                p99_5=float(high[c]),
            )
            for c in range(mean.size)
        ]


def _add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    size = max(a.size, b.size)
    return np.pad(a, (0, size - a.size)) + np.pad(b, (0, size - b.size))


def _names(given: Sequence[str] | None, count: int) -> list[str]:
    if given and len(given) == count:
        return list(given)
    return ["background", *(f"class {k}" for k in range(1, count))]


def _sizes(sizes: list[tuple[int, int]]) -> SizeStats:
    array = np.array(sizes)  # (N, 2) as (H, W)
    common = Counter(sizes).most_common(5)
    return SizeStats(
        min=(int(array[:, 0].min()), int(array[:, 1].min())),
        median=(int(np.median(array[:, 0])), int(np.median(array[:, 1]))),
        max=(int(array[:, 0].max()), int(array[:, 1].max())),
        long_side_median=int(np.median(array.max(1))),
        distinct=len(set(sizes)),
        most_common=[(h, w, n) for (h, w), n in common],
    )


def _class_stats(
    k: int, name: str, counts: np.ndarray, classes: list[ClassSamples], images: int
) -> ClassStats:
    samples = classes[k] if k < len(classes) else ClassSamples()
    objects = samples.components
    return ClassStats(
        index=k,
        name=name,
        frequency=float(counts[k]) / max(int(counts.sum()), 1),
        image_share=samples.images_with / images,
        width_median=percentile(samples.widths, 50),
        width_p10=percentile(samples.widths, 10),
        width_p90=percentile(samples.widths, 90),
        objects_per_image=float(np.median(objects)) if objects else None,
        object_area_median=percentile(samples.areas, 50),
        object_area_p05=percentile(samples.areas, 5),
        object_area_p95=percentile(samples.areas, 95),
    )


def save_fingerprint(fingerprint: Fingerprint, path: str | Path) -> None:
    """Write ``fingerprint.json`` (atomically)."""
    atomic_write_text(path, json.dumps(fingerprint.to_json(), indent=2) + "\n")


def load_fingerprint(path: str | Path) -> Fingerprint:
    """Read a ``fingerprint.json`` written by :func:`save_fingerprint`."""
    return Fingerprint.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
