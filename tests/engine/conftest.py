"""Shared engine-test data: a small binary dataset (6 images of two sizes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from drunet.datasets import make_synthetic

SIZES = ((48, 48), (64, 40))


@pytest.fixture(scope="module")
def binary_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic(
        tmp_path_factory.mktemp("binary") / "data", num_images=6, sizes=SIZES, seed=0
    )
