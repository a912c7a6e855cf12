"""The Segment dock widget in a headless napari viewer: its Labels equal the Predictor's masks."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np
import pytest
import tifffile
from napari.layers import Labels
from qtpy.QtCore import Qt

from drunet.inference import Predictor
from drunet.napari import widget as widget_module
from drunet.napari.widget import SegmentWidget

WAIT_MS = 20_000


def _image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _segment(qtbot, viewer, model: Path, layer: str) -> SegmentWidget:
    """Dock a widget, segment ``layer`` with ``model`` and wait for the worker to end."""
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.model_edit.setText(str(model))
    widget.layer_box.setCurrentText(layer)
    qtbot.mouseClick(widget.run_button, Qt.MouseButton.LeftButton)
    assert widget.worker is not None
    qtbot.waitUntil(lambda: widget.run_button.isEnabled(), timeout=WAIT_MS)
    return widget


def test_a_2d_layer_becomes_labels_equal_to_predict(make_napari_viewer, qtbot, models) -> None:
    viewer = make_napari_viewer()
    image = _image((40, 52))
    viewer.add_image(image, name="cells", scale=(2.0, 0.5), translate=(3.0, 1.0))
    widget = _segment(qtbot, viewer, models["gray"], "cells")
    labels = viewer.layers["cells labels"]
    assert isinstance(labels, Labels)
    expected = Predictor.from_run(models["gray"], device="cpu").predict(image)
    assert set(np.unique(expected)) == {0, 1}  # both classes: an equality that can fail
    np.testing.assert_array_equal(labels.data, expected)
    assert tuple(labels.scale) == (2.0, 0.5) and tuple(labels.translate) == (3.0, 1.0)
    assert "cells labels: 1 image segmented" in widget.status.text()
    # Segmenting again replaces the layer's data, not adds a layer.
    viewer.layers["cells"].data = image[::-1].copy()
    widget.segment()
    qtbot.waitUntil(lambda: widget.run_button.isEnabled(), timeout=WAIT_MS)
    assert [layer.name for layer in viewer.layers] == ["cells", "cells labels"]
    predictor = Predictor.from_run(models["gray"], device="cpu")
    np.testing.assert_array_equal(labels.data, predictor.predict(image[::-1].copy()))


def test_an_rgb_layer_is_one_image_of_three_channels(make_napari_viewer, qtbot, models) -> None:
    viewer = make_napari_viewer()
    image = _image((36, 44, 3), seed=1)
    viewer.add_image(image, name="rgb")
    assert viewer.layers["rgb"].rgb
    _segment(qtbot, viewer, models["rgb"], "rgb")  # a save_pretrained folder
    expected = Predictor.from_run(models["rgb"], device="cpu").predict(image)
    assert set(np.unique(expected)) == {0, 1, 2}
    np.testing.assert_array_equal(viewer.layers["rgb labels"].data, expected)


def test_a_stack_is_segmented_slice_by_slice_with_its_neighbours(
    make_napari_viewer, qtbot, models, tmp_path
) -> None:
    viewer = make_napari_viewer()
    stack = _image((5, 32, 40), seed=2)
    viewer.add_image(stack, name="volume")
    widget = _segment(qtbot, viewer, models["context"], "volume")
    tifffile.imwrite(tmp_path / "volume.tif", stack)  # the same slices as a TIFF stack
    predictor = Predictor.from_run(models["context"], device="cpu")
    expected = predictor.predict_stack(tmp_path / "volume.tif")
    assert expected.shape == (5, 32, 40) and set(np.unique(expected)) == {0, 1}
    np.testing.assert_array_equal(viewer.layers["volume labels"].data, expected)
    # Slice 2 with slices 1 and 3 stacked along channels (the 2.5D input), by hand.
    by_hand = predictor.predict(np.moveaxis(stack[1:4], 0, 2))
    np.testing.assert_array_equal(expected[2], by_hand)
    assert (widget.progress.value(), widget.progress.maximum()) == (5, 5)


def test_a_stack_without_context_is_each_slice_predicted(make_napari_viewer, qtbot, models) -> None:
    viewer = make_napari_viewer()
    stack = _image((3, 24, 28), seed=3)
    viewer.add_image(stack, name="z")
    _segment(qtbot, viewer, models["gray"], "z")
    predictor = Predictor.from_run(models["gray"], device="cpu")
    expected = np.stack([predictor.predict(page) for page in stack])
    np.testing.assert_array_equal(viewer.layers["z labels"].data, expected)


@pytest.mark.parametrize(
    ("model", "shape", "message"),
    [
        ("empty", (20, 20), "holds no best.safetensors"),
        ("missing", (20, 20), "no such run folder"),
        ("context", (20, 20), "one slice, but the model"),  # a 2.5D model needs a stack
        ("gray", (20, 20, 3), "3 channel"),  # RGB for a gray model
        ("gray", (2, 3, 20, 20), "has shape \\(2, 3, 20, 20\\)"),
    ],
)
def test_a_mistake_is_shown_in_the_widget_not_raised(
    make_napari_viewer, qtbot, models, tmp_path, model, shape, message
) -> None:
    folders = {**models, "empty": tmp_path, "missing": tmp_path / "nowhere"}
    viewer = make_napari_viewer()
    viewer.add_image(_image(shape), name="img", rgb=len(shape) == 3 and shape[-1] == 3)
    widget = SegmentWidget(viewer)
    widget.model_edit.setText(str(folders[model]))
    worker = widget.segment()
    if worker is not None:
        qtbot.waitUntil(lambda: widget.run_button.isEnabled(), timeout=WAIT_MS)
    assert re.search(message, widget.status.text()), widget.status.text()
    assert [layer.name for layer in viewer.layers] == ["img"]


def test_without_a_model_or_an_image_the_widget_says_what_is_missing(make_napari_viewer) -> None:
    viewer = make_napari_viewer()
    widget = SegmentWidget(viewer)
    assert widget.segment() is None
    assert "choose a model" in widget.status.text()
    widget.model_edit.setText("runs/x")
    assert widget.segment() is None
    assert "no image layer" in widget.status.text()
    viewer.add_labels(np.zeros((4, 4), np.uint8), name="l")
    viewer.add_image(_image((4, 4)), name="a")
    assert [widget.layer_box.itemText(i) for i in range(widget.layer_box.count())] == ["a"]
    viewer.layers["a"].name = "b"
    assert [widget.layer_box.itemText(i) for i in range(widget.layer_box.count())] == ["b"]


def test_the_viewer_is_not_blocked_and_closing_stops_the_worker(
    make_napari_viewer, qtbot, models, monkeypatch
) -> None:
    gate = threading.Event()
    calls: list[tuple[int, int]] = []

    def held_segment(predictor, volume, on_progress):  # segments once the test opens the gate
        assert gate.wait(WAIT_MS / 1000)
        on_progress(1, 2)
        calls.append((1, 2))
        return np.zeros((8, 8), np.uint8)

    monkeypatch.setattr(widget_module, "segment", held_segment)
    viewer = make_napari_viewer()
    viewer.add_image(_image((8, 8)), name="img")
    widget = SegmentWidget(viewer)
    widget.model_edit.setText(str(models["gray"]))
    worker = widget.segment()
    qtbot.wait(100)  # the event loop runs while the worker waits: the viewer is not blocked
    assert worker is not None and worker.is_running and not widget.run_button.isEnabled()
    assert widget.segment() is worker  # one run at a time
    widget.close()  # stops the worker at its next slice or tile
    gate.set()
    qtbot.waitUntil(lambda: widget.run_button.isEnabled(), timeout=WAIT_MS)
    assert calls == [] and [layer.name for layer in viewer.layers] == ["img"]
