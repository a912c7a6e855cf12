"""Pixel spacing from TIFF resolution tags (the only image files drunet reads that carry it).

``XResolution`` / ``YResolution`` are pixels per ``ResolutionUnit``: inch and centimetre are
converted to micrometres; without a unit (``NONE``) the ImageJ description's ``unit`` is used
when it has one. A file with no resolution, or tifffile's default of 1 pixel per no unit,
carries no spacing. PNG, JPEG and BMP files carry none that drunet reads.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import BaseModel, ConfigDict

log = logging.getLogger(__name__)

_MICRONS_PER_UNIT = {2: 25400.0, 3: 10000.0}  # ResolutionUnit INCH, CENTIMETER
_TIFF_SUFFIXES = (".tif", ".tiff")


class Spacing(BaseModel):
    """The size of one pixel: ``y`` (rows) and ``x`` (columns) in ``unit``."""

    model_config = ConfigDict(frozen=True)

    y: float
    x: float
    unit: str


def read_spacing(path: Path) -> Spacing | None:
    """The spacing ``path`` declares, or None (not a TIFF, no tags, unreadable)."""
    if path.suffix.lower() not in _TIFF_SUFFIXES:
        return None
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            x_tag, y_tag = tags.get("XResolution"), tags.get("YResolution")
            unit_tag = tags.get("ResolutionUnit")
            imagej = tif.imagej_metadata or {}
            if x_tag is None or y_tag is None:
                return None
            x_res, y_res = _ratio(x_tag.value), _ratio(y_tag.value)
            unit_code = int(unit_tag.value) if unit_tag is not None else 2  # TIFF default: inch
    except Exception as err:  # unreadable metadata: the pixels are read (and judged) elsewhere
        log.debug("no spacing read from %s: %s", path, err)
        return None
    if x_res <= 0 or y_res <= 0:
        return None
    if unit_code in _MICRONS_PER_UNIT:
        scale = _MICRONS_PER_UNIT[unit_code]
        return Spacing(y=scale / y_res, x=scale / x_res, unit="µm")
    unit = str(imagej.get("unit", "")).strip()
    if not unit or (x_res == 1 and y_res == 1 and unit in ("pixel", "")):
        return None
    unit = "µm" if unit in ("um", "micron", "\\u00B5m") else unit
    return Spacing(y=1.0 / y_res, x=1.0 / x_res, unit=unit)


def _ratio(value: object) -> float:
    if isinstance(value, tuple) and len(value) == 2:
        numerator, denominator = value
        return float(numerator) / float(denominator) if denominator else 0.0
    return float(value)  # type: ignore[arg-type]
