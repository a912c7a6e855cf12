"""A missing optional package is one line naming the extra that installs it."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import tifffile

from drunet.errors import DrunetError
from drunet.giant.sources import open_region_source


@pytest.mark.parametrize("module", ["zarr", "openslide"])
def test_missing_package_names_the_extra(tmp_path, monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    if module == "zarr":
        path = tmp_path / "tiled.tif"
        tifffile.imwrite(path, np.zeros((32, 32), np.uint8), tile=(16, 16), compression="zlib")
    else:
        path = tmp_path / "slide.mrxs"
        path.write_bytes(b"not read")
    with pytest.raises(DrunetError) as caught:
        open_region_source(path)
    message = str(caught.value)
    assert "\n" not in message
    assert f"optional package '{module}'" in message
    assert message.endswith('pip install "drunet[wsi]"')


def test_uncompressed_tiff_needs_no_optional_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "zarr", None)
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.arange(600, dtype=np.uint16).reshape(20, 30))
    source = open_region_source(path)  # memory-mapped
    assert source.read(1, 2, 1, 3)[:, :, 0].tolist() == [[32, 33, 34]]
    source.close()


def test_a_missing_codec_names_the_extra_when_the_file_is_opened(tmp_path, monkeypatch):
    path = tmp_path / "jpeg.tif"
    tifffile.imwrite(path, np.zeros((32, 32, 3), np.uint8), tile=(16, 16), compression="jpeg")

    def without_imagecodecs(codecs, key):
        if key != 1:
            raise KeyError(key)  # what tifffile raises when imagecodecs is missing
        return lambda data, **kwargs: data

    monkeypatch.setattr(tifffile.tifffile.CompressionCodec, "__getitem__", without_imagecodecs)
    with pytest.raises(DrunetError) as caught:
        open_region_source(path)
    assert str(caught.value) == (
        f"reading {path} needs a decoder for its JPEG compression from the optional package "
        "'imagecodecs', which is not installed; install it with: pip install \"drunet[wsi]\""
    )
