"""Pyramid levels and their resolution: which level ``--level N`` or ``--mpp X`` picks.

The rule for ``--mpp X`` (microns per pixel): the coarsest level whose resolution is not coarser
than ``X`` — its mpp at most ``X`` × (1 + ``MPP_TOLERANCE``), so a level a rounding error away
from ``X`` counts as ``X`` —, i.e. the level closest to ``X`` from the fine side; when every
level is coarser than ``X``, level 0. Prediction at exactly ``X`` then resamples that level
(``drunet.giant.resample``) by a factor of at most the pyramid's step.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drunet.errors import DataError

MPP_TOLERANCE = 0.01  # a level 1 % coarser than asked still counts as the asked resolution

# Microns per unit: OME-XML unit symbols and OME-Zarr (UDUNITS) unit names.
MICRONS = {
    "pm": 1e-6,
    "Å": 1e-4,
    "nm": 1e-3,
    "µm": 1.0,
    "um": 1.0,
    "mm": 1e3,
    "cm": 1e4,
    "m": 1e6,
    "picometer": 1e-6,
    "angstrom": 1e-4,
    "nanometer": 1e-3,
    "micrometer": 1.0,
    "micron": 1.0,
    "millimeter": 1e3,
    "centimeter": 1e4,
    "meter": 1e6,
}
_RESOLUTION_UNIT_MICRONS = {2: 25400.0, 3: 10000.0}  # TIFF ResolutionUnit: inch, centimetre


@dataclass(frozen=True)
class Level:
    """One resolution of a pyramid: its size and, when the file says, microns per pixel."""

    height: int
    width: int
    mpp: float | None

    def describe(self) -> str:
        size = f"{self.width} × {self.height}"
        return size if self.mpp is None else f"{size} at {self.mpp:.4g} µm/px"


def scaled_mpps(sizes: Sequence[tuple[int, int]], base_mpp: float | None) -> list[Level]:
    """Levels of ``(height, width)`` sizes, each level's mpp the base mpp × the width ratio."""
    width0 = sizes[0][1]
    return [Level(h, w, None if base_mpp is None else base_mpp * width0 / w) for h, w in sizes]


def choose_level(
    levels: Sequence[Level], path: Path, *, level: int | None = None, mpp: float | None = None
) -> int:
    """The level ``level`` or ``mpp`` asks for (see the module's rule); neither: level 0."""
    listing = "; ".join(f"{i}: {lv.describe()}" for i, lv in enumerate(levels))
    if level is not None and mpp is not None:
        raise DataError(
            f"cannot open {path} at both level {level} and {mpp} µm/px: give --level or "
            "--mpp, not both"
        )
    if level is not None:
        if not 0 <= level < len(levels):
            raise DataError(
                f"{path} has no level {level}: it has {len(levels)} level(s) ({listing}); "
                f"choose --level between 0 and {len(levels) - 1}"
            )
        return level
    if mpp is None:
        return 0
    if not mpp > 0:
        raise DataError(f"--mpp must be a positive number of microns per pixel, got {mpp}")
    if levels[0].mpp is None:
        raise DataError(
            f"{path} does not record its resolution (microns per pixel), so --mpp {mpp} cannot "
            f"choose a level; choose one with --level N ({listing})"
        )
    known = [(lv.mpp, i) for i, lv in enumerate(levels) if lv.mpp is not None]
    fine = [(m, i) for m, i in known if m <= mpp * (1 + MPP_TOLERANCE)]
    return max(fine)[1] if fine else 0


def resolution_mpp(page: Any) -> float | None:
    """Microns per pixel from a TIFF page's XResolution and ResolutionUnit (inch or cm), or
    None when the unit is none (tifffile's default) or the value is unusable."""
    try:
        unit = int(page.resolutionunit)
        pixels_per_unit = float(page.resolution[0])
    except (AttributeError, TypeError, ValueError, IndexError):
        return None
    if unit not in _RESOLUTION_UNIT_MICRONS or not pixels_per_unit > 0:
        return None
    return _RESOLUTION_UNIT_MICRONS[unit] / pixels_per_unit


def ome_mpp(ome_xml: str | None) -> float | None:
    """Microns per pixel from the first image's ``PhysicalSizeX`` in OME-XML (µm unless its
    ``PhysicalSizeXUnit`` says otherwise), or None."""
    if not ome_xml:
        return None
    try:
        root = ElementTree.fromstring(ome_xml)
    except ElementTree.ParseError:
        return None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "Pixels":
            size = element.get("PhysicalSizeX")
            factor = MICRONS.get(element.get("PhysicalSizeXUnit", "µm"))
            try:
                value = float(size) if size is not None else None
            except ValueError:
                return None
            if value is None or factor is None or not value > 0:
                return None
            return value * factor
    return None
