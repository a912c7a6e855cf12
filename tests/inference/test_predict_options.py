"""The Predictor's options: whole image vs sliding window, batching, TTA and post-processing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from drunet.checkpoint import build_model
from drunet.config import ExperimentConfig, config_from_dict
from drunet.errors import DrunetError
from drunet.inference import PostprocessOptions, PredictOptions, Predictor
from drunet.sliding import tile_grid
from tests.conftest import randomise_batch_norms
from tests.inference.test_predictor import GRADIENT, MinusHalf, ThreeWay, make_config

# A DRUNet without SE attention (whose global average would make every output pixel depend on
# the whole input): each output pixel sees only a window of the input. Receptive-field radius
# of depth 2, one block per stage: stem 2 + level 1 (2 × 2 px) + bottleneck (2 × 4 px) + back
# up (4 + 2 px), + 3 px of pooling alignment; 25 is a safe bound.
LOCAL = {
    "init_features": 4,
    "depth": 2,
    "blocks_per_stage": 1,
    "conv_after_block": True,
    "se_reduction": 0,
}
LOCAL_RADIUS = 25


def config_with(
    params: dict | None = None, in_channels: int = 1, patch_size: int = 32, num_classes: int = 2
) -> ExperimentConfig:
    return config_from_dict(
        {
            "model": {
                "in_channels": in_channels,
                "num_classes": num_classes,
                "params": params or LOCAL,
            },
            "data": {
                "normalization": {
                    "mean": [0.5] * in_channels,
                    "std": [0.25] * in_channels,
                    "clip_percentiles": None,
                },
                "augmentation": {"patch_size": patch_size},
            },
        }
    )


def local_predictor(**options: object) -> Predictor:
    torch.manual_seed(0)
    config = config_with()
    model = randomise_batch_norms(build_model(config).eval())  # eval mode must matter
    return Predictor(model, config, options=PredictOptions(**options))


class Counting(nn.Module):
    """MinusHalf that records the batch shape of every forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(x.shape))
        return x - 0.5


def rng_image(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


# ---------------------------------------------------------------- options and defaults


def test_tile_size_defaults_to_the_training_patch_size() -> None:
    predictor = Predictor(MinusHalf(), config_with(patch_size=48))
    assert predictor.tile_size == 48
    assert predictor.with_options(tile_size=96).tile_size == 96
    assert predictor.options.overlap == 0.5 and predictor.options.max_pixels == 1024 * 1024


def test_whole_or_tiled_by_size() -> None:
    predictor = Predictor(MinusHalf(), config_with(patch_size=32), options=PredictOptions())
    assert predictor.fits_whole(1024, 1024) and not predictor.fits_whole(1025, 1024)
    tiling = predictor.with_options(max_pixels=0)
    assert tiling.fits_whole(32, 32) and not tiling.fits_whole(33, 32)  # one tile: whole
    assert predictor.images_per_batch(64, 64) == 4  # batch_size
    assert predictor.with_options(max_pixels=10_000).images_per_batch(64, 64) == 2  # pixels


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"overlap": 1.0}, "overlap"),
        ({"tile_size": 4}, "tile_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_pixels": -1}, "max_pixels"),
        ({"blend": "median"}, "blend"),
    ],
)
def test_bad_options_name_the_value(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PredictOptions(**kwargs)


# ---------------------------------------------------------------- tiled vs whole


def test_a_pixelwise_model_gives_the_same_answer_tiled() -> None:
    image = rng_image(0, 70, 45)
    whole = Predictor(MinusHalf(), make_config())
    tiled = Predictor(
        MinusHalf(), make_config(), options=PredictOptions(tile_size=16, max_pixels=0)
    )
    assert whole.fits_whole(70, 45) and not tiled.fits_whole(70, 45)
    np.testing.assert_allclose(
        tiled.predict_probabilities(image), whole.predict_probabilities(image), atol=1e-6
    )
    np.testing.assert_array_equal(tiled.predict(image), (image / 255 > 0.5).astype(np.uint8))


def test_an_image_within_one_tile_is_predicted_exactly_as_whole() -> None:
    image = rng_image(1, 30, 27)
    whole = local_predictor()
    tiled = whole.with_options(max_pixels=0)  # the tile (32) holds the image: one tile
    assert torch.equal(
        torch.from_numpy(tiled.predict_probabilities(image)),
        torch.from_numpy(whole.predict_probabilities(image)),
    )


def _agreeing_region(height: int, width: int, tile: int, overlap: float) -> np.ndarray:
    """Pixels whose receptive field lies inside every tile that covers them (image borders are
    borders for the whole image too)."""
    grid = tile_grid(height, width, (tile, tile), overlap)

    def ok(size: int, starts: list[int]) -> np.ndarray:
        good = np.ones(size, dtype=bool)
        for p in range(size):
            low, high = max(0, p - LOCAL_RADIUS), min(size - 1, p + LOCAL_RADIUS)
            good[p] = all(s <= low and high < s + tile for s in starts if s <= p < s + tile)
        return good

    rows = ok(height, sorted({r.start for r, _ in grid}))
    cols = ok(width, sorted({c.start for _, c in grid}))
    return rows[:, None] & cols[None, :]


def test_tiled_and_whole_agree_wherever_the_receptive_field_fits_in_the_tiles() -> None:
    # 256 × 320 with 128-pixel tiles at half overlap: tile starts 0, 64, 128 (192) are multiples
    # of the network's down-sampling factor 4, so tiles see the same pooling grid as the whole
    # image. A pixel then gets the whole-image value from every tile that contains its receptive
    # field; where all its tiles do, the blend equals the whole-image prediction.
    image = rng_image(2, 256, 320)
    whole = local_predictor(tile_size=128)
    tiled = whole.with_options(max_pixels=0)
    p_whole = whole.predict_probabilities(image)[1]
    p_tiled = tiled.predict_probabilities(image)[1]
    region = _agreeing_region(256, 320, 128, 0.5)
    assert 0.3 < region.mean() < 0.4  # about a third of the image: a real test
    np.testing.assert_allclose(p_tiled[region], p_whole[region], rtol=0, atol=1e-5)
    # Elsewhere tile borders cut the context; the masks still agree almost everywhere.
    assert (tiled.predict(image) == whole.predict(image)).mean() > 0.99


def test_large_rgb_image_is_tiled_to_a_full_size_mask() -> None:
    torch.manual_seed(0)
    config = config_with(in_channels=3, patch_size=32)
    predictor = Predictor(build_model(config), config, options=PredictOptions(max_pixels=10_000))
    image = rng_image(3, 150, 230, 3)
    seen: list[tuple[int, int]] = []
    mask, probs = predictor.predict(
        image, return_probabilities=True, on_progress=lambda *a: seen.append(a)
    )
    assert mask.shape == (150, 230) and mask.dtype == np.uint8
    assert probs.shape == (2, 150, 230) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-6)
    np.testing.assert_array_equal(mask, (probs[1] > 0.5).astype(np.uint8))
    tiles = len(tile_grid(150, 230, (32, 32), 0.5))
    assert seen[-1] == (tiles, tiles) and tiles == 9 * 14


