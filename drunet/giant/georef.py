"""GeoTIFF georeferencing: read from a TIFF page, written to a mask, scaled with a resolution.

The tags are copied as they are (numbers and text), so the mask carries the input's coordinate
system and transform unchanged and GIS tools overlay one on the other. Scaling to another
resolution assumes GeoTIFF's default raster type, pixel-is-area (the tiepoint is a corner).
"""

from __future__ import annotations

from typing import Any

from drunet.giant.regions import GeoRef

MODEL_PIXEL_SCALE = 33550
MODEL_TIEPOINT = 33922
MODEL_TRANSFORMATION = 34264
GEO_KEY_DIRECTORY = 34735
GEO_DOUBLE_PARAMS = 34736
GEO_ASCII_PARAMS = 34737
GDAL_METADATA = 42112
GDAL_NODATA = 42113

# Each tag's TIFF type as tifffile's extratags name it: doubles, unsigned shorts, text.
TAG_TYPES = {
    MODEL_PIXEL_SCALE: "d",
    MODEL_TIEPOINT: "d",
    MODEL_TRANSFORMATION: "d",
    GEO_KEY_DIRECTORY: "H",
    GEO_DOUBLE_PARAMS: "d",
    GEO_ASCII_PARAMS: "s",
    GDAL_METADATA: "s",
    GDAL_NODATA: "s",
}


def read_georef(page: Any) -> GeoRef | None:
    """The GeoTIFF tags of a tifffile page, or None when it has no GeoKeyDirectory."""
    if GEO_KEY_DIRECTORY not in page.tags:
        return None
    tags: dict[int, object] = {}
    for code in TAG_TYPES:
        tag = page.tags.get(code)
        if tag is not None:
            value = tag.value
            tags[code] = value if isinstance(value, str) else tuple(_numbers(value))
    return GeoRef(tags)


def georef_extratags(georef: GeoRef | None) -> list[tuple[int, str, int, object, bool]]:
    """``georef`` as tifffile ``extratags`` (code, type, count, value, write once)."""
    if georef is None:
        return []
    extratags: list[tuple[int, str, int, object, bool]] = []
    for code, value in sorted(georef.tags.items()):
        kind = TAG_TYPES.get(code)
        if kind is None:  # not a georeferencing tag this module knows how to write
            continue
        if kind == "s":
            extratags.append((code, kind, 0, str(value), True))
        else:
            numbers = tuple(value) if isinstance(value, (tuple, list)) else (value,)
            extratags.append((code, kind, len(numbers), numbers, True))
    return extratags


def scale_georef(georef: GeoRef | None, scale_y: float, scale_x: float) -> GeoRef | None:
    """The georeferencing of the same image with pixels ``scale_y`` × ``scale_x`` times as tall
    and wide (2 for a level of half the size): pixel size scaled, tiepoints' raster
    coordinates divided, the transform's raster columns scaled."""
    if georef is None or (scale_y == 1 and scale_x == 1):
        return georef
    tags = dict(georef.tags)
    scale = tags.get(MODEL_PIXEL_SCALE)
    if isinstance(scale, tuple) and len(scale) >= 2:
        tags[MODEL_PIXEL_SCALE] = (scale[0] * scale_x, scale[1] * scale_y, *scale[2:])
    points = tags.get(MODEL_TIEPOINT)
    if isinstance(points, tuple) and len(points) % 6 == 0:
        moved = list(points)
        for start in range(0, len(moved), 6):
            moved[start] /= scale_x
            moved[start + 1] /= scale_y
        tags[MODEL_TIEPOINT] = tuple(moved)
    matrix = tags.get(MODEL_TRANSFORMATION)
    if isinstance(matrix, tuple) and len(matrix) == 16:
        scaled = list(matrix)
        for row in range(4):
            scaled[4 * row] *= scale_x
            scaled[4 * row + 1] *= scale_y
        tags[MODEL_TRANSFORMATION] = tuple(scaled)
    return GeoRef(tags)


def _numbers(value: Any) -> list[int | float]:
    values = value.tolist() if hasattr(value, "tolist") else value
    if not isinstance(values, (list, tuple)):
        values = [values]
    return [v if isinstance(v, (int, float)) else float(v) for v in values]
