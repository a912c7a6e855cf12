"""Small generated giant-image files: every test writes its own into ``tmp_path``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile


def ramp(height: int, width: int, channels: int = 0, dtype: type = np.uint8) -> np.ndarray:
    """A deterministic image whose every pixel differs from its neighbours: (H, W[, C])."""
    shape = (height, width, channels) if channels else (height, width)
    values = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    values = values * 7919 + (values // 251)
    return (
        values % (np.iinfo(dtype).max + 1 if np.issubdtype(dtype, np.integer) else 1000)
    ).astype(dtype)


def write_pyramid(path: Path, levels: list[np.ndarray], *, ome: bool = False, **options) -> Path:
    """A tiled TIFF whose reduced levels are SubIFDs of the first page."""
    with tifffile.TiffWriter(path, bigtiff=True, ome=ome) as writer:
        writer.write(levels[0], tile=(64, 64), subifds=len(levels) - 1, **options)
        options.pop("metadata", None)
        options.pop("resolution", None)
        options.pop("resolutionunit", None)
        for level in levels[1:]:
            writer.write(level, tile=(64, 64), subfiletype=1, **options)
    return path


def write_svs(path: Path, image: np.ndarray, mpp: float) -> Path:
    """An Aperio SVS-like file: tiled JPEG baseline, a thumbnail, a 4× reduced level."""
    height, width = image.shape[:2]
    head = "Aperio Image Library v10.0.0\n"
    options = {"photometric": "rgb", "compression": "jpeg", "subsampling": (1, 1), "metadata": None}
    small = np.ascontiguousarray(image[::4, ::4])
    with tifffile.TiffWriter(path) as writer:
        writer.write(
            image,
            tile=(64, 64),
            description=f"{head}{width}x{height} [0,0 {width}x{height}] (64x64) JPEG/RGB Q=75"
            f"|AppMag = 20|MPP = {mpp}",
            **options,
        )
        writer.write(small, description=f"{head}thumbnail", **options)
        writer.write(
            small,
            tile=(64, 64),
            description=f"{head}{width}x{height} -> {width // 4}x{height // 4} - |MPP = {mpp}",
            **options,
        )
    return path
