"""The BioImage Model Zoo (bioimage.io) model package of a run: ``drunet export RUN --format
bioimageio`` (:func:`export_bioimageio`). Needs the ``bioimageio`` extra
(``pip install "drunet[bioimageio]"``), imported only when a package is made."""

from drunet.bioimageio.package import PackageResult, export_bioimageio

__all__ = ["PackageResult", "export_bioimageio"]
