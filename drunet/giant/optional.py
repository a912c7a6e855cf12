"""The optional packages of giant images (``pip install "drunet[wsi]"``), imported on demand."""

from __future__ import annotations

import importlib
from types import ModuleType

from drunet.errors import DrunetError

WSI_HINT = 'pip install "drunet[wsi]"'


def require(module: str, what: str = "reading giant images") -> ModuleType:
    """Import ``module`` (zarr, openslide, …); missing, a one-line ``DrunetError`` naming the
    extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DrunetError(
            f"{what} needs the optional package {module.split('.')[0]!r}, which is not "
            f"installed; install it with: {WSI_HINT}"
        ) from None


def missing_codec(path: object, compression: str) -> DrunetError:
    """The one-line error for a TIFF whose compression needs imagecodecs, not installed."""
    return DrunetError(
        f"reading {path} needs a decoder for its {compression} compression from the optional "
        f"package 'imagecodecs', which is not installed; install it with: {WSI_HINT}"
    )
