"""Intensity normalisation: measured once on training images, used in training and prediction.

``compute_normalization`` fills a ``NormalizationOptions`` (clip window and mean/std per channel);
the filled copy is stored with the run, and ``normalize`` turns any raw ``read_image`` array into
network input with it — the same function for the training ``Dataset`` and for the predictor.

Unsigned 8/16-bit images are measured exactly through a 65536-bin histogram per channel (8-bit
values land on every 257th bin, the same [0, 1] unit as ``to_float``); signed integer and float
images through a strided sample of at most 16384 pixels per image, so their percentiles and
moments are estimates. A fixed ``window`` (raw pixel values) needs nothing measured; mode
``"zscore"`` standardises each image by its own statistics.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from drunet.datasets.folder import Pair, read_pair_image
from drunet.datasets.io import to_float
from drunet.datasets.options import AUTO_CLIP_PERCENTILES, NormalizationOptions
from drunet.errors import DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MIN_STD = 1e-6  # a constant channel would otherwise divide by zero
_BINS = 65536
_SAMPLE = 16384  # float pixels kept per image and channel (64 KiB as float32)


class IntensityAccumulator:
    """Collects per-channel intensity distributions, one ``add(image)`` per raw image."""

    def __init__(self) -> None:
        self.channels: int | None = None
        self.dtypes: set[str] = set()
        self._hist = np.zeros((0, _BINS), np.int64)  # (C, 65536) counts in 1/65535 units
        self._samples: list[list[np.ndarray]] = []  # per channel: float32 samples of each image
        self._weights: list[list[float]] = []  # per channel: pixels each sample stands for

    def add(self, image: np.ndarray, source: object = "image") -> None:
        """Add a raw ``(H, W, C)`` image (a ``read_image`` dtype); channels must agree."""
        channels = image.shape[2]
        if self.channels is None:
            self.channels = channels
            self._hist = np.zeros((channels, _BINS), np.int64)
            self._samples = [[] for _ in range(channels)]
            self._weights = [[] for _ in range(channels)]
        elif channels != self.channels:
            raise DataError(
                f"{source} has {channels} channel(s) but earlier images have {self.channels}; "
                "all images of a dataset need the same number of channels — convert it"
            )
        self.dtypes.add(image.dtype.name)
        for c in range(channels):
            plane = image[:, :, c]
            if image.dtype == np.uint8:
                self._hist[c, ::257] += np.bincount(plane.ravel(), minlength=256)
            elif image.dtype == np.uint16:
                self._hist[c] += np.bincount(plane.ravel(), minlength=_BINS)
            else:
                values = plane.ravel()[:: max(1, plane.size // _SAMPLE)]
                values = values[np.isfinite(values)].astype(np.float32)
                if values.size:
                    self._samples[c].append(values)
                    self._weights[c].append(plane.size / values.size)

    def finish(self, options: NormalizationOptions | None = None) -> NormalizationOptions:
        """A filled copy of ``options``: percentiles resolved, clip window and mean/std set.

        Values the options already hold (a user's own mean/std or clip window) are kept.
        """
        options = options or NormalizationOptions()
        if self.channels is None:
            raise ValueError("no images were added; cannot compute a normalisation")
        percentiles = options.clip_percentiles
        if percentiles == "auto":
            wants = self.dtypes - {"uint8"} and options.window is None
            percentiles = AUTO_CLIP_PERCENTILES if wants else None
        update: dict[str, object] = {"clip_percentiles": percentiles}
        low, high = options.clip_low, options.clip_high
        raw = options.window is not None  # the window is in raw pixel values
        dists = [self._distribution(c, raw) for c in range(self.channels)]
        if percentiles is not None and low is None:
            low, high = [], []
            for values, weights in dists:
                lo, hi = _weighted_percentiles(values, weights, percentiles)
                if hi <= lo:  # a (nearly) constant channel: keep a unit window above it
                    hi = lo + 1.0 / 65535
                low.append(lo)
                high.append(hi)
            update.update(clip_low=low, clip_high=high)
        if options.mode == "dataset" and options.mean is None:
            means, stds = [], []
            for c, (values, weights) in enumerate(dists):
                if options.window is not None:
                    values = _in_window(values, options.window)
                elif low is not None and high is not None:
                    values = (np.clip(values, low[c], high[c]) - low[c]) / (high[c] - low[c])
                mean = float(np.average(values, weights=weights))
                var = float(np.average(np.square(values - mean), weights=weights))
                means.append(mean)
                stds.append(max(float(np.sqrt(var)), MIN_STD))
            update.update(mean=means, std=stds)
        return NormalizationOptions.model_validate({**options.model_dump(), **update})

    def _distribution(self, c: int, raw: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Values (``to_float`` units, or the files' raw values with ``raw``) and their pixel
        counts, zero counts dropped, sorted."""
        bins = np.flatnonzero(self._hist[c])
        scale = 1.0 / (_BINS - 1)
        if raw:  # histogram bins back to 8- or 16-bit pixel values
            scale = 1.0 if "uint16" in self.dtypes else 1.0 / 257
        values = [bins * scale] + [v.astype(np.float64) for v in self._samples[c]]
        weights = [self._hist[c][bins].astype(np.float64)] + [
            np.full(v.size, w) for v, w in zip(self._samples[c], self._weights[c], strict=True)
        ]
        all_values, all_weights = np.concatenate(values), np.concatenate(weights)
        if all_values.size == 0:
            raise DataError("the images hold no finite pixel values; cannot normalise them")
        order = np.argsort(all_values, kind="stable")
        return all_values[order], all_weights[order]


def _weighted_percentiles(
    values: np.ndarray, weights: np.ndarray, percentiles: tuple[float, float]
) -> tuple[float, float]:
    """Inverted-CDF percentiles: the smallest value whose cumulative share reaches ``q``."""
    cumulative = np.cumsum(weights)
    result = []
    for q in percentiles:
        index = np.searchsorted(cumulative, q / 100.0 * cumulative[-1], side="left")
        result.append(float(values[min(index, len(values) - 1)]))
    return result[0], result[1]


def compute_normalization(
    pairs: Iterable[Pair], options: NormalizationOptions | None = None
) -> NormalizationOptions:
    """Read the (training) pairs' images once and return ``options`` filled (see the module)."""
    accumulator = IntensityAccumulator()
    for pair in pairs:
        accumulator.add(read_pair_image(pair), pair.image)
    if accumulator.channels is None:
        raise ValueError("compute_normalization got no pairs; pass the training pairs")
    return accumulator.finish(options)


def to_unit(
    image: np.ndarray, options: NormalizationOptions, source: object = "image"
) -> np.ndarray:
    """Raw ``(H, W, C)`` → float32 ``(H, W, C)`` in [0, 1] units, clipped to the window if any.

    This is the first half of ``normalize``; augmentations run between the two halves.
    """
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2]
    expected = options.channels
    if expected is not None and channels != expected:
        raise DataError(
            f"{source} has {channels} channel(s) but the normalisation was computed for "
            f"{expected}; convert it to {expected} channel(s) (or retrain on such images)"
        )
    if options.window is not None:
        return _in_window(image.astype(np.float32), options.window)
    x = to_float(image)
    if options.clip_low is not None:
        low = np.asarray(options.clip_low, np.float32)
        high = np.asarray(options.clip_high, np.float32)
        return ((np.clip(x, low, high) - low) / (high - low)).astype(np.float32, copy=False)
    wants_clip = options.clip_percentiles not in (None, "auto") or (
        options.clip_percentiles == "auto" and image.dtype != np.uint8
    )
    if wants_clip:
        raise ValueError(
            f"{source}: percentile clipping applies but no clip window is stored; call "
            "compute_normalization(training_pairs, options) first and keep its result"
        )
    return x


