"""A giant image predicted to files: stream → journal → the output assembled when whole.

:func:`predict_giant` runs :func:`~drunet.giant.stream.stream_bands` over a
:class:`~drunet.giant.regions.RegionSource`, keeps every finished band in the output's
:class:`~drunet.giant.journal.Journal`, and once every row is done has ``writer`` assemble the
mask (and the probabilities, a second file) from the journal under a temporary name, renamed
into place. An interrupted run continues (``resume``) from its last finished band.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drunet.giant.journal import Journal, input_identity
from drunet.giant.regions import GeoRef, RegionSource
from drunet.giant.stream import TileTally, stream_bands
from drunet.giant.tissue import TissueMap
from drunet.inference.predictor import Predictor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BandLayout:
    """What a writer needs besides the bands: the full size and where the pixels are."""

    height: int
    width: int
    dtype: np.dtype
    channels: int = 1
    mpp: float | None = None
    georef: GeoRef | None = None


# Writes the full-width bands, top to bottom, as one file — whole or not at all (atomically).
Writer = Callable[[Path, Iterable[np.ndarray], BandLayout], None]


@dataclass
class GiantResult:
    """What :func:`predict_giant` did: the files, the tiles, the rows computed this time."""

    mask: Path
    probabilities: Path | None = None
    tally: TileTally = field(default_factory=TileTally)
    rows_before: int = 0  # rows a previous, interrupted run had finished
    rows_computed: int = 0  # rows finished by this run
    bands_computed: int = 0
    seconds: float = 0.0
    tissue_fraction: float | None = None  # share of the overview that is tissue (skipping on)


def run_settings(predictor: Predictor, source: RegionSource, **extra: Any) -> dict[str, Any]:
    """Everything that decides the output's pixels, as the journal records it."""
    opts = predictor.options
    weights = [
        {"path": str(p), "bytes": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns}
        for p in predictor.weights
        if p.exists()
    ]
    return {
        "input": input_identity(source),
        "weights": weights,
        "num_classes": predictor.num_classes,
        "tile_size": predictor.tile_size,
        "overlap": opts.overlap,
        "batch_size": opts.batch_size,
        "max_pixels": opts.max_pixels,
        "blend": opts.blend,
        "tta": [opts.tta_flips, opts.tta_rot90],
        "threshold": opts.postprocess.threshold,
        "precision": predictor.precision.name,
        "device": predictor.device.type,
        **extra,
    }


def predict_giant(
    predictor: Predictor,
    source: RegionSource,
    mask_path: Path,
    writer: Writer,
    *,
    probabilities_path: Path | None = None,
    tissue: TissueMap | None = None,
    resume: bool = False,
    overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> GiantResult:
    """Predict ``source`` into ``mask_path`` (and ``probabilities_path``) through ``writer``.

    ``tissue``: skip the tiles without tissue (their rows are background). ``resume``: continue
    the journal of an interrupted run with the same settings (refused otherwise, naming what
    differs). Claiming the output names (:func:`drunet.outputs.claim_outputs`) is the caller's.
    """
    started = time.perf_counter()
    settings = run_settings(
        predictor,
        source,
        probabilities=probabilities_path is not None,
        tissue=None if tissue is None else tissue.threshold,
    )
    journal = Journal(mask_path, settings)
    result = GiantResult(mask_path, probabilities_path)
    result.rows_before = journal.open(resume, overwrite)
    if tissue is not None:
        result.tissue_fraction = tissue.fraction
    bands = stream_bands(
        predictor,
        source,
        probabilities=probabilities_path is not None,
        start_row=result.rows_before,
        keep=None if tissue is None else tissue.keep,
        tally=result.tally,
        on_progress=on_progress,
    )
    for band in bands:
        journal.add(band)
        result.rows_computed += band.mask.shape[0]
        result.bands_computed += 1
    layout = BandLayout(
        source.height, source.width, _mask_dtype(journal), 1, source.mpp, source.georef
    )
    _assemble(writer, mask_path, journal.bands("mask"), layout)
    if probabilities_path is not None:
        classes = 2 if predictor.num_classes == 2 else predictor.num_classes
        probs = BandLayout(
            source.height, source.width, np.dtype(np.float32), classes, source.mpp, source.georef
        )
        _assemble(writer, probabilities_path, journal.bands("probabilities"), probs)
    journal.remove()
    result.seconds = time.perf_counter() - started
    return result


def _mask_dtype(journal: Journal) -> np.dtype:
    first = next(journal.bands("mask"))
    return first.dtype


def _assemble(writer: Writer, path: Path, bands: Iterable[np.ndarray], layout: BandLayout) -> None:
    """``writer`` makes ``path`` whole or not at all (the drunet writers write under a
    temporary name, :func:`drunet.atomic.atomic_output`)."""
    writer(path, bands, layout)
