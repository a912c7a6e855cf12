"""Multi-page TIFF stacks in ``drunet predict``: one ``<stem>_mask.tif`` per stack, one mask
page per image page (predicted slice by slice, with 2.5D context when the run was trained so).

A stack is a TIFF of more than one frame (pages, or ImageJ/OME Z/time points). For a 2.5D
context model (``data.context_slices`` > 0) every TIFF of more than one *page* is a stack, also
when its metadata calls the pages channels (an ImageJ hyperstack of ``channels=N``, which
``tifffile.imwrite(path, volume, imagej=True)`` writes for a ``(N, H, W)`` volume): read as one
image it would have ``N`` channels, and when ``N`` equals the model's input channels it would be
predicted as one image, one mask, without any error.
"""

from __future__ import annotations

from pathlib import Path

from drunet.datasets import write_mask
from drunet.datasets.stacks import frame_count, page_count
from drunet.errors import DrunetError
from drunet.inference.files import Tally
from drunet.inference.predictor import Predictor
from drunet.outputs import Manifest

STACK_MASK_SUFFIX = "_mask.tif"


def split_stacks(inputs: list[Path], context: bool = False) -> tuple[list[Path], list[Path]]:
    """``(stacks, images)``: TIFF files of more than one frame (with ``context``, of more than
    one page), and everything else."""
    stacks = [
        path for path in inputs if frame_count(path) > 1 or (context and page_count(path) > 1)
    ]
    chosen = set(stacks)
    return stacks, [path for path in inputs if path not in chosen]


def stack_mask_path(stack: Path, out_dir: Path) -> Path:
    return out_dir / f"{stack.stem}{STACK_MASK_SUFFIX}"


def predict_stacks(
    predictor: Predictor,
    stacks: list[Path],
    manifest: Manifest,
    skip_existing: bool,
    tally: Tally,
) -> None:
    """Predict each stack into ``manifest.folder``; a stack that fails is recorded in ``tally``
    and the others go on. A mask file drunet did not write is never replaced."""
    for stack in stacks:
        out = stack_mask_path(stack, manifest.folder)
        if skip_existing and out.is_file() and manifest.owns(out):
            tally.skipped(stack)
            continue
        try:
            if out.exists() and manifest.foreign(out):
                raise DrunetError(
                    f"{out} exists and drunet did not write it; the mask of {stack} would "
                    "replace it — choose another --out"
                )
            masks = predictor.predict_stack(stack)  # (Z, H, W)
            manifest.record([out])
            write_mask(out, masks)
        except (DrunetError, ValueError, OSError) as err:
            tally.failed(stack, err)
            continue
        tally.wrote(stack, out)
