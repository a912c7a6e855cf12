"""An image layer's data in the Predictor's layout, and its segmentation (no Qt, no napari).

napari holds a 2D image as ``(H, W)``, an RGB(A) one as ``(H, W, 3|4)`` (``layer.rgb``), a stack
as ``(Z, H, W)`` and a stack of RGB(A) images as ``(Z, H, W, 3|4)``; the
:class:`~drunet.inference.Predictor` takes one image ``(H, W, C)`` at a time. A stack is segmented
slice by slice, each slice fed with its neighbours when the model was trained with 2.5D context
(``data.context_slices``, edges replicated as in training), exactly as
:meth:`~drunet.inference.Predictor.predict_stack` does for a TIFF stack.

Pixel values are used as the layer holds them: a uint8 layer is normalised like an 8-bit file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from drunet.datasets.context import iter_with_context
from drunet.errors import DrunetError
from drunet.inference import Predictor
from drunet.inference.volumes import Progress


@dataclass(frozen=True)
class LayerVolume:
    """The data of an image layer named ``name``, read one image ``(H, W, C)`` at a time.

    ``data`` is anything napari accepts as image data (numpy, dask, zarr): it is indexed one
    slice at a time, so a lazy stack is never read whole.
    """

    name: str
    data: Any
    rgb: bool

    @property
    def stack(self) -> bool:
        """Whether the layer is a stack ``(Z, H, W[, 3|4])``: one mask per slice."""
        return len(self.data.shape) - self.rgb == 3

    @property
    def count(self) -> int:
        """The number of images: the slices of a stack, else 1."""
        return int(self.data.shape[0]) if self.stack else 1

    def read(self, index: int) -> np.ndarray:
        """Image ``index`` as ``(H, W, C)`` (an RGBA layer's alpha left out, as files' is)."""
        image = np.asarray(self.data[index] if self.stack else self.data)
        return image[:, :, :3] if self.rgb else image[:, :, None]

    def source(self, index: int) -> str:
        """How errors name image ``index``."""
        return f"layer {self.name!r} slice {index}" if self.stack else f"layer {self.name!r}"


def layer_volume(name: str, data: Any, rgb: bool) -> LayerVolume:
    """The :class:`LayerVolume` of an image layer; a layout drunet cannot segment is a
    :class:`DrunetError` naming the layer and its shape."""
    shape = tuple(int(n) for n in data.shape)
    dims = len(shape) - rgb
    if dims not in (2, 3):
        raise DrunetError(
            f"layer {name!r} has shape {shape}; the drunet widget segments a 2D image (H, W), "
            "an RGB image (H, W, 3) and a stack (Z, H, W): pick such a layer, or slice this one "
            "(e.g. viewer.add_image(layer.data[t]) for one time point)"
        )
    if 0 in shape:
        raise DrunetError(f"layer {name!r} is empty (shape {shape}); nothing to segment")
    return LayerVolume(name, data, rgb)


def segment(
    predictor: Predictor, volume: LayerVolume, on_progress: Progress | None = None
) -> np.ndarray:
    """Class-index mask ``(H, W)`` of an image, or ``(Z, H, W)`` of a stack.

    An image gives what ``predictor.predict`` gives on ``volume.read(0)``; ``on_progress(done,
    total)`` then counts sliding-window tiles (large images only). A stack gives what
    ``predictor.predict_stack`` gives on the same slices; ``on_progress`` counts slices. Memory
    holds ``2k+1`` slices of the layer at a time (``k``: the model's context slices).
    """
    if not volume.stack:
        (result,) = predictor.predict_batch(
            [volume.read(0)], sources=[volume.source(0)], on_progress=on_progress
        )
        return result.mask
    images = iter_with_context(
        volume.count, volume.read, predictor.context_slices, volume.source
    )  # (H, W, (2k+1)·C) each
    masks = []
    for index, image in enumerate(images):
        (result,) = predictor.predict_batch([image], sources=[volume.source(index)])
        masks.append(result.mask)
        if on_progress is not None:
            on_progress(index + 1, volume.count)
    return np.stack(masks)
