"""bioimageio.spec, the optional package that checks a description: imported on demand.

A package drunet writes names no URL (no cite links, no git repository, no GitHub user), so
validating it with the spec's file checks on (``perform_io_checks``: every file's SHA-256, the
test tensors against the axes) reads local files only and fetches nothing.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from drunet.errors import DrunetError

INSTALL = 'pip install "drunet[bioimageio]"'


def require(module: str = "bioimageio.spec") -> ModuleType:
    """Import ``module`` or raise a one-line :class:`DrunetError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise DrunetError(
            f"the BioImage Model Zoo export needs {module.split('.')[0]}.{module.split('.')[1]} "
            f"({err.msg}); install it with: {INSTALL}"
        ) from None


def validate(rdf: dict[str, Any], folder: Path) -> Any:
    """The validated model description of ``rdf`` (its files in ``folder``), or a
    :class:`DrunetError` with the spec's first errors."""
    spec = require("bioimageio.spec")
    context = spec.ValidationContext(root=folder, file_name="rdf.yaml", perform_io_checks=True)
    descr = spec.build_description(rdf, context=context)
    summary = descr.validation_summary
    if summary.status == "failed" or isinstance(descr, spec.InvalidDescr):
        errors = [e for detail in summary.details for e in detail.errors][:3]
        found = "; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors)
        raise DrunetError(
            f"bioimageio.spec rejects the package drafted in {folder}: {found or summary.status}"
            " — report this with the run's config.yaml"
        )
    return descr
