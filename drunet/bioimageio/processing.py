"""A run's normalisation and output activation as BioImage Model Zoo processing steps.

drunet turns a raw image into network input in two halves (:mod:`drunet.datasets.normalization`):
``to_unit`` (the file's pixels to ``[0, 1]`` units: uint8 / 255, uint16 / 65535, signed and
float pixels as they are; then clipped to a fixed ``window`` in raw values, or to the
``clip_low``/``clip_high`` measured once on the training images, and stretched to ``[0, 1]``)
and ``standardize`` (``mode``: the dataset's mean/std, each image's own, ImageNet's, or none).

Every stored number is fixed, so each half is a chain of the spec's fixed operations on a raw
input of a known dtype::

    ensure_dtype float32
    scale_linear  gain 1/(s·(high-low)), offset -low/(high-low)  (per channel)  ┐ a clip window
    clip          0 … 1                                                         ┘
    scale_linear  gain 1/s                                                        no window
    fixed_zero_mean_unit_variance  mean, std (per channel)     mode dataset / imagenet
    zero_mean_unit_variance        over y and x                mode zscore (alone, see below)

with ``s`` what ``to_float`` divides the dtype by (``(clip(u, lo, hi) - lo) / (hi - lo)`` is
``clip((u - lo) / (hi - lo), 0, 1)``, which needs no per-channel clip). drunet's percentiles are
measured on the training set and stored, so they become fixed values here, not the spec's
per-image ``scale_range``. What cannot be written this way is refused with a
:class:`~drunet.errors.DrunetError`: a run that stored no clip window its percentiles need,
``zscore`` after a clip window, an ImageNet normalisation of other than 1 or 3 channels, an
input dtype drunet does not read.

``zscore`` is measured by the zoo's runtimes on the image as it comes in, before any step: it
is written alone (standardising is blind to the linear rescaling to ``[0, 1]``), and refused
after a clip window. It divides by ``std + 1e-6`` where drunet divides by ``max(std, 1e-6)``:
the same to within 1e-6 of the standardised value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drunet.datasets.io import unit_scale
from drunet.datasets.normalization import IMAGENET_MEAN, IMAGENET_STD, MIN_STD
from drunet.datasets.options import NormalizationOptions
from drunet.errors import DrunetError

Step = dict[str, Any]  # one rdf processing step: {"id": ..., "kwargs": {...}}
INPUT_DTYPES = ("uint8", "uint16", "int8", "int16", "int32", "int64", "float32", "float64")


def preprocessing(norm: NormalizationOptions, dtype: str, channels: int) -> list[Step]:
    """The rdf ``preprocessing`` reproducing ``normalize(image, norm)`` for raw ``(C, H, W)``
    inputs of ``dtype`` (a numpy dtype name) with ``channels`` channels."""
    if dtype not in INPUT_DTYPES:
        raise DrunetError(
            f"drunet reads uint8, uint16, signed integer and float images, not {dtype}; "
            "choose a sample image of the training data's type"
        )
    unit = _to_unit(norm, dtype)
    if norm.mode == "zscore":
        # The zoo's runtimes measure an image before its first step, so only steps that leave
        # the standardised image unchanged (the linear rescaling to [0, 1]) may come before.
        if any(step["id"] == "clip" for step in unit):
            raise DrunetError(
                "the run standardises each image (mode zscore) after clipping it to a window; "
                "the BioImage Model Zoo measures images before any step, so this cannot be "
                "described — export it with --format onnx instead"
            )
        unit = []
    return [_ensure_float32(), *unit, *_standardisation(norm, channels), _ensure_float32()]


def _to_unit(norm: NormalizationOptions, dtype: str) -> list[Step]:
    """``to_unit``: raw pixels (already float32) to [0, 1] units, clipped to the window."""
    scale = unit_scale(np.dtype(dtype))
    if norm.window is not None:
        low, high = norm.window
        return [_scale_linear([1 / (high - low)], [-low / (high - low)]), _clip_unit()]
    if norm.clip_low is not None and norm.clip_high is not None:
        spans = [h - lo for lo, h in zip(norm.clip_low, norm.clip_high, strict=True)]
        gains = [1 / (scale * span) for span in spans]
        offsets = [-lo / span for lo, span in zip(norm.clip_low, spans, strict=True)]
        return [_scale_linear(gains, offsets), _clip_unit()]
    if _wants_clip(norm, dtype):
        raise DrunetError(
            f"the run's normalisation clips {dtype} images to percentiles "
            f"({norm.clip_percentiles}) but stores no clip window (clip_low/clip_high); it "
            "cannot be written as fixed values — retrain, or choose an 8-bit sample image"
        )
    return [_scale_linear([1 / scale], [0.0])] if scale != 1.0 else []


def postprocessing(out_channels: int) -> list[Step]:
    """Logits → probabilities: a sigmoid for the one binary channel, else a softmax."""
    if out_channels == 1:
        return [{"id": "sigmoid"}, _ensure_float32()]
    return [{"id": "softmax", "kwargs": {"axis": "channel"}}, _ensure_float32()]


def _standardisation(norm: NormalizationOptions, channels: int) -> list[Step]:
    if norm.mode == "none":
        return []
    if norm.mode == "zscore":
        return [{"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"], "eps": MIN_STD}}]
    if norm.mode == "imagenet":
        if channels not in (1, 3):
            raise DrunetError(
                f"ImageNet normalisation is defined for 1 or 3 channels, not {channels}; "
                "the run cannot be described"
            )
        mean = list(IMAGENET_MEAN) if channels == 3 else [float(np.mean(IMAGENET_MEAN))]
        std = list(IMAGENET_STD) if channels == 3 else [float(np.mean(IMAGENET_STD))]
    else:
        if norm.mean is None or norm.std is None:
            raise DrunetError(
                "the run's configuration holds no normalisation (data.normalization.mean/std)"
            )
        mean, std = list(norm.mean), list(norm.std)
    if channels == 1:
        kwargs: dict[str, Any] = {"mean": mean[0], "std": std[0]}
    else:
        kwargs = {"mean": mean, "std": std, "axis": "channel"}
    return [{"id": "fixed_zero_mean_unit_variance", "kwargs": kwargs}]


def _wants_clip(norm: NormalizationOptions, dtype: str) -> bool:
    """Whether ``to_unit`` would clip an image of ``dtype`` (and so needs a stored window)."""
    percentiles = norm.clip_percentiles
    return percentiles not in (None, "auto") or (percentiles == "auto" and dtype != "uint8")


def _scale_linear(gain: list[float], offset: list[float]) -> Step:
    if len(gain) == 1:
        return {"id": "scale_linear", "kwargs": {"gain": gain[0], "offset": offset[0]}}
    return {"id": "scale_linear", "kwargs": {"gain": gain, "offset": offset, "axis": "channel"}}


def _clip_unit() -> Step:
    return {"id": "clip", "kwargs": {"min": 0.0, "max": 1.0}}


def _ensure_float32() -> Step:
    return {"id": "ensure_dtype", "kwargs": {"dtype": "float32"}}