# ---------------------------------------------------------------- batching


def test_same_sized_images_share_forward_passes() -> None:
    model = Counting()
    predictor = Predictor(model, make_config(), options=PredictOptions(batch_size=3))
    images = [rng_image(i, 8, 10) for i in range(4)] + [rng_image(9, 12, 5)]
    results = predictor.predict_batch(images)
    assert model.calls == [(3, 1, 8, 10), (1, 1, 8, 10), (1, 1, 12, 5)]
    for image, result in zip(images, results, strict=True):
        np.testing.assert_array_equal(result.mask, (image / 255 > 0.5).astype(np.uint8))
        assert result.probabilities is None


def test_batched_and_single_predictions_agree_with_a_real_model() -> None:
    predictor = local_predictor()
    images = [rng_image(10 + i, 24, 40) for i in range(3)]
    batched = predictor.predict_batch(images, return_probabilities=True)
    for image, result in zip(images, batched, strict=True):
        mask, probs = predictor.with_options(batch_size=1).predict(image, return_probabilities=True)
        np.testing.assert_allclose(result.probabilities, probs, atol=1e-5)
        np.testing.assert_array_equal(result.mask, mask)


def test_a_bad_image_in_a_batch_is_named_before_any_work() -> None:
    model = Counting()
    predictor = Predictor(model, make_config())
    images = [rng_image(0, 8, 8), rng_image(1, 8, 8, 3)]
    with pytest.raises(DrunetError, match=r"b\.png has 3 channel"):
        predictor.predict_batch(images, sources=["a.png", "b.png"])
    assert model.calls == []


# ---------------------------------------------------------------- TTA and post-processing


def test_tta_leaves_a_symmetric_model_unchanged() -> None:
    plain = Predictor(MinusHalf(), make_config())
    tta = plain.with_options(tta_flips=True, tta_rot90=True)
    np.testing.assert_allclose(
        tta.predict_probabilities(GRADIENT), plain.predict_probabilities(GRADIENT), atol=1e-6
    )


def test_tta_averages_probabilities_of_an_asymmetric_model_by_hand() -> None:
    class ColumnLogit(nn.Module):
        """Logit = column index − 2 (ignores the pixels)."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            columns = torch.arange(x.shape[3], dtype=torch.float32) - 2
            return columns.expand(x.shape[0], 1, *x.shape[2:])

    predictor = Predictor(ColumnLogit(), make_config(), options=PredictOptions(tta_flips=True))
    probs = predictor.predict_probabilities(np.zeros((3, 6), np.uint8))
    j = np.arange(6)
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    # Identity and v-flip see column j; h-flip and both flips see column 5 - j.
    expected = (sigmoid(j - 2) + sigmoid(5 - j - 2)) / 2
    np.testing.assert_allclose(probs[1], np.broadcast_to(expected, (3, 6)), atol=1e-6)


def test_threshold_and_cleanups_through_the_predictor() -> None:
    image = np.zeros((12, 12), np.uint8)
    image[1:6, 1:6] = 255  # a 5×5 square with a hole
    image[3, 3] = 0
    image[9, 9] = 200  # a lone bright pixel, 200/255 - 0.5 = 0.284 → p = 0.57
    plain = Predictor(MinusHalf(), make_config())
    assert plain.predict(image).sum() == 24 + 1
    strict = plain.with_options(postprocess=PostprocessOptions(threshold=0.6))
    assert strict.predict(image).sum() == 24  # p(255) = 0.62 > 0.6 > 0.57
    clean = plain.with_options(postprocess=PostprocessOptions(min_size=2, fill_holes=True))
    expected = np.zeros((12, 12), np.uint8)
    expected[1:6, 1:6] = 1
    np.testing.assert_array_equal(clean.predict(image), expected)


def test_a_threshold_on_a_multiclass_model_is_a_user_error() -> None:
    predictor = Predictor(
        ThreeWay(),
        make_config(num_classes=3),
        options=PredictOptions(postprocess=PostprocessOptions(threshold=0.3)),
    )
    with pytest.raises(DrunetError, match="binary models only"):
        predictor.predict(GRADIENT)
