"""OME-Zarr in and out: bands written read back exactly, levels, axes and resolution."""

from __future__ import annotations

import os

import numpy as np
import pytest
import zarr

from drunet.errors import DataError
from drunet.giant.sources import open_region_source
from drunet.giant.zarr_sink import write_ome_zarr
from tests.giant.conftest import ramp


def test_mask_round_trip_with_levels(tmp_path):
    mask = (ramp(200, 150) % 4).astype(np.uint8)
    path = tmp_path / "mask.ome.zarr"
    bands = (mask[top : top + 30] for top in range(0, 200, 30))
    write_ome_zarr(path, bands, height=200, width=150, dtype=np.uint8, chunk=64, mpp=0.5)
    assert os.listdir(tmp_path) == ["mask.ome.zarr"]
    group = zarr.open_group(path, mode="r")
    meta = group.attrs["multiscales"][0]
    assert meta["version"] == "0.4"
    assert [a["name"] for a in meta["axes"]] == ["y", "x"]
    assert [d["coordinateTransformations"][0]["scale"] for d in meta["datasets"]] == [
        [0.5, 0.5],
        [1.0, 1.0],
        [2.0, 2.0],
    ]
    assert [group[str(k)].shape for k in range(3)] == [(200, 150), (100, 75), (50, 38)]
    assert group["0"].chunks == (64, 64)
    for level in range(3):
        source = open_region_source(path, level=level)
        step = 2**level
        assert source.mpp == pytest.approx(0.5 * step)
        assert source.channels == 1 and source.dtype == np.uint8
        expected = mask[::step, ::step]
        assert np.array_equal(source.read(0, 0, *expected.shape)[:, :, 0], expected)
        source.close()
    source = open_region_source(path, mpp=1.5)  # the coarsest level not coarser: 1.0
    assert source.level == 1
    source.close()


def test_channels_are_stored_first_and_read_last(tmp_path):
    probs = ramp(70, 90, 3, np.uint16).astype(np.float32) / 65535
    path = tmp_path / "probs.zarr"
    write_ome_zarr(
        path, [probs], height=70, width=90, dtype=np.float32, channels=3, chunk=32, reduce="mean"
    )
    group = zarr.open_group(path, mode="r")
    assert [a["name"] for a in group.attrs["multiscales"][0]["axes"]] == ["c", "y", "x"]
    assert group["0"].shape == (3, 70, 90)
    source = open_region_source(path)
    assert source.mpp is None  # no unit written without an mpp
    assert np.array_equal(source.read(0, 0, 70, 90), probs)
    assert np.array_equal(source.read(10, 20, 5, 7), probs[10:15, 20:27])
    source.close()
    level1 = open_region_source(path, level=1)
    expected = probs.astype(np.float64).reshape(35, 2, 45, 2, 3).sum(axis=(1, 3)) / 4
    assert np.array_equal(level1.read(0, 0, 35, 45), expected.astype(np.float32))
    level1.close()


def test_reads_ngff_05_on_zarr_v3_with_time_and_channel_axes(tmp_path):
    image = ramp(2, 40, 50, np.uint16)  # (c, y, x)
    path = tmp_path / "image.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=3)
    array = group.create_array("s0", shape=(1, 2, 40, 50), chunks=(1, 1, 16, 16), dtype=np.uint16)
    array[0] = image
    axes = [
        {"name": "t", "type": "time"},
        {"name": "c", "type": "channel"},
        {"name": "y", "type": "space", "unit": "nanometer"},
        {"name": "x", "type": "space", "unit": "nanometer"},
    ]
    scale = {"type": "scale", "scale": [1, 1, 250, 250]}
    group.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [
            {"axes": axes, "datasets": [{"path": "s0", "coordinateTransformations": [scale]}]}
        ],
    }
    source = open_region_source(path)
    assert (source.height, source.width, source.channels) == (40, 50, 2)
    assert source.mpp == pytest.approx(0.25)
    assert np.array_equal(source.read(3, 4, 10, 20), np.moveaxis(image, 0, 2)[3:13, 4:24])
    source.close()


def test_a_zarr_folder_without_multiscales_is_a_data_error(tmp_path):
    path = tmp_path / "plain.zarr"
    zarr.open_group(path, mode="w", zarr_format=2).create_array("0", shape=(4, 4), dtype="u1")
    with pytest.raises(DataError, match="without OME-Zarr 'multiscales' metadata"):
        open_region_source(path)
    (tmp_path / "folder").mkdir()
    with pytest.raises(DataError, match="it is a folder but not an OME-Zarr image"):
        open_region_source(tmp_path / "folder")


def test_a_failed_write_leaves_no_folder_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "mask.zarr"
    write_ome_zarr(path, [np.ones((20, 20), np.uint8)], height=20, width=20, dtype=np.uint8)
    with pytest.raises(ValueError, match="the bands hold 10 rows, the image 20"):
        write_ome_zarr(path, [np.zeros((10, 20), np.uint8)], height=20, width=20, dtype=np.uint8)
    assert os.listdir(tmp_path) == ["mask.zarr"]
    source = open_region_source(path)
    assert int(source.read(0, 0, 20, 20).min()) == 1  # still the first, finished write
    source.close()
