"""napari's layer layouts as the Predictor's arrays, without a viewer."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest

from drunet.errors import DrunetError
from drunet.inference import Predictor
from drunet.napari.volume import layer_volume, segment


def _image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize(
    ("shape", "rgb", "stack", "count", "read_shape"),
    [
        ((20, 30), False, False, 1, (20, 30, 1)),
        ((20, 30, 3), True, False, 1, (20, 30, 3)),
        ((20, 30, 4), True, False, 1, (20, 30, 3)),  # alpha left out
        ((4, 20, 30), False, True, 4, (20, 30, 1)),
        ((4, 20, 30, 3), True, True, 4, (20, 30, 3)),
    ],
)
def test_layouts_map_to_images_of_h_w_c(shape, rgb, stack, count, read_shape) -> None:
    data = _image(shape)
    volume = layer_volume("a", data, rgb)
    assert (volume.stack, volume.count) == (stack, count)
    image = volume.read(count - 1)
    assert image.shape == read_shape
    expected = data[count - 1] if stack else data
    np.testing.assert_array_equal(image, expected[..., :3] if rgb else expected[..., None])


@pytest.mark.parametrize(
    ("shape", "rgb", "message"),
    [
        ((2, 3, 20, 30), False, r"layer 'a' has shape \(2, 3, 20, 30\)"),
        ((30,), False, r"has shape \(30,\)"),
        ((0, 20, 30), False, "is empty"),
    ],
)
def test_other_layouts_are_refused_naming_the_layer(shape, rgb, message) -> None:
    with pytest.raises(DrunetError, match=message):
        layer_volume("a", np.zeros(shape, np.uint8), rgb)


def test_an_rgba_layer_is_segmented_as_its_rgb(models: dict[str, Path]) -> None:
    predictor = Predictor.from_run(models["rgb"], device="cpu")
    rgba = _image((24, 20, 4), seed=4)
    mask = segment(predictor, layer_volume("a", rgba, rgb=True))
    np.testing.assert_array_equal(mask, predictor.predict(rgba[:, :, :3]))


def test_a_lazy_stack_is_read_slice_by_slice_with_progress(models: dict[str, Path]) -> None:
    predictor = Predictor.from_run(models["context"], device="cpu")
    stack = _image((3, 16, 24), seed=6)
    lazy = da.from_array(stack, chunks=(1, 16, 24))
    done: list[tuple[int, int]] = []
    masks = segment(predictor, layer_volume("a", lazy, rgb=False), lambda *d: done.append(d))
    assert done == [(1, 3), (2, 3), (3, 3)]
    eager = segment(predictor, layer_volume("a", stack, rgb=False))
    np.testing.assert_array_equal(masks, eager)
    first = np.stack([stack[0], stack[0], stack[1]], axis=2)  # slice 0: its edge replicated
    np.testing.assert_array_equal(masks[0], predictor.predict(first))
