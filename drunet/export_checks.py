"""What ``drunet export`` checks before it exports: where it may write, which opset it can make.

An export never writes over the weights it reads, a file of their run folder, or a file drunet
did not write (the rule of :mod:`drunet.outputs`; ``--overwrite`` allows that last one); an
export made before drunet kept a manifest is recognised by its ``<file>.json`` sidecar of the
same format and may be replaced.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from drunet import checkpoint
from drunet.atomic import file_in_the_way, same_file
from drunet.errors import DrunetError
from drunet.outputs import check_outputs, claim_outputs

FORMATS: tuple[str, ...] = ("onnx", "pt2")


def opset_range() -> tuple[int, int]:
    """The ONNX opsets ``torch.onnx.export(dynamo=True)`` writes: it builds at opset 18 and up
    (lower ones it silently keeps at 18) to the highest its constants name."""
    try:
        from torch.onnx import _constants
    except ImportError:  # a private module: fall back to what torch 2.6 to 2.14 say
        return 18, 23
    return int(getattr(_constants, "TORCHLIB_OPSET", 18)), int(
        getattr(_constants, "ONNX_MAX_OPSET", 23)
    )


def check_opset(opset: int) -> None:
    """Refuse an ONNX opset the exporter cannot write (before the slow export starts)."""
    low, high = opset_range()
    if not low <= opset <= high:
        raise DrunetError(
            f"--opset {opset} is not supported: torch {_torch_version()} exports ONNX opsets "
            f"{low} to {high}; choose one of them (default 18)"
        )


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


RUN_FILES = (checkpoint.BEST, checkpoint.LAST, checkpoint.CONFIG, checkpoint.STATE,
             checkpoint.METRICS, checkpoint.PROGRESS, checkpoint.PRETRAINED,
             checkpoint.PRETRAINED_CONFIG)  # fmt: skip


def check_target(
    path: Path, format: str, weights: Path | None = None, overwrite: bool = False
) -> None:
    """Refuse an output (or its ``.json`` sidecar) that is the weights read, a file of their run
    folder, a folder, or (unless ``overwrite``) an existing file drunet did not write."""
    sidecar = Path(f"{path}.json")
    if path.is_dir():
        raise DrunetError(f"--out {path} is a folder; give a file name, e.g. {path}/model.{format}")
    blocker = file_in_the_way(path.parent)
    if blocker is not None:
        raise DrunetError(f"--out {path} is inside {blocker}, a file; choose another --out")
    protected = [weights, *(weights.parent / name for name in RUN_FILES)] if weights else []
    for target in (path, sidecar):
        for kept in protected:
            if same_file(target, kept):
                what = "the weights" if kept is weights else "a file of the run"
                raise DrunetError(
                    f"--out {path} would overwrite {kept}, {what} being exported; "
                    "choose another --out"
                )
    earlier = _earlier_export(sidecar)
    if (
        not overwrite
        and earlier is not None
        and os.path.lexists(path)
        and earlier.get("format") != format
    ):
        raise DrunetError(
            f"--out {path} exists and is not a {format} file drunet exported (its "
            f"{sidecar.name} says {earlier.get('format')}); choose another --out, or pass "
            "--overwrite to replace it"
        )
    # An export made before drunet kept a manifest is recognised by its sidecar.
    check_outputs(path.parent, [path, sidecar], overwrite=overwrite or earlier is not None)


def claim_target(path: Path, overwrite: bool = False) -> None:
    """Record ``path`` and its sidecar as drunet's just before they are written, after
    :func:`check_target` (refusing again a file drunet did not write unless ``overwrite``)."""
    sidecar = Path(f"{path}.json")
    earlier = _earlier_export(sidecar) is not None
    claim_outputs(path.parent, [path, sidecar], overwrite=overwrite or earlier)


def _earlier_export(sidecar: Path) -> dict[str, Any] | None:
    """The sidecar of an earlier drunet export at ``sidecar``, or ``None``."""
    try:
        if not sidecar.is_file() or sidecar.stat().st_size > 2**20:
            return None
        info = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ours = isinstance(info, dict) and "drunet" in info and info.get("format") in FORMATS
    return info if ours else None
