"""``drunet predict`` on giant images: which inputs are streamed, their output files, the loop.

**Which inputs** (:func:`is_giant`): whole-slide files (``.svs``, ``.ndpi``, ``.scn``, ``.bif``,
``.mrxs`` and OpenSlide's other formats), OME-Zarr folders, and TIFFs that are pyramidal or hold
more pixels than drunet reads whole (``DRUNET_MAX_IMAGE_PIXELS``); ``--stream`` sends every
input this way. The others go through the in-memory loop (:mod:`drunet.inference.loop`).

**Outputs**: ``<stem>_mask.tif`` — a tiled, zlib-compressed pyramidal BigTIFF (OME-TIFF) with
the input's resolution and GeoTIFF georeferencing — and with ``--probabilities``
``<stem>_probs.tif`` (float32, one channel per class, its pyramid averaged); an OME-Zarr input
gives ``<stem>_mask.zarr`` / ``<stem>_probs.zarr``. Their names are claimed in the folder's
manifest first (:func:`drunet.outputs.claim_outputs`: a file drunet did not write is refused
unless ``--overwrite``). While running, the finished rows live in the output's journal
(:mod:`drunet.giant.journal`); ``--continue`` finishes an interrupted run, and skips an input
whose outputs are whole.

**Background skipping** (``tissue``): on by default for whole-slide files, off for others; the
overview is the coarsest pyramid level with a side of at least ``OVERVIEW_MIN`` pixels when the
file has one, else a strided pass (:mod:`drunet.giant.tissue`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from drunet.datasets.limits import max_image_pixels
from drunet.errors import DataError, DrunetError
from drunet.giant.journal import partial_folder
from drunet.giant.levels import MPP_TOLERANCE
from drunet.giant.options import GiantOptions
from drunet.giant.predict import BandLayout, GiantResult, Writer, predict_giant
from drunet.giant.regions import RegionSource
from drunet.giant.resample import resample
from drunet.giant.slide_source import SLIDE_SUFFIXES
from drunet.giant.sources import open_region_source
from drunet.giant.tiff_sink import write_tiled_tiff
from drunet.giant.tissue import OVERVIEW_SIDE, TissueMap, tissue_map
from drunet.giant.zarr_sink import write_ome_zarr
from drunet.giant.zarr_source import is_zarr
from drunet.inference.files import PredictionReport, collect_inputs
from drunet.inference.predictor import Predictor
from drunet.outputs import claim_outputs

log = logging.getLogger(__name__)

TIFF_SLIDE_SUFFIXES = (".svs", ".ndpi", ".scn", ".bif", ".qptiff")
WHOLE_SLIDE_SUFFIXES = TIFF_SLIDE_SUFFIXES + SLIDE_SUFFIXES
OVERVIEW_MIN = 512  # the tissue overview's longest side, at least


def is_slide(path: Path) -> bool:
    """A whole-slide file (background skipping is on by default for these)."""
    return path.suffix.lower() in WHOLE_SLIDE_SUFFIXES


def is_giant(path: Path) -> bool:
    """Whether ``path`` is streamed rather than read whole (see the module)."""
    if path.is_dir():
        return is_zarr(path)
    if is_slide(path):
        return True
    if path.suffix.lower() not in (".tif", ".tiff"):
        return False
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            height, width = (series.shape[series.axes.index(a)] for a in "YX")
            return len(series.levels) > 1 or height * width > max_image_pixels()
    except Exception:  # unreadable here: the in-memory loop reports it with its reason
        return False


def split_inputs(target: str | Path, stream: bool = False) -> tuple[list[Path], list[Path]]:
    """``(inputs read whole, giant inputs)`` of an image file, folder or glob: a folder's
    whole-slide files and OME-Zarr folders join its images (see the module for the rule)."""
    path = Path(target)
    if (path.is_dir() and is_zarr(path)) or (path.is_file() and is_slide(path)):
        return [], [path]
    extra = []
    if path.is_dir():
        extra = [
            p
            for p in path.iterdir()
            if not p.name.startswith(".") and (is_zarr(p) if p.is_dir() else is_slide(p))
        ]
    try:
        files = collect_inputs(target)
    except DrunetError:
        if not extra:
            raise
        files = []
    giant = [f for f in files if stream or is_giant(f)]
    whole = [f for f in files if f not in set(giant)]
    return whole, sorted(giant + extra)


def result_note(image: Path, result: GiantResult) -> str:
    """One line for a person on a streamed input."""
    tally = result.tally
    parts = [f"{image.name}: {tally.computed} of {tally.total} tile(s) predicted"]
    if result.tissue_fraction is not None:
        parts.append(f"{tally.skipped} skipped as background ({result.tissue_fraction:.0%} tissue)")
    if result.rows_before:
        parts.append(f"continued from row {result.rows_before}")
    parts.append(f"{result.seconds:.1f} s → {result.mask.name}")
    return ", ".join(parts)


def output_paths(image: Path, out_dir: Path, probabilities: bool) -> tuple[Path, Path | None]:
    """``(mask, probabilities or None)`` of a giant input (see the module)."""
    name = image.name
    for suffix in (".ome.zarr", ".ome.tiff", ".ome.tif", image.suffix):
        if suffix and name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    extension = ".zarr" if image.is_dir() else ".tif"
    probs = out_dir / f"{name}_probs{extension}" if probabilities else None
    return out_dir / f"{name}_mask{extension}", probs


def writer_for(path: Path) -> Writer:
    """The writer of an output: OME-Zarr for ``.zarr``, else a tiled pyramidal BigTIFF.
    Masks' pyramids take the nearest value, probabilities' the mean."""

    def write(target: Path, bands: Iterable[np.ndarray], layout: BandLayout) -> None:
        common: dict[str, Any] = {
            "height": layout.height,
            "width": layout.width,
            "dtype": layout.dtype,
            "channels": layout.channels,
            "reduce": "mean" if layout.dtype == np.float32 else "nearest",
            "mpp": layout.mpp,
        }
        if path.suffix == ".zarr":
            write_ome_zarr(target, bands, **common)
        else:
            write_tiled_tiff(target, bands, georef=layout.georef, **common)

    return write


def overview_level(source: RegionSource) -> int | None:
    """The coarsest pyramid level with a side of at least ``OVERVIEW_MIN`` and none above
    twice ``OVERVIEW_SIDE``, or None (no such level: a strided overview is read instead)."""
    levels = getattr(source, "levels", None) or []
    fits = [
        i
        for i, level in enumerate(levels)
        if i > source.level and OVERVIEW_MIN <= max(level.height, level.width) <= 2 * OVERVIEW_SIDE
    ]
    return max(fits) if fits else None


def find_tissue(path: Path, source: RegionSource) -> TissueMap:
    """The tissue of ``source`` (opened from ``path``), on a low level when there is one."""
    level = overview_level(source)
    if level is None:
        return tissue_map(source)
    low = open_region_source(path, level=level)
    try:
        return tissue_map(source, low)
    finally:
        low.close()


def at_run_resolution(
    image: Path, source: RegionSource, tissue: TissueMap | None, run_mpp: float | None
) -> tuple[RegionSource, TissueMap | None]:
    """``source`` (level 0) at the resolution the run was trained at (``data.mpp``): the
    coarsest level at least that fine, resampled to it (:func:`drunet.giant.resample.resample`;
    the tissue map follows). Unchanged when the run or the image does not know its resolution."""
    if run_mpp is None or source.mpp is None or abs(source.mpp / run_mpp - 1) <= MPP_TOLERANCE:
        if run_mpp is not None and source.mpp is None:
            log.warning(
                "%s records no resolution: predicted as read, not at %g µm/px", image, run_mpp
            )
        return source, tissue
    height, width = source.height, source.width
    level = open_region_source(image, mpp=run_mpp)
    if level.level == source.level:
        level.close()
        level = source
    else:
        source.close()
    resampled = resample(level, mpp=run_mpp)
    if tissue is not None:  # the map's pixels stand for more, or fewer, pixels now
        sy, sx = tissue.scale
        ry, rx = resampled.height / height, resampled.width / width
        tissue = TissueMap(tissue.tissue, (sy * ry, sx * rx), tissue.threshold, tissue.bright)
    return resampled, tissue


def predict_giant_file(
    predictor: Predictor,
    image: Path,
    out_dir: Path,
    options: GiantOptions,
    on_progress: Callable[[int, int], None] | None = None,
) -> GiantResult | None:
    """Predict one giant input into ``out_dir``; None when ``--continue`` finds it done."""
    mask, probs = output_paths(image, out_dir, options.probabilities)
    outputs = [p for p in (mask, probs) if p is not None]
    journal_open = partial_folder(mask).exists()
    if options.resume and not journal_open and all(p.exists() for p in outputs):
        return None
    claim_outputs(out_dir, [p.name for p in outputs], overwrite=options.overwrite)
    source = open_region_source(image, level=options.level, mpp=options.mpp)
    try:
        skipping = options.tissue if options.tissue is not None else is_slide(image)
        tissue = find_tissue(image, source) if skipping else None
        if options.level is None and options.mpp is None:
            source, tissue = at_run_resolution(image, source, tissue, predictor.config.data.mpp)
        return predict_giant(
            predictor,
            source,
            mask,
            writer_for(mask),
            probabilities_path=probs,
            tissue=tissue,
            resume=options.resume,
            overwrite=options.overwrite,
            on_progress=on_progress,
        )
    finally:
        source.close()


def predict_giant_files(
    predictor: Predictor,
    images: list[Path],
    out_dir: Path,
    options: GiantOptions,
    on_done: Callable[[Path], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_result: Callable[[Path, GiantResult], None] | None = None,
) -> PredictionReport:
    """Every giant input in turn; one that cannot be read fails alone (``report.failed``)."""
    report = PredictionReport()
    for image in images:
        try:
            result = predict_giant_file(predictor, image, out_dir, options, on_progress)
        except DataError as err:
            report.failed[image] = str(err)
        else:
            if result is None:
                report.skipped.append(image)
            else:
                report.written.append(image)
                if on_result is not None:
                    on_result(image, result)
        if on_done is not None:
            on_done(image)
    return report
