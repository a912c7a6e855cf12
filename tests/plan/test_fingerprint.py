"""The fingerprint's numbers against hand-computed values, on every layout train accepts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from drunet.config import ExperimentConfig, set_fields
from drunet.datasets import MaskOptions, write_image, write_mask
from drunet.errors import DataError
from drunet.plan import (
    Fingerprint,
    compute_fingerprint,
    fingerprint_config,
    load_fingerprint,
    save_fingerprint,
)
from drunet.plan.fingerprint import sample_pairs
from tests.plan.conftest import discs_mask, folder_pairs, lines_mask, write_folder


def _config(root: Path, **keys: object) -> ExperimentConfig:
    return set_fields(ExperimentConfig(), {"data.root": root, **keys})


def _square(size: int, side: int, label: int = 1) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[:side, :side] = label
    return mask


def test_class_frequencies_empty_masks_and_objects_are_exact(tmp_path: Path) -> None:
    masks = [_square(20, 10), _square(20, 5, 2), np.zeros((20, 20), np.uint8)]
    masks[1][15:17, 15:17] = 2  # a second class-2 object of 4 px
    fp = compute_fingerprint(folder_pairs(write_folder(tmp_path, masks)))
    assert fp.pairs == fp.sampled == 3 and fp.num_classes == 3
    assert [c.frequency for c in fp.classes] == pytest.approx(
        [(1200 - 129) / 1200, 100 / 1200, 29 / 1200]
    )
    assert fp.empty_mask_fraction == pytest.approx(1 / 3)
    assert [c.image_share for c in fp.classes] == pytest.approx([1, 1 / 3, 1 / 3])
    assert fp.classes[1].objects_per_image == 1 and fp.classes[1].object_area_median == 100
    assert fp.classes[2].objects_per_image == 2
    assert fp.classes[2].object_area_median == pytest.approx(14.5)  # areas 25 and 4
    assert fp.classes[0].objects_per_image is None  # background objects are not counted
    assert [c.name for c in fp.classes] == ["background", "class 1", "class 2"]


def test_widths_of_thin_lines_and_wide_discs(tmp_path: Path) -> None:
    thin = compute_fingerprint(folder_pairs(write_folder(tmp_path / "t", [lines_mask(64, 2)] * 2)))
    wide = compute_fingerprint(folder_pairs(write_folder(tmp_path / "w", [discs_mask(64, 10)])))
    assert thin.classes[1].width_median == 2.0 and thin.thinnest_width == 2.0
    assert wide.thinnest_width == pytest.approx(2 * np.sqrt(101))  # ≈ 20 (measure.py)
    assert thin.classes[1].objects_per_image == 4  # lines at rows 8, 24, 40, 56


def test_intensities_sizes_and_sampling(tmp_path: Path) -> None:
    masks = [_square(101, 10)] * 2 + [_square(50, 10)]
    values = [10, 30, 20]
    root = write_folder(tmp_path, masks, lambda i, m: np.full((*m.shape, 1), values[i], np.uint8))
    fp = compute_fingerprint(folder_pairs(root))
    channel = fp.intensity[0]
    pixels = np.concatenate([np.full(101 * 101, 10), np.full(101 * 101, 30), np.full(2500, 20)])
    assert channel.mean == pytest.approx(pixels.mean())
    assert channel.std == pytest.approx(pixels.std())
    assert (channel.min, channel.max) == (10, 30)
    assert fp.sizes.min == (50, 50) and fp.sizes.max == (101, 101)
    assert fp.sizes.median == (101, 101) and fp.sizes.long_side_median == 101
    assert fp.sizes.distinct == 2 and fp.sizes.most_common[0] == (101, 101, 2)
    assert fp.channels == 1 and fp.dtypes == {"uint8": 3}
    assert fp.spacing is None


def test_bounded_work_reads_evenly_spaced_pairs_and_centre_windows(tmp_path: Path) -> None:
    pairs = folder_pairs(write_folder(tmp_path, [_square(40, 10)] * 10))
    assert [p.image.stem for p in sample_pairs(pairs, 4)] == ["000", "003", "006", "009"]
    fp = compute_fingerprint(pairs, max_images=4, max_side=20)
    assert fp.pairs == 10 and fp.sampled == 4
    assert fp.sizes.max == (40, 40)  # sizes are the whole image's
    assert fp.classes[1].frequency == 0.0  # the square (top left) is outside the centre 20²
    assert fp.empty_mask_fraction == 1.0


def test_int16_tiffs_keep_their_values_and_spacing(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    for i, value in enumerate((-1000, 1000)):
        tifffile.imwrite(
            tmp_path / "images" / f"{i:03d}.tif",
            np.full((16, 16), value, np.int16),
            resolution=(2.0, 4.0),  # pixels per centimetre along x and y
            resolutionunit="CENTIMETER",
            photometric="minisblack",
        )
        write_mask(tmp_path / "masks" / f"{i:03d}.png", _square(16, 4))
    fp = compute_fingerprint(folder_pairs(tmp_path))
    assert fp.dtypes == {"int16": 2}
    stats = fp.intensity[0]
    assert (stats.mean, stats.std, stats.min, stats.max) == (0, 1000, -1000, 1000)
    assert fp.spacing is not None and fp.spacing_files == 2
    assert (fp.spacing.x, fp.spacing.y, fp.spacing.unit) == (5000.0, 2500.0, "µm")


def test_nnunet_layout_two_channels_names_and_ignore(tmp_path: Path) -> None:
    meta = {
        "channel_names": {"0": "DAPI", "1": "GFP"},
        "labels": {"background": 0, "nucleus": 1, "ignore": 2},
        "file_ending": ".png",
    }
    for n in range(5):
        for c in range(2):
            image = np.full((12, 12), 10 * (c + 1), np.uint8)
            write_image(tmp_path / "imagesTr" / f"case_{n:03d}_{c:04d}.png", image)
        mask = _square(12, 6)
        mask[11] = 2  # ignored row: 12 px
        write_mask(tmp_path / "labelsTr" / f"case_{n:03d}.png", mask)
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    fp = fingerprint_config(_config(tmp_path))
    assert "nnU-Net" in fp.source and fp.pairs == 4  # 20 % held out for validation
    assert fp.channels == 2
    assert [c.mean for c in fp.intensity] == [10, 20]
    assert [c.name for c in fp.classes] == ["background", "nucleus"] and fp.ignore_index == 2
    assert fp.ignored_share == pytest.approx(12 / 144)
    assert fp.classes[1].frequency == pytest.approx(36 / 132)


def test_tiff_stacks_are_measured_slice_by_slice(tmp_path: Path) -> None:
    for part, pages in (("train", 3), ("val", 1)):
        (tmp_path / part / "images").mkdir(parents=True)
        (tmp_path / part / "masks").mkdir(parents=True)
        images = np.stack([np.full((16, 16), 50 * z, np.uint8) for z in range(pages)])
        masks = np.stack([_square(16, 4) if z != 1 else _square(16, 0) for z in range(pages)])
        tifffile.imwrite(tmp_path / part / "images" / "s.tif", images, photometric="minisblack")
        tifffile.imwrite(tmp_path / part / "masks" / "s.tif", masks, photometric="minisblack")
    fp = fingerprint_config(_config(tmp_path))
    assert fp.pairs == 3 and fp.sizes.max == (16, 16)
    assert fp.empty_mask_fraction == pytest.approx(1 / 3)  # slice 1 is empty
    assert fp.intensity[0].mean == pytest.approx(50)  # slices 0, 50, 100
    assert fp.classes[1].frequency == pytest.approx(32 / 768)


def test_numbered_slices_through_data_layout_stack(tmp_path: Path) -> None:
    for part, names in (("train", ["cellA", "cellB"]), ("val", ["cellC"])):
        for name in names:
            for z in range(2):
                stem = f"{name}_z{z}"
                write_image(tmp_path / part / "images" / f"{stem}.png", np.zeros((8, 8), np.uint8))
                write_mask(tmp_path / part / "masks" / f"{stem}.png", _square(8, 2 * z))
    config = _config(tmp_path, **{"data.layout.stack": "{name}_z{index}"})
    fp = fingerprint_config(config)
    assert fp.pairs == 4 and fp.empty_mask_fraction == 0.5  # every z0 mask is empty
    assert fp.classes[1].frequency == pytest.approx(8 / 256)
    write_image(tmp_path / "train" / "images" / "stray.png", np.zeros((8, 8), np.uint8))
    write_mask(tmp_path / "train" / "masks" / "stray.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match="stray"):  # the layout options reach discover
        fingerprint_config(config)


def test_json_round_trip(tmp_path: Path) -> None:
    fp = compute_fingerprint(folder_pairs(write_folder(tmp_path / "d", [discs_mask(32, 5)])))
    save_fingerprint(fp, tmp_path / "fingerprint.json")
    assert load_fingerprint(tmp_path / "fingerprint.json") == fp
    assert Fingerprint.from_json(json.loads(json.dumps(fp.to_json()))) == fp


def test_bad_pairs_are_left_out_and_counted(tmp_path: Path) -> None:
    root = write_folder(tmp_path, [_square(8, 2)] * 3)
    (root / "images" / "001.png").write_bytes(b"not an image")
    fp = compute_fingerprint(folder_pairs(root))
    assert (fp.pairs, fp.sampled, fp.skipped) == (3, 2, 1)
    assert fp.classes[1].frequency == pytest.approx(4 / 64)
    rgb = write_folder(tmp_path / "rgb", [_square(8, 2)] * 2)
    write_image(rgb / "images" / "001.png", np.zeros((8, 8, 3), np.uint8))
    assert compute_fingerprint(folder_pairs(rgb), MaskOptions()).skipped == 1  # channels differ
    for path in (root / "images").iterdir():
        path.write_bytes(b"not an image")
    with pytest.raises(DataError, match="no training pair could be read: .*000.png"):
        compute_fingerprint(folder_pairs(root))
    with pytest.raises(DataError, match="no training pairs"):
        compute_fingerprint([])
