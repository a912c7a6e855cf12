"""`drunet plan` on every layout `drunet train` accepts: image folders, nnU-Net, multi-page TIFF
stacks, numbered slices and int16 TIFFs. Each plans from exactly the training pairs train reads
(same discovery, split and options), with one reason per choice."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from drunet.cli.main import app
from drunet.config import compose_config
from drunet.datasets import write_image, write_mask
from drunet.engine.data import prepare_data
from drunet.plan import PLAN_KEYS
from tests.plan.conftest import discs_mask, write_folder


def _square(size: int, side: int, label: int = 1) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[:side, :side] = label
    return mask


def folders(root: Path) -> list[str]:
    """images/ + masks/ of PNGs: five 32² masks of two discs, 80 % for training."""
    write_folder(root, [discs_mask(32, 5)] * 5)
    return []


def nnunet(root: Path) -> list[str]:
    """imagesTr/ (two channel files per case) + labelsTr/ + dataset.json."""
    meta = {
        "channel_names": {"0": "DAPI", "1": "GFP"},
        "labels": {"background": 0, "nucleus": 1},
        "file_ending": ".png",
    }
    for n in range(5):
        for c in range(2):
            image = np.full((16, 16), 10 * (c + 1), np.uint8)
            write_image(root / "imagesTr" / f"case_{n:03d}_{c:04d}.png", image)
        write_mask(root / "labelsTr" / f"case_{n:03d}.png", _square(16, 6))
    (root / "dataset.json").write_text(json.dumps(meta))
    return []


def stacks(root: Path) -> list[str]:
    """train/ and val/ folders of multi-page TIFFs: 3 training slices, the middle one empty."""
    for part, pages in (("train", 3), ("val", 2)):
        for kind in ("images", "masks"):
            (root / part / kind).mkdir(parents=True)
        images = np.stack([np.full((16, 16), 50 * z, np.uint8) for z in range(pages)])
        masks = np.stack([_square(16, 0 if z == 1 else 4) for z in range(pages)])
        tifffile.imwrite(root / part / "images" / "s.tif", images, photometric="minisblack")
        tifffile.imwrite(root / part / "masks" / "s.tif", masks, photometric="minisblack")
    return []


def numbered(root: Path) -> list[str]:
    """train/ and val/ of numbered 2D slices, grouped by data.layout.stack."""
    for part, names in (("train", ["cellA", "cellB"]), ("val", ["cellC"])):
        for name in names:
            for z in range(2):
                stem = f"{name}_z{z}"
                write_image(root / part / "images" / f"{stem}.png", np.full((8, 8), 9, np.uint8))
                write_mask(root / part / "masks" / f"{stem}.png", _square(8, 2 + 2 * z))
    return ["--set", "data.layout.stack={name}_z{index}"]


def int16(root: Path) -> list[str]:
    """images/ of signed 16-bit TIFFs (CT-like values) + masks/."""
    (root / "images").mkdir(parents=True)
    for i in range(5):
        pixels = np.full((16, 16), -1000 + 500 * i, np.int16)
        tifffile.imwrite(root / "images" / f"{i:03d}.tif", pixels, photometric="minisblack")
        write_mask(root / "masks" / f"{i:03d}.png", _square(16, 4 + i))
    return []


# layout → (pairs train reads, channels, pixel type of the images)
LAYOUTS: dict[str, tuple[Callable[[Path], list[str]], int, int, str]] = {
    "folders": (folders, 4, 1, "uint8"),
    "nnunet": (nnunet, 4, 2, "uint8"),
    "stacks": (stacks, 3, 1, "uint8"),
    "numbered": (numbered, 4, 1, "uint8"),
    "int16": (int16, 4, 1, "int16"),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_plan_reads_what_train_reads(layout: str, tmp_path: Path) -> None:
    build, pairs, channels, dtype = LAYOUTS[layout]
    root = tmp_path / layout
    extra = build(root)
    result = CliRunner().invoke(app, ["plan", "--data", str(root), "--json", *extra])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    fingerprint, choices = document["fingerprint"], document["plan"]["choices"]
    assert fingerprint["pairs"] == fingerprint["sampled"] == pairs
    assert fingerprint["channels"] == channels and list(fingerprint["dtypes"]) == [dtype]
    assert [c["key"] for c in choices] == list(PLAN_KEYS)
    assert all(c["reason"] for c in choices)
    # The same pairs drunet train would train on.
    sets = [extra[i + 1] for i, arg in enumerate(extra) if arg == "--set"]
    config = compose_config(None, sets, {"data.root": root})
    assert len(prepare_data(config).train) == pairs
