"""Predict files and folders: a class-index mask PNG and an overlay PNG per input."""

from __future__ import annotations

import glob
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from drunet.datasets import IMAGE_SUFFIXES, read_image, write_image, write_mask
from drunet.errors import DataError, DrunetError
from drunet.inference.overlay import overlay
from drunet.inference.predictor import Predictor

log = logging.getLogger(__name__)

MASK_SUFFIX = "_mask.png"
OVERLAY_SUFFIX = "_overlay.png"


@dataclass
class PredictionReport:
    """What a folder prediction wrote and which inputs it could not read."""

    written: list[Path] = field(default_factory=list)
    failed: dict[Path, str] = field(default_factory=dict)


def collect_inputs(target: str | Path) -> list[Path]:
    """An image file, or every image in a folder (sorted), or a glob pattern."""
    path = Path(target)
    if path.is_dir():
        # Like find_pairs: skip hidden files (e.g. macOS "._scan.png") and folders.
        files = sorted(
            p
            for p in path.iterdir()
            if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
        )
        if not files:
            raise DrunetError(f"no images in {path} (looked for {', '.join(IMAGE_SUFFIXES)})")
        return files
    if path.is_file():
        return [path]
    # glob.glob, not Path().glob: the latter rejects absolute patterns such as /data/*.png.
    pattern = str(target)
    is_glob = any(c in pattern for c in "*?[")
    files = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file()) if is_glob else []
    if files:
        return files
    raise DrunetError(f"{target}: no such image file, folder or glob match")


def output_paths(image: Path, out_dir: Path) -> tuple[Path, Path]:
    return out_dir / f"{image.stem}{MASK_SUFFIX}", out_dir / f"{image.stem}{OVERLAY_SUFFIX}"


def check_no_clobber(inputs: list[Path], out_dir: Path) -> None:
    """Refuse to run if any output would replace an input file or another input's output."""
    resolved_inputs = {p.resolve() for p in inputs}
    seen: dict[Path, Path] = {}
    for image in inputs:
        for out in output_paths(image, out_dir):
            target = out.resolve()
            if target in resolved_inputs:
                raise DrunetError(
                    f"output {out} would overwrite the input {out}; choose another --out folder"
                )
            if target in seen:
                raise DrunetError(
                    f"inputs {seen[target]} and {image} have the same name stem, so their "
                    f"outputs would collide in {out_dir}; rename one or predict them separately"
                )
            seen[target] = image


def predict_files(
    predictor: Predictor,
    inputs: Iterable[Path],
    out_dir: str | Path,
    on_done: Callable[[Path], None] | None = None,
) -> PredictionReport:
    """Predict each input; a bad file is recorded in the report and the rest go on."""
    inputs, out_dir = list(inputs), Path(out_dir)
    check_no_clobber(inputs, out_dir)
    report = PredictionReport()
    for image_path in inputs:
        try:
            image = read_image(image_path)
            mask = predictor.predict(image)
        except (DataError, DrunetError) as err:
            report.failed[image_path] = str(err)
            log.warning("skipped %s: %s", image_path, err)
        else:
            mask_path, overlay_path = output_paths(image_path, out_dir)
            write_mask(mask_path, mask)
            write_image(overlay_path, overlay(image, mask, predictor.num_classes))
            report.written.append(mask_path)
        if on_done is not None:
            on_done(image_path)
    return report
