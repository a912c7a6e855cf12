"""The reader opens what ``drunet predict`` writes: masks as Labels, probabilities as Images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from napari.layers import Image, Labels

from drunet.datasets import write_image, write_mask
from drunet.inference import OutputOptions, Predictor, predict_files
from drunet.napari.reader import get_reader, read_layers
from tests.napari.test_manifest import MANIFEST


@pytest.fixture
def drunet_plugin(npe2pm):
    """napari's plugin manager with only drunet's manifest registered (as installed)."""
    npe2pm.register(str(MANIFEST))
    return npe2pm


@pytest.fixture(scope="module")
def predicted(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `drunet predict --probabilities` writes for one 3-class RGB image."""
    root = tmp_path_factory.mktemp("predicted")
    image = np.random.default_rng(5).integers(0, 256, (30, 34, 3), dtype=np.uint8)
    write_image(root / "cells.png", image)
    predictor = Predictor.from_run(models["rgb"], device="cpu")
    outputs = OutputOptions(probabilities=True)
    report = predict_files(predictor, [root / "cells.png"], root / "out", outputs=outputs)
    assert report.written == [root / "out" / "cells_mask.png"]
    return root


def test_viewer_open_gives_the_mask_as_labels(make_napari_viewer, drunet_plugin, models, predicted):
    viewer = make_napari_viewer()
    layers = viewer.open(predicted / "out" / "cells_mask.png", plugin="drunet")
    assert [type(layer) for layer in layers] == [Labels]
    expected = Predictor.from_run(models["rgb"], device="cpu").predict(predicted / "cells.png")
    assert set(np.unique(expected)) == {0, 1, 2}
    np.testing.assert_array_equal(layers[0].data, expected)
    assert layers[0].name == "cells_mask"


def test_viewer_open_gives_one_image_per_class(
    make_napari_viewer, drunet_plugin, models, predicted
):
    viewer = make_napari_viewer()
    layers = viewer.open(predicted / "out" / "cells_probs.tif", plugin="drunet")
    assert [type(layer) for layer in layers] == [Image] * 3
    assert [layer.name for layer in layers] == [f"cells_probs class {k}" for k in range(3)]
    predictor = Predictor.from_run(models["rgb"], device="cpu")
    expected = predictor.predict_probabilities(predicted / "cells.png")  # (3, H, W)
    for k, layer in enumerate(layers):
        np.testing.assert_allclose(layer.data, expected[k], atol=1e-6)
        assert tuple(layer.contrast_limits) == (0.0, 1.0)


def test_a_stack_mask_opens_as_one_labels_volume(tmp_path: Path) -> None:
    masks = np.random.default_rng(0).integers(0, 4, (3, 12, 10), dtype=np.uint8)
    write_mask(tmp_path / "vol_mask.tif", masks)  # what predict writes for a TIFF stack
    ((data, meta, kind),) = read_layers(str(tmp_path / "vol_mask.tif"))
    assert kind == "labels" and meta == {"name": "vol_mask"}
    assert data.dtype == np.uint8
    np.testing.assert_array_equal(data, masks)
    wide = np.zeros((6, 7), np.uint16)
    wide[2, 3] = 300
    write_mask(tmp_path / "wide_mask.png", wide)
    ((data, _, _),) = read_layers(str(tmp_path / "wide_mask.png"))
    assert data.dtype == np.uint16 and data[2, 3] == 300 and data.sum() == 300


def test_only_drunet_outputs_are_claimed() -> None:
    assert get_reader("a/cells_mask.png") is read_layers
    assert get_reader(["a/x_mask.tif", "a/x_probs.tif", "A/Y_MASK.PNG"]) is read_layers
    assert get_reader("a/cells.png") is None  # an image: napari's own reader
    assert get_reader("a/cells_overlay.png") is None
    assert get_reader(["a/x_mask.png", "a/cells.png"]) is None
    assert get_reader([]) is None
