"""The one batching rule (``predictor.batches``) shared by the prediction loop and
``Predictor.predict_batch``: consecutive same-sized images that fit whole, up to
``images_per_batch``; a tiled image or an item with nothing to predict alone."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from drunet.inference.predictor import Predictor, batches
from tests.inference.test_predictor import MinusHalf, make_config


def _groups(shapes: list[tuple[int, int] | None]) -> list[list[int]]:
    # Whole up to 100 pixels, two images per pass.
    predictor: Any = SimpleNamespace(
        fits_whole=lambda h, w: h * w <= 100, images_per_batch=lambda h, w: 2
    )
    return list(batches(predictor, range(len(shapes)), lambda i: shapes[i]))


def test_groups_by_hand() -> None:
    shapes = [(5, 5), (5, 5), (5, 5), None, (5, 5), (4, 4), (20, 20), (20, 20), (4, 4)]
    assert _groups(shapes) == [[0, 1], [2], [3], [4], [5], [6], [7], [8]]
    assert _groups([None, None]) == [[0], [1]]
    assert _groups([]) == []
    assert _groups([(4, 4), (4, 4), (4, 4), (4, 4)]) == [[0, 1], [2, 3]]


def test_predict_batch_puts_same_sizes_together_and_keeps_the_input_order(monkeypatch) -> None:
    predictor = Predictor(MinusHalf(), make_config(), "cpu")
    rng = np.random.default_rng(0)
    sizes = [(8, 8), (6, 10), (8, 8), (6, 10), (8, 8)]
    images = [(rng.random(size) * 255).astype(np.uint8) for size in sizes]
    passes: list[tuple[int, ...]] = []
    real = Predictor.scores

    def recording(self: Predictor, x: torch.Tensor, on_progress: Any = None) -> torch.Tensor:
        passes.append(tuple(x.shape))
        return real(self, x, on_progress)

    monkeypatch.setattr(Predictor, "scores", recording)
    masks = [result.mask for result in predictor.predict_batch(images)]
    # batch_size 4: the three 8×8 images share one pass, the two 6×10 another.
    assert passes == [(3, 1, 8, 8), (2, 1, 6, 10)]
    for image, mask in zip(images, masks, strict=True):  # MinusHalf: foreground above 127.5
        np.testing.assert_array_equal(mask, (image > 127.5).astype(np.uint8))