def standardize(
    x: np.ndarray, options: NormalizationOptions, stats: ImageStats | None = None
) -> np.ndarray:
    """``to_unit`` output → network input: mean/std by ``options.mode`` (float32, same shape).

    Mode ``"zscore"`` uses ``stats`` (``image_stats`` of the whole image, when ``x`` is a patch
    of it), else the statistics of ``x`` itself.
    """
    channels = x.shape[2]
    if options.mode == "none":
        return x
    mean: Sequence[float]
    std: Sequence[float]
    if options.mode == "zscore":
        mean, std = stats if stats is not None else image_stats(x)
    elif options.mode == "imagenet":
        mean, std = _imagenet(channels)
    else:
        if options.mean is None or options.std is None:
            raise ValueError(
                "normalisation mode 'dataset' needs mean/std; call "
                "compute_normalization(training_pairs, options) first and keep its result"
            )
        mean, std = options.mean, options.std
    mean_a, std_a = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    return ((x - mean_a) / std_a).astype(np.float32, copy=False)


ImageStats = tuple[list[float], list[float]]


def image_stats(x: np.ndarray) -> ImageStats:
    """Per-channel mean and std of a ``to_unit`` image ``(H, W, C)`` over its finite pixels
    (std at least ``MIN_STD``), for mode ``"zscore"``."""
    means, stds = [], []
    for c in range(x.shape[2]):
        plane = x[:, :, c]
        values = plane[np.isfinite(plane)] if plane.dtype.kind == "f" else plane
        mean = float(values.mean(dtype=np.float64)) if values.size else 0.0
        std = float(values.std(dtype=np.float64)) if values.size else 1.0
        means.append(mean)
        stds.append(max(std, MIN_STD))
    return means, stds


def _in_window(values: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Clip raw values to ``window`` and stretch it to [0, 1] (same dtype: float32/float64)."""
    low, high = window
    scaled = (np.clip(values, low, high) - low) / (high - low)
    return scaled.astype(values.dtype, copy=False)


def normalize(
    image: np.ndarray, options: NormalizationOptions, source: object = "image"
) -> np.ndarray:
    """Raw ``read_image`` array ``(H, W, C)`` → float32 network input ``(H, W, C)``.

    ``options`` must be filled by ``compute_normalization`` unless it needs nothing measured
    (a ``window``, or mode ``"zscore"``/``"imagenet"``/``"none"`` on 8-bit data). A channel
    mismatch is a ``DataError`` naming ``source``.
    """
    return standardize(to_unit(image, options, source), options)


def _imagenet(channels: int) -> tuple[Sequence[float], Sequence[float]]:
    if channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    if channels == 1:  # gray input to an RGB-pretrained encoder: the average statistics
        return [float(np.mean(IMAGENET_MEAN))], [float(np.mean(IMAGENET_STD))]
    raise DataError(
        f"ImageNet normalisation is defined for 1 or 3 channels, but the images have {channels}; "
        "use normalization mode 'dataset'"
    )
