"""2.5D context end to end: train on a 12-page stack with context_slices 1, predict the stack."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from drunet import train
from drunet.config import config_from_dict, load_config
from drunet.datasets import Pair, read_image
from drunet.datasets.synthetic import make_synthetic
from drunet.errors import DrunetError
from drunet.inference import Predictor
from tests.conftest import tiny_recipe

PAGES = 12


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(run folder, stack) of a tiny DRUNet trained with one neighbour on each side."""
    tmp = tmp_path_factory.mktemp("context")
    root = make_synthetic(tmp / "data", PAGES, sizes=((40, 48),), stack_slices=PAGES)
    recipe = tiny_recipe(
        data={"root": str(root), "context_slices": 1}, runs_dir=str(tmp / "runs"), name="ctx"
    )
    result = train(config_from_dict(recipe))
    return result.run_dir, root / "images" / "stack00.tif"


def _by_hand(stack: Path, page: int) -> np.ndarray:
    """Pages page-1, page, page+1 (clamped) stacked along channels: (H, W, 3)."""
    pages = [min(max(page + d, 0), PAGES - 1) for d in (-1, 0, 1)]
    return np.concatenate([read_image(stack, page=p) for p in pages], axis=2)


def test_the_run_stores_context_and_the_channels_it_implies(trained):
    run_dir, _ = trained
    config = load_config(run_dir / "config.yaml")
    assert config.data.context_slices == 1
    assert config.model.in_channels == 3
    assert config.data.normalization.channels == 1


def test_predict_stack_feeds_each_page_with_its_neighbours(trained):
    run_dir, stack = trained
    predictor = Predictor.from_run(run_dir, device="cpu")
    masks = predictor.predict_stack(stack)
    assert masks.shape == (PAGES, 40, 48)
    for page in range(PAGES):
        np.testing.assert_array_equal(masks[page], predictor.predict(_by_hand(stack, page)))
    with_neighbours = _by_hand(stack, 5)
    centre_only = np.repeat(with_neighbours[:, :, 1:2], 3, axis=2)
    probs = [predictor.predict_probabilities(x) for x in (with_neighbours, centre_only)]
    assert not np.allclose(probs[0], probs[1])  # the neighbours do reach the network


def test_a_folder_of_numbered_slices_predicts_like_the_stack(trained, tmp_path):
    run_dir, stack = trained
    predictor = Predictor.from_run(run_dir, device="cpu")
    for page in range(PAGES):
        cv2.imwrite(str(tmp_path / f"{page}.png"), read_image(stack, page=page))
    expected = predictor.predict_stack(stack)
    np.testing.assert_array_equal(predictor.predict_slices(tmp_path), expected)
    files = [tmp_path / f"{page}.png" for page in range(PAGES)]
    np.testing.assert_array_equal(predictor.predict_slices(files), expected)


def test_a_lone_slice_is_an_error_naming_the_reason(trained):
    run_dir, stack = trained
    predictor = Predictor.from_run(run_dir, device="cpu")
    with pytest.raises(DrunetError, match=r"one slice.*context_slices=1.*neighbour"):
        predictor.predict(read_image(stack, page=3))
    with pytest.raises(DrunetError, match="not a folder of numbered slices"):
        predictor.predict_slices(stack.parent.parent)


def test_with_context_gives_evaluation_the_training_input(trained):
    run_dir, stack = trained
    predictor = Predictor.from_run(run_dir, device="cpu")
    pair = Pair(stack, stack.parent.parent / "masks" / stack.name, page=PAGES - 1)
    np.testing.assert_array_equal(predictor.with_context(pair), _by_hand(stack, PAGES - 1))


def test_runs_with_other_context_do_not_ensemble():
    from drunet.inference.network import disagreement

    def config(k: int):
        model = {"in_channels": 3, "num_classes": 2}
        return config_from_dict(tiny_recipe(model=model, data={"context_slices": k}))

    assert disagreement(config(1), config(1)) is None
    assert "context_slices 1 vs 0" in (disagreement(config(1), config(0)) or "")
