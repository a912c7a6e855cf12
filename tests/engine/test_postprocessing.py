"""The end of a run chooses the post-processing on validation and stores it with the run:
``config.yaml``, the config inside best and last weights, ``postprocess.json``; prediction then
applies it by default and an explicit option overrides it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from drunet.checkpoint import read_weights
from drunet.config import load_config
from drunet.engine.train import RunResult, train
from drunet.engine.trainer import Trainer
from drunet.inference import PostprocessOptions, PredictOptions, Predictor
from tests.engine.test_train import tiny_config


def _square(top: int, left: int, side: int, size: int = 12) -> torch.Tensor:
    mask = torch.zeros(size, size, dtype=torch.int64)
    mask[top : top + side, left : left + side] = 1
    return mask


def _scripted(pairs: list[tuple[torch.Tensor, torch.Tensor]]):
    def predictions(self: Trainer, model: nn.Module) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        yield from pairs

    return predictions


@pytest.fixture(scope="module")
def chosen(binary_data: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """A run whose validation 'predictions' are one 16-px square, found, plus a 1-px false
    object: removing objects under 16 px raises the per-image Dice from 32/33 to 1."""
    truth = _square(2, 2, 4)
    pred = truth.clone()
    pred[10, 10] = 1
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "validation_predictions", _scripted([(pred, truth)]))
        runs = tmp_path_factory.mktemp("runs")
        return train(tiny_config(binary_data, runs, name="chosen", train={"epochs": 1}))


def test_the_choice_is_stored_with_the_run(chosen: RunResult) -> None:
    selection = chosen.postprocessing
    assert selection is not None and selection.baseline == pytest.approx(32 / 33)
    assert selection.values == {
        "postprocess.min_size": 16,
        "postprocess.fill_holes": False,
        "postprocess.largest_component": False,
        "postprocess.empty_below": 0,
    }
    config = load_config(chosen.run_dir / "config.yaml")
    assert config == chosen.config and config.postprocess.min_size == 16
    assert config.postprocess.select is True
    for weights in ("best.safetensors", "last.safetensors"):
        assert read_weights(chosen.run_dir / weights)[1] == config
    stored = json.loads((chosen.run_dir / "postprocess.json").read_text())
    assert stored == selection.to_json() and stored["score"] == 1.0


def test_prediction_applies_the_runs_choice_unless_told_otherwise(chosen: RunResult) -> None:
    scores = torch.zeros(1, 12, 12)  # (K', H, W): the foreground probability of a binary model
    scores[0, 2:6, 2:6] = 0.9  # a 16-px object
    scores[0, 10, 10] = 0.9  # a 1-px object
    predictor = Predictor.from_run(chosen.run_dir, device="cpu")
    assert predictor.postprocess.min_size == 16
    np.testing.assert_array_equal(predictor.finish(scores).mask, _square(2, 2, 4).numpy())
    off = PredictOptions(postprocess=PostprocessOptions(min_size=0))
    mask = Predictor.from_run(chosen.run_dir, device="cpu", options=off).finish(scores).mask
    assert mask.sum() == 17 and mask[10, 10] == 1


def test_select_false_keeps_the_configured_values(binary_data: Path, tmp_path: Path) -> None:
    post = {"select": False, "min_size": 7, "fill_holes": True}
    result = train(tiny_config(binary_data, tmp_path, postprocess=post, train={"epochs": 1}))
    assert result.postprocessing is None
    assert not (result.run_dir / "postprocess.json").exists()
    config = load_config(result.run_dir / "config.yaml")
    assert (config.postprocess.min_size, config.postprocess.fill_holes) == (7, True)
    predictor = Predictor.from_run(result.run_dir, device="cpu")
    assert (predictor.postprocess.min_size, predictor.postprocess.fill_holes) == (7, True)
