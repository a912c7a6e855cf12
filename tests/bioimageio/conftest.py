"""A tiny run folder, its BioImage Model Zoo package (made once), and a machine without network.

The run is built, not trained: a tiny DRUNet with trained-looking BatchNorm statistics saved
with its config into a run folder beside a synthetic data set (its validation image is the
package's sample), plus a hand-written ``metrics.csv``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock

from drunet.bioimageio import PackageResult
from drunet.checkpoint import BEST, METRICS, build_model, save_config_and_weights
from drunet.config import config_from_dict
from drunet.conversion import Parity
from drunet.datasets import make_synthetic
from tests.conftest import randomise_batch_norms, tiny_recipe

METRICS_CSV = "epoch,val_loss,dice,iou,precision,recall,dice_1\n1,0.9,0.5,0.4,0.6,0.7,0.5\n" + (
    "2,0.8,0.625,0.5,0.7,0.75,0.625\n"
)


def make_run(
    root: Path, name: str = "tiny", channels: int = 1, classes: int = 2, **changes: dict
) -> Path:
    """A run folder ``root/runs/name`` of a tiny DRUNet (grayscale binary by default; its data
    in ``root/data``); ``changes`` update the ``model``/``data``/… sections key by key."""
    data = make_synthetic(root / "data", 5, classes, sizes=((48, 64),), channels=channels, seed=3)
    names = ["background", "cell", "nucleus", "membrane"][:classes]
    norm = {"mean": [0.45] * channels, "std": [0.125] * channels, "clip_percentiles": None}
    sections: dict[str, dict] = {
        "model": {"in_channels": channels, "num_classes": classes},
        "data": {"root": str(data), "normalization": norm, "masks": {"class_names": names}},
    }
    for key, values in changes.items():
        sections[key] = {**sections.get(key, {}), **values}
    config = config_from_dict(tiny_recipe(name=name, **sections))
    model = randomise_batch_norms(build_model(config).eval())
    run = root / "runs" / name
    run.mkdir(parents=True)
    save_config_and_weights(run, BEST, model, config)
    (run / METRICS).write_text(METRICS_CSV)
    return run


@pytest.fixture(scope="session")
def bioimageio_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bioimageio's download cache moved to an empty temporary folder (it must stay empty)."""
    import bioimageio.core
    import bioimageio.spec

    cache = tmp_path_factory.mktemp("bioimageio-cache")
    bioimageio.spec.settings.cache_path = cache
    bioimageio.core.settings.cache_path = cache
    return cache


@contextlib.contextmanager
def no_network() -> Iterator[list[object]]:
    """No internet connection can be opened (local sockets still work); the list yielded
    collects the addresses something tried to reach — the tests assert it stays empty."""
    attempts: list[object] = []
    connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(address)
            raise OSError(f"the test is offline: connection to {address} refused")
        connect(self, address)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", guarded)
        yield attempts


@pytest.fixture
def offline(bioimageio_cache: Path) -> Iterator[list[object]]:
    with no_network() as attempts:
        yield attempts


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder the pytest-xdist workers of this test run share (the session's own without
    xdist): the package is made once per run, not once per worker."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def package(shared_dir: Path, bioimageio_cache: Path) -> PackageResult:
    """The run's package with all three weights formats (the slow part: ONNX and TorchScript),
    made by the first worker that asks and read back by the others."""
    from drunet.bioimageio import export_bioimageio

    record = shared_dir / "bioimageio-package.json"
    with FileLock(str(shared_dir / "bioimageio-package.lock")):
        if not record.exists():
            run = make_run(shared_dir / "bioimageio-package")
            with no_network() as attempts:
                made = export_bioimageio(run, authors=["A. Tester"], license="MIT")
            assert attempts == []
            record.write_text(json.dumps(dataclasses.asdict(made), default=str))
    fields = json.loads(record.read_text())
    parity = {k: Parity(**v) for k, v in fields.pop("parity").items()}
    paths = {k: Path(fields.pop(k)) for k in ("folder", "zip")}
    return PackageResult(**paths, **fields, parity=parity)


@pytest.fixture(scope="session")
def tiny_run(package: PackageResult) -> Path:
    """The run folder the package was made from."""
    return package.folder.parent
