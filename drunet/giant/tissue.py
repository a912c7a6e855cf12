"""Background skipping for slides: which tiles hold tissue, from a small overview of the image.

A slide is mostly empty background around the tissue: bright glass around stained tissue in
brightfield (H&E, IHC), a dark field around bright tissue in fluorescence. The overview is a
strided pass (``overview``: every ``step``-th pixel of every ``step``-th row, at most
``OVERVIEW_SIDE`` a side, read band by band, so memory stays bounded) over a low pyramid level
when the file has one, else over the image itself; its gray
values (the channels' mean) are split by Otsu's threshold. The darker side is tissue
(brightfield) unless at least ``DARK_BORDER`` of the overview's border pixels are on the darker
side: then the background is dark and the brighter side is tissue (fluorescence). The tissue map
is widened by ``margin`` overview pixels, so a tile that touches tissue at its border is still
predicted. A tile is skipped when its footprint on the map holds no tissue;
:mod:`drunet.giant.stream` writes such regions as background.

An overview of one gray value (a blank image, or one fully covered) gives no threshold: every
tile is kept, so skipping never drops an image it cannot read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from drunet.datasets.io import to_float
from drunet.giant.regions import RegionSource

OVERVIEW_SIDE = 2048  # longest side of the strided overview
_BAND_ROWS = 512  # rows read at once for the strided overview
DARK_BORDER = 0.9  # share of dark border pixels that makes the background dark (fluorescence)


@dataclass(frozen=True)
class TissueMap:
    """Tissue pixels of an overview ``(h, w)`` bool, each covering ``scale`` full-size pixels
    along ``(rows, columns)``."""

    tissue: np.ndarray
    scale: tuple[float, float]
    threshold: float | None  # Otsu's gray threshold (to_float units); None: one value, all kept
    bright: bool = False  # tissue is the brighter side (a dark background: fluorescence)

    def keep(self, top: int, left: int, height: int, width: int) -> bool:
        """Whether the full-size region holds tissue (the predicate ``stream_scores`` takes)."""
        sy, sx = self.scale
        r0, c0 = int(top / sy), int(left / sx)
        r1, c1 = math.ceil((top + height) / sy), math.ceil((left + width) / sx)
        return bool(self.tissue[r0 : max(r1, r0 + 1), c0 : max(c1, c0 + 1)].any())

    @property
    def fraction(self) -> float:
        """Share of the overview that is tissue."""
        return float(self.tissue.mean()) if self.tissue.size else 0.0


def overview(source: RegionSource, side: int = OVERVIEW_SIDE) -> tuple[np.ndarray, int]:
    """Every ``step``-th pixel of ``source`` (``step`` = its longest side / ``side``, rounded
    up) as ``(h, w, C)``, read ``_BAND_ROWS`` rows or more at a time, and the step."""
    step = max(1, math.ceil(max(source.height, source.width) / side))
    band = max(step, _BAND_ROWS // step * step)  # a multiple of the step
    parts = []
    for top in range(0, source.height, band):
        rows = source.read(top, 0, min(band, source.height - top), source.width)
        parts.append(rows[::step, ::step])
    return np.concatenate(parts), step


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float | None:
    """Otsu's threshold of ``values`` (between-class variance at its largest), or None
    when they hold a single value."""
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return None
    counts, edges = np.histogram(values, bins=bins, range=(low, high))
    centres = (edges[:-1] + edges[1:]) / 2
    weight0 = np.cumsum(counts)[:-1].astype(np.float64)  # pixels at or below each cut
    weight1 = counts.sum() - weight0
    sum0 = np.cumsum(counts * centres)[:-1]
    mean0 = sum0 / np.maximum(weight0, 1)
    mean1 = (float((counts * centres).sum()) - sum0) / np.maximum(weight1, 1)
    between = weight0 * weight1 * (mean0 - mean1) ** 2
    return float(edges[1:-1][int(np.argmax(between))])


def tissue_map(source: RegionSource, low: RegionSource | None = None, margin: int = 2) -> TissueMap:
    """The tissue of ``source``, measured on ``low`` (a lower pyramid level of the same image)
    when given, else on a strided overview (see the module)."""
    # A pyramid level is read like the image: strided to at most OVERVIEW_SIDE, band by band
    # (a 4,096² level read whole and made float was 0.4 GB on top of the stream).
    base = low if low is not None else source
    small, step = overview(base)
    # overview pixel i stands for the base's rows i·step …, the image's i·step·(H / h) …
    scale = (step * source.height / base.height, step * source.width / base.width)
    gray = to_float(small).mean(axis=2)  # (h, w), at most OVERVIEW_SIDE a side
    threshold = otsu_threshold(gray)
    bright = False
    if threshold is None:
        tissue = np.ones(gray.shape, bool)
    else:
        dark = gray < threshold
        border = np.concatenate([dark[0], dark[-1], dark[1:-1, 0], dark[1:-1, -1]])
        bright = bool(border.mean() >= DARK_BORDER)
        tissue = ~dark if bright else dark
        if margin > 0:
            tissue = ndimage.binary_dilation(tissue, iterations=margin)
    return TissueMap(tissue, scale, threshold, bright)
