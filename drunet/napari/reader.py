"""The napari reader of what ``drunet predict`` writes (no Qt, no napari import):

* ``<stem>_mask.png`` / ``<stem>_mask.tif`` — class indices, one mask or a stack's masks (one
  TIFF page per slice) → a Labels layer ``(H, W)`` / ``(Z, H, W)``;
* ``<stem>_probs.tif`` — float32 class probabilities, one sample per class → one Image layer
  per class (``<stem>_probs class k``), contrast 0 … 1.

Files are read with drunet's own readers, so a damaged file is a :class:`~drunet.errors.DataError`
naming it and the fix, as everywhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from drunet.datasets import read_image, read_mask
from drunet.datasets.stacks import frame_count
from drunet.inference.files import MASK_SUFFIX, PROBABILITIES_SUFFIX
from drunet.inference.stack_files import STACK_MASK_SUFFIX

LayerData = tuple[Any, dict[str, Any], str]  # (data, layer keyword arguments, layer type)
ReaderFunction = Callable[[str | Sequence[str]], list[LayerData]]

MASKS = (MASK_SUFFIX, STACK_MASK_SUFFIX)


def get_reader(path: str | Sequence[str]) -> ReaderFunction | None:
    """napari's reader hook: :func:`read_layers` when every path is a drunet mask or
    probability file (by its name), else ``None`` so that napari asks another reader."""
    paths = [path] if isinstance(path, str) else list(path)
    if paths and all(_kind(Path(p)) is not None for p in paths):
        return read_layers
    return None


def read_layers(path: str | Sequence[str]) -> list[LayerData]:
    """The layers of one or several drunet output files (see the module docstring)."""
    paths = [path] if isinstance(path, str) else list(path)
    layers: list[LayerData] = []
    for name in paths:
        file = Path(name)
        if _kind(file) == "probabilities":
            layers.append(_probabilities_layer(file))
        else:
            layers.append((read_masks(file), {"name": file.stem}, "labels"))
    return layers


def read_masks(path: Path) -> np.ndarray:
    """A mask ``(H, W)`` or a stack's masks ``(Z, H, W)`` as uint8 (uint16 beyond 255)."""
    frames = frame_count(path)
    if frames > 1:
        masks = np.stack([read_mask(path, page=page) for page in range(frames)])
    else:
        masks = read_mask(path)
    dtype = np.uint8 if masks.max(initial=0) <= 255 else np.uint16
    return masks.astype(dtype)


def _probabilities_layer(path: Path) -> LayerData:
    probabilities = read_image(path)  # (H, W, K) float32
    classes = probabilities.shape[2]
    meta = {
        "name": [f"{path.stem} class {k}" for k in range(classes)],
        "channel_axis": 0,
        "contrast_limits": [0.0, 1.0],
    }
    return np.ascontiguousarray(probabilities.transpose(2, 0, 1)), meta, "image"  # (K, H, W)


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(PROBABILITIES_SUFFIX):
        return "probabilities"
    if name.endswith(MASKS):
        return "mask"
    return None
