"""Ensembles: the mask is the argmax of the averaged probabilities; mismatched runs are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from drunet.checkpoint import build_model, save_config_and_weights
from drunet.config import ExperimentConfig, config_from_dict
from drunet.errors import DrunetError
from drunet.inference import Predictor
from tests.conftest import TINY_PARAMS


def config(num_classes: int = 3, in_channels: int = 1, mean: float = 0.2) -> ExperimentConfig:
    return config_from_dict(
        {
            "model": {
                "in_channels": in_channels,
                "num_classes": num_classes,
                "params": TINY_PARAMS,
            },
            "data": {"normalization": {"mean": [mean] * in_channels, "std": [0.3] * in_channels}},
        }
    )


def run(tmp_path: Path, name: str, seed: int, **kwargs: object) -> Path:
    cfg = config(**kwargs)  # type: ignore[arg-type]
    torch.manual_seed(seed)
    model = build_model(cfg)
    model.train()
    with torch.no_grad():  # move BatchNorm statistics off their defaults
        model(torch.randn(2, cfg.model.spec().in_channels, 16, 16))
    save_config_and_weights(tmp_path / name, "best.safetensors", model.eval(), cfg)
    return tmp_path / name


def test_the_mask_is_the_argmax_of_the_averaged_probabilities(tmp_path: Path) -> None:
    a, b = run(tmp_path, "a", seed=1), run(tmp_path, "b", seed=2)
    image = (np.random.default_rng(0).random((30, 26)) * 255).astype(np.uint8)
    probs_a = Predictor.from_run(a, device="cpu").predict_probabilities(image)
    probs_b = Predictor.from_run(b, device="cpu").predict_probabilities(image)
    ensemble = Predictor.from_runs([a, b], device="cpu")
    mask, probs = ensemble.predict(image, return_probabilities=True)
    np.testing.assert_allclose(probs, (probs_a + probs_b) / 2, atol=1e-6)
    np.testing.assert_array_equal(mask, np.argmax((probs_a + probs_b) / 2, axis=0))
    # Not trivially one member's answer: the members disagree somewhere.
    assert (np.argmax(probs_a, 0) != np.argmax(probs_b, 0)).any()


@pytest.mark.parametrize(
    ("other", "why"),
    [
        ({"num_classes": 4}, "3 vs 4 classes"),
        ({"in_channels": 3}, "1 vs 3 input channels"),
        ({"mean": 0.5}, "normalisation differs"),
    ],
)
def test_runs_that_disagree_are_named(tmp_path: Path, other: dict, why: str) -> None:
    a, b = run(tmp_path, "a", seed=1), run(tmp_path, "b", seed=2, **other)
    with pytest.raises(DrunetError, match=why) as info:
        Predictor.from_runs([a, b], device="cpu")
    assert str(a) in str(info.value) and str(b) in str(info.value)
