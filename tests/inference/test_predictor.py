"""The Predictor: the run's own preprocessing, known-answer masks, probabilities, loading runs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from drunet.checkpoint import build_model, save_weights
from drunet.config import ExperimentConfig, config_from_dict
from drunet.datasets import write_image
from drunet.errors import DrunetError
from drunet.inference import Predictor
from tests.conftest import TINY_PARAMS, randomise_batch_norms


def make_config(
    in_channels: int = 1,
    num_classes: int = 2,
    mean: list[float] | None = None,
    std: list[float] | None = None,
) -> ExperimentConfig:
    return config_from_dict(
        {
            "model": {
                "in_channels": in_channels,
                "num_classes": num_classes,
                "params": TINY_PARAMS,
            },
            "data": {
                "normalization": {
                    "mean": mean if mean is not None else [0.0] * in_channels,
                    "std": std if std is not None else [1.0] * in_channels,
                    "clip_percentiles": None,
                }
            },
        }
    )


class MinusHalf(nn.Module):
    """Logit = normalised pixel − 0.5: with mean 0 / std 1, foreground where image/255 > 0.5."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - 0.5


class ThreeWay(nn.Module):
    """Three classes from one channel x: logits (0.61, x, 1 − x).

    Class 1 where x > 0.61, class 2 where x < 0.39, background in between.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.full_like(x, 0.61), x, 1 - x], dim=1)


def tiny_predictor(num_classes: int = 2, in_channels: int = 1, seed: int = 0) -> Predictor:
    torch.manual_seed(seed)
    config = make_config(in_channels, num_classes, [0.4] * in_channels, [0.2] * in_channels)
    return Predictor(build_model(config), config)


GRADIENT = np.arange(256, dtype=np.uint8).reshape(16, 16)


# ---------------------------------------------------------------- preprocessing


def test_preprocess_normalises_gray_by_hand() -> None:
    predictor = Predictor(MinusHalf(), make_config(mean=[0.2], std=[0.4]))
    image = np.array([[0, 51], [102, 255]], dtype=np.uint8)  # 0, 0.2, 0.4, 1.0
    x = predictor.preprocess(image)
    assert x.dtype == torch.float32 and x.shape == (1, 1, 2, 2)
    expected = [[[[-0.5, 0.0], [0.5, 2.0]]]]  # (v - 0.2) / 0.4
    torch.testing.assert_close(x, torch.tensor(expected), atol=1e-6, rtol=0)


def test_preprocess_normalises_each_channel_by_hand() -> None:
    predictor = Predictor(MinusHalf(), make_config(2, mean=[0.5, 0.25], std=[0.25, 0.5]))
    image = np.zeros((1, 2, 2), dtype=np.uint16)
    image[0, :, 0] = [0, 65535]
    image[0, :, 1] = [65535, 0]
    x = predictor.preprocess(image)
    assert x.shape == (1, 2, 1, 2)
    # Channel 0: (0 - 0.5) / 0.25, (1 - 0.5) / 0.25; channel 1: (1 - 0.25) / 0.5, (0 - 0.25) / 0.5.
    torch.testing.assert_close(x, torch.tensor([[[[-2.0, 2.0]], [[1.5, -0.5]]]]), atol=1e-6, rtol=0)


def test_wrong_channel_count_names_both_counts() -> None:
    predictor = Predictor(MinusHalf(), make_config(1))
    with pytest.raises(DrunetError, match=r"scan\.png has 3 channel\(s\).*trained on 1"):
        predictor.preprocess(np.zeros((4, 4, 3), np.uint8), source="scan.png")
    rgb_predictor = Predictor(MinusHalf(), make_config(3))
    with pytest.raises(DrunetError, match=r"has 1 channel\(s\).*trained on 3"):
        rgb_predictor.predict(np.zeros((4, 4), np.uint8))


def test_config_without_normalisation_is_refused() -> None:
    config = make_config()
    config.data.normalization.mean = None
    with pytest.raises(DrunetError, match="normalisation"):
        Predictor(MinusHalf(), config)


# ---------------------------------------------------------------- known answers


def test_binary_mask_is_exactly_image_over_half() -> None:
    predictor = Predictor(MinusHalf(), make_config())
    mask = predictor.predict(GRADIENT)
    assert mask.dtype == np.uint8 and mask.shape == (16, 16)
    np.testing.assert_array_equal(mask, (GRADIENT / 255 > 0.5).astype(np.uint8))
    assert mask.sum() == 128  # pixel values 128 … 255


def test_binary_probabilities_are_the_sigmoid_of_the_logit() -> None:
    predictor = Predictor(MinusHalf(), make_config())
    probs = predictor.predict_probabilities(GRADIENT)
    assert probs.dtype == np.float32 and probs.shape == (2, 16, 16)
    foreground = 1 / (1 + np.exp(-(GRADIENT / 255 - 0.5)))
    np.testing.assert_allclose(probs[1], foreground, atol=1e-6)
    np.testing.assert_allclose(probs[0], 1 - foreground, atol=1e-6)


def test_multiclass_mask_by_hand() -> None:
    predictor = Predictor(ThreeWay(), make_config(num_classes=3))
    mask = predictor.predict(GRADIENT)
    x = GRADIENT / 255
    expected = np.where(x > 0.61, 1, np.where(x < 0.39, 2, 0))
    np.testing.assert_array_equal(mask, expected)
    assert set(np.unique(mask)) == {0, 1, 2}
    probs = predictor.predict_probabilities(GRADIENT)
    assert probs.shape == (3, 16, 16)
    logits = np.stack([np.full_like(x, 0.61), x, 1 - x])
    softmax = np.exp(logits) / np.exp(logits).sum(axis=0)
    np.testing.assert_allclose(probs, softmax, atol=1e-6)


def test_more_than_256_classes_gives_a_uint16_mask() -> None:
    class Highest(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.arange(300.0).view(1, 300, 1, 1).expand(1, 300, *x.shape[2:])

    predictor = Predictor(Highest(), make_config(num_classes=300))
    mask = predictor.predict(np.zeros((3, 2), np.uint8))
    assert mask.dtype == np.uint16
    np.testing.assert_array_equal(mask, np.full((3, 2), 299))


# ---------------------------------------------------------------- a real tiny model


@pytest.mark.parametrize("size", [(37, 23), (17, 64), (1, 5)])
def test_predict_keeps_odd_input_sizes(size: tuple[int, int]) -> None:
    predictor = tiny_predictor()
    image = np.random.default_rng(0).integers(0, 256, size=size, dtype=np.uint8)
    mask = predictor.predict(image)
    assert mask.shape == size and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1}


def test_binary_prediction_matches_positive_logits() -> None:
    predictor = tiny_predictor(seed=1)
    image = np.random.default_rng(1).integers(0, 256, size=(29, 31, 1), dtype=np.uint8)
    with torch.no_grad():
        logits = predictor.model(predictor.preprocess(image))[0, 0].numpy()
    np.testing.assert_array_equal(predictor.predict(image), (logits > 0).astype(np.uint8))


@pytest.mark.parametrize("num_classes", [2, 4])
def test_probabilities_sum_to_one(num_classes: int) -> None:
    predictor = tiny_predictor(num_classes=num_classes, in_channels=3)
    image = np.random.default_rng(2).integers(0, 256, size=(21, 26, 3), dtype=np.uint8)
    probs = predictor.predict_probabilities(image)
    assert probs.shape == (num_classes, 21, 26)
    assert probs.min() >= 0.0 and probs.max() <= 1.0
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-6)
    np.testing.assert_array_equal(predictor.predict(image), probs.argmax(axis=0))


def test_predict_reads_a_path_like_the_array(tmp_path: Path) -> None:
    predictor = tiny_predictor(seed=3)
    image = np.random.default_rng(3).integers(0, 256, size=(19, 22), dtype=np.uint8)
    write_image(tmp_path / "im.png", image)
    expected = predictor.predict(image)
    np.testing.assert_array_equal(predictor.predict(tmp_path / "im.png"), expected)
    np.testing.assert_array_equal(predictor.predict(str(tmp_path / "im.png")), expected)


def test_predict_names_a_file_with_the_wrong_channel_count(tmp_path: Path) -> None:
    predictor = tiny_predictor()
    path = tmp_path / "colour.png"
    write_image(path, np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DrunetError, match=r"colour\.png has 3 channel"):
        predictor.predict(path)


# ---------------------------------------------------------------- loading a run


def _saved_run(root: Path, name: str, seed: int, num_classes: int = 2) -> tuple[Path, Predictor]:
    torch.manual_seed(seed)
    config = make_config(1, num_classes, [0.3], [0.25])
    model = build_model(config).eval()
    run = root / name
    save_weights(run / "best.safetensors", model, config)
    return run, Predictor(model, config)


def test_from_run_folder_file_and_latest(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    old_run, old = _saved_run(runs, "old", seed=0)
    new_run, new = _saved_run(runs, "new", seed=1, num_classes=3)
    stamp = 1_700_000_000
    os.utime(old_run / "best.safetensors", (stamp, stamp))
    os.utime(new_run / "best.safetensors", (stamp + 10, stamp + 10))
    image = np.random.default_rng(4).integers(0, 256, size=(23, 18), dtype=np.uint8)

    by_folder = Predictor.from_run(old_run)
    assert by_folder.weights_path == old_run / "best.safetensors"
    assert (by_folder.in_channels, by_folder.num_classes) == (1, 2)
    np.testing.assert_allclose(by_folder.normalization.mean, [0.3])
    np.testing.assert_allclose(by_folder.normalization.std, [0.25])
    np.testing.assert_array_equal(by_folder.predict(image), old.predict(image))

    by_file = Predictor.from_run(old_run / "best.safetensors")
    np.testing.assert_array_equal(
        by_file.predict_probabilities(image), old.predict_probabilities(image)
    )

    latest = Predictor.from_run(None, runs_dir=runs)
    assert latest.weights_path == new_run / "best.safetensors"
    assert latest.num_classes == 3
    np.testing.assert_array_equal(latest.predict(image), new.predict(image))


def test_from_run_with_nothing_to_load_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DrunetError, match="no trained run"):
        Predictor.from_run(None, runs_dir=tmp_path / "runs")
    with pytest.raises(DrunetError, match="no such run folder"):
        Predictor.from_run(tmp_path / "missing")


def test_prediction_runs_the_bn_folded_network_with_the_same_probabilities() -> None:
    torch.manual_seed(0)
    # Trained-looking statistics, so folding changes the weights.
    model = randomise_batch_norms(build_model(make_config()).eval())
    predictor = Predictor(model, make_config())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in predictor.net.fused[0].modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in predictor.model.modules())  # untouched
    image = np.random.default_rng(0).integers(0, 256, (37, 53), dtype=np.uint8)
    probs = predictor.predict_probabilities(image)[1]
    x = torch.from_numpy(image.astype(np.float32) / 255.0)[None, None]
    with torch.no_grad():
        expected = torch.sigmoid(model(x))[0, 0].numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)
