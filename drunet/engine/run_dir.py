"""Run folders: ``runs/<name>/`` with config.yaml, metrics.csv, best/last weights.

A run folder is never overwritten: an explicit ``--name`` that exists is an error, an automatic
name gets a numeric suffix when two runs start in the same second.
"""

from __future__ import annotations

import time
from pathlib import Path

from drunet.errors import DrunetError

BEST = "best.safetensors"
LAST = "last.safetensors"
CONFIG = "config.yaml"
METRICS = "metrics.csv"


def create_run_dir(runs_dir: str | Path, name: str | None, model_name: str) -> Path:
    """Make a new, empty run folder and return it."""
    runs_dir = Path(runs_dir)
    if name is not None:
        if not name or Path(name).name != name:
            raise DrunetError(f"run name {name!r} must be a plain folder name (no '/')")
        path = runs_dir / name
        if path.exists():
            raise DrunetError(
                f"run folder {path} already exists; choose another --name (runs are never "
                "overwritten)"
            )
        path.mkdir(parents=True)
        return path
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{model_name}"
    for suffix in ["", *(f"-{i}" for i in range(2, 1000))]:
        path = runs_dir / f"{stem}{suffix}"
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise DrunetError(f"could not create a new run folder in {runs_dir}")


def latest_run(runs_dir: str | Path) -> Path:
    """The most recently modified run folder in ``runs_dir`` that holds best weights."""
    runs_dir = Path(runs_dir)
    candidates = [p.parent for p in runs_dir.glob(f"*/{BEST}")] if runs_dir.is_dir() else []
    if not candidates:
        raise DrunetError(
            f"no trained run found in {runs_dir}/ (looked for */{BEST}); train one with "
            "`drunet train --data DIR` or pass --model RUN_DIR_OR_WEIGHTS"
        )
    return max(candidates, key=lambda p: (p / BEST).stat().st_mtime)


def resolve_weights(model: str | Path | None, runs_dir: str | Path = "runs") -> Path:
    """Weights file from a run folder, a ``.safetensors`` path, or (None) the latest run."""
    if model is None:
        return latest_run(runs_dir) / BEST
    path = Path(model)
    if path.is_dir():
        for name in (BEST, LAST):
            if (path / name).is_file():
                return path / name
        raise DrunetError(f"run folder {path} holds no {BEST} or {LAST}")
    if path.is_file():
        return path
    raise DrunetError(f"--model {path}: no such run folder or weights file")
