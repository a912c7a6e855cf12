"""OME-Zarr images (NGFF 0.4 on zarr v2, 0.5 on zarr v3), level by level, chunk by chunk.

The ``multiscales`` metadata names the levels (finest first) and the axes; a region reads only
the chunks it touches. Channel (``c``) and any other non-spatial axes become the channels as in
``read_image`` (several time points or planes are refused); the resolution is the ``x`` axis's
scale when its unit is a length.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from drunet.errors import DataError
from drunet.giant.levels import MICRONS, Level, choose_level
from drunet.giant.optional import require
from drunet.giant.pixels import channel_axes, check_region, image_dtype, image_layout, region_index
from drunet.giant.regions import GeoRef

_SPATIAL = {"y": "Y", "x": "X"}


def is_zarr(path: Path) -> bool:
    """Whether ``path`` is a zarr group (a folder with zarr v2 or v3 metadata)."""
    return path.is_dir() and any(
        (path / name).is_file() for name in (".zattrs", ".zgroup", "zarr.json")
    )


def multiscales(attrs: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """The first ``multiscales`` entry of an OME-Zarr group's attributes (0.4 or 0.5)."""
    ome = attrs.get("ome")
    entries = (ome if isinstance(ome, Mapping) else attrs).get("multiscales")
    if not entries or not isinstance(entries, list) or not entries[0].get("datasets"):
        raise DataError(
            f"cannot read image {path}: it is a zarr folder without OME-Zarr 'multiscales' "
            "metadata; write it as OME-Zarr (e.g. with ome-zarr-py) or as a tiled TIFF"
        )
    return dict(entries[0])


class OmeZarrSource:
    """One level of an OME-Zarr image as a :class:`~drunet.giant.regions.RegionSource`."""

    def __init__(self, path: str | Path, *, level: int | None = None, mpp: float | None = None):
        zarr = require("zarr", f"reading the OME-Zarr image {path}")
        self.path = Path(path)
        try:
            group = zarr.open_group(self.path, mode="r")
            meta = multiscales(group.attrs.asdict(), self.path)
            arrays = [group[entry["path"]] for entry in meta["datasets"]]
        except DataError:
            raise
        except Exception as err:
            raise DataError(
                f"cannot read image {self.path}: this OME-Zarr folder could not be opened "
                f"({err}); check that it is complete"
            ) from None
        self._axes = "".join(_axis_letter(a) for a in meta.get("axes", "yx"))
        if len(self._axes) != arrays[0].ndim:
            raise DataError(
                f"cannot read image {self.path}: its multiscales name {len(self._axes)} axes "
                f"but the arrays have {arrays[0].ndim}; the metadata is inconsistent"
            )
        sizes = [(a.shape[self._axes.index("Y")], a.shape[self._axes.index("X")]) for a in arrays]
        scales = [_x_microns(meta, i) for i in range(len(arrays))]
        self.levels = [Level(h, w, m) for (h, w), m in zip(sizes, scales, strict=True)]
        self.level = choose_level(self.levels, self.path, level=level, mpp=mpp)
        self._array = arrays[self.level]
        self.height, self.width = sizes[self.level]
        self.channels = channel_axes(tuple(self._array.shape), self._axes, self.path)
        self.dtype = image_dtype(self._array.dtype, self.path)
        self.mpp = self.levels[self.level].mpp
        self.georef: GeoRef | None = None

    def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        """Pixels ``[top:top+height, left:left+width]`` as ``(height, width, C)``."""
        check_region(self.path, (self.height, self.width), top, left, height, width)
        block = np.asarray(self._array[region_index(self._axes, top, left, height, width)])
        return image_layout(block, self._axes, self.path, drop_alpha=False)

    def close(self) -> None:
        pass


def _axis_letter(axis: Any) -> str:
    name = axis.get("name", "") if isinstance(axis, Mapping) else str(axis)
    return _SPATIAL.get(name.lower(), name.upper()[:1] or "?")


def _x_microns(meta: Mapping[str, Any], index: int) -> float | None:
    """Microns per pixel along x at level ``index``: its scale × the multiscale's own scale,
    in the x axis's unit (None without a length unit)."""
    axes = meta.get("axes", [])
    letters = [_axis_letter(a) for a in axes]
    if "X" not in letters:
        return None
    x = letters.index("X")
    unit = axes[x].get("unit") if isinstance(axes[x], Mapping) else None
    factor = MICRONS.get(unit) if isinstance(unit, str) else None
    if factor is None:
        return None
    value = factor
    for transforms in (
        meta["datasets"][index].get("coordinateTransformations", []),
        meta.get("coordinateTransformations", []),
    ):
        for transform in transforms:
            if transform.get("type") == "scale" and len(transform.get("scale", [])) > x:
                value *= float(transform["scale"][x])
    return value if value > 0 else None
