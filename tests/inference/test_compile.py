"""``PredictOptions(compile=True)`` / ``--compile``: the network through ``torch.compile``, tile
batches padded to one shape, the same masks as without it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from drunet.errors import DrunetError
from drunet.inference import PredictOptions, Predictor
from drunet.inference import network as network_module
from tests.inference.test_predict_options import local_predictor


class ShapeRecorder(nn.Module):
    """Stands in for a compiled module: runs it eagerly and records every input shape."""

    def __init__(self, model: nn.Module, shapes: list[tuple[int, ...]]) -> None:
        super().__init__()
        self.model = model
        self.shapes = shapes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        return self.model(x)


@pytest.fixture
def shapes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    seen: list[tuple[int, ...]] = []
    monkeypatch.setattr(network_module, "_compiled", lambda m: ShapeRecorder(m, seen))
    return seen


def test_every_tile_batch_has_one_shape_and_the_masks_are_unchanged(shapes: list) -> None:
    # 80 × 112 in 32-px tiles at overlap 0.5: 4 rows × 6 columns = 24 tiles = 4 batches of 5
    # and one of 4 → padded to 5.
    image = np.random.default_rng(3).random((80, 112)).astype(np.float32)
    options = {"max_pixels": 0, "batch_size": 5, "overlap": 0.5}
    eager = local_predictor(**options)
    compiled = local_predictor(**options, compile=True)
    expected_mask, expected = eager.predict(image, return_probabilities=True)
    mask, got = compiled.predict(image, return_probabilities=True)
    assert shapes == [(5, 1, 32, 32)] * 5
    assert expected[1].std() > 1e-3  # probabilities that vary from pixel to pixel
    np.testing.assert_array_equal(mask, expected_mask)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_a_whole_image_is_not_padded(shapes: list) -> None:
    compiled = local_predictor(compile=True, batch_size=4)  # 48 × 40 ≤ max_pixels: whole
    image = np.random.default_rng(4).random((48, 40)).astype(np.float32)
    np.testing.assert_array_equal(
        compiled.predict(image), local_predictor(batch_size=4).predict(image)
    )
    assert shapes == [(1, 1, 48, 40)]


def test_off_by_default_compiles_nothing(shapes: list) -> None:
    local_predictor(max_pixels=0).predict(np.zeros((64, 64), np.float32))
    assert shapes == []


def test_compile_with_onnxruntime_is_a_clear_error(tmp_path) -> None:
    from tests.inference.run_factory import tiny_run

    run = tiny_run(tmp_path)
    with pytest.raises(DrunetError, match="--compile compiles the torch network"):
        Predictor.from_run(run, options=PredictOptions(compile=True), backend="onnxruntime")


class FailsToCompile(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise torch._dynamo.exc.TorchDynamoException("CppCompileError: g++ not found\nmore")


def test_a_failing_compile_is_one_line_naming_the_way_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(network_module, "_compiled", lambda m: FailsToCompile())
    predictor = local_predictor(compile=True)
    with pytest.raises(DrunetError) as caught:
        predictor.predict(np.zeros((32, 32), np.float32))
    message = str(caught.value)
    assert message == (
        "torch.compile failed (CppCompileError: g++ not found); predict without --compile "
        "(compile=False)"
    )


@pytest.mark.slow
def test_torch_compile_itself_gives_the_eager_masks() -> None:
    """The real compiler (inductor; ~30–60 s on 2 cores): same probabilities to float rounding."""
    image = np.random.default_rng(5).random((64, 96)).astype(np.float32)
    options = {"max_pixels": 0, "batch_size": 4, "precision": "fp32"}
    expected_mask, expected = local_predictor(**options).predict(image, return_probabilities=True)
    mask, got = local_predictor(**options, compile=True).predict(image, return_probabilities=True)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert np.mean(mask == expected_mask) > 0.999
