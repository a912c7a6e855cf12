"""New run folders: ``runs/<name>/``, never reused.

An explicit ``--name`` that exists is an error; an automatic name gets a numeric suffix when two
runs start in the same second. What a run folder holds is named in :mod:`drunet.checkpoint`.
"""

from __future__ import annotations

import time
from pathlib import Path

from drunet.errors import DrunetError


def create_run_dir(runs_dir: str | Path, name: str | None, model_name: str) -> Path:
    """Make a new, empty run folder and return it."""
    runs_dir = Path(runs_dir)
    if name is not None:
        if not name or Path(name).name != name or name in (".", ".."):
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
