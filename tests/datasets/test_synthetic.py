"""``make_synthetic`` is seeded byte for byte and holds learnable, balanced, complete classes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from drunet.datasets import (
    Pair,
    discover,
    make_synthetic,
    read_image,
    read_mask,
    verify_dataset,
)


def _pairs(root: Path) -> list[Pair]:
    return sorted(discover(root).pairs, key=lambda p: p.name)


def _file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


@pytest.fixture(scope="module")
def binary_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("synthetic") / "data")


def test_default_layout_and_sizes(binary_root):
    pairs = _pairs(binary_root)
    assert len(pairs) == 48
    assert pairs[0].image.name == "000.png" and pairs[-1].mask.name == "047.png"
    sizes = [(128, 128), (160, 192), (192, 160)]
    for i, pair in enumerate(pairs[:6]):
        image = read_image(pair.image)
        assert image.dtype == np.uint8 and image.shape == (*sizes[i % 3], 1)
        assert read_mask(pair.mask).shape == sizes[i % 3]


def test_same_seed_gives_identical_bytes_and_other_seeds_differ(tmp_path):
    first = make_synthetic(tmp_path / "a", num_images=4, seed=7)
    again = make_synthetic(tmp_path / "b", num_images=4, seed=7)
    other = make_synthetic(tmp_path / "c", num_images=4, seed=8)
    assert _file_bytes(first) == _file_bytes(again)
    a, c = _file_bytes(first), _file_bytes(other)
    assert a.keys() == c.keys() and all(a[name] != c[name] for name in a)


def test_binary_masks_are_zero_one_with_a_sensible_foreground_share(binary_root):
    for pair in _pairs(binary_root):
        stored = cv2.imdecode(np.fromfile(pair.mask, np.uint8), cv2.IMREAD_UNCHANGED)
        assert set(np.unique(stored).tolist()) == {0, 1}  # 0/1 on disk, not 0/255
        mask = read_mask(pair.mask)
        assert 0.10 <= mask.mean() <= 0.50


def test_binary_statistics(binary_root):
    report = verify_dataset(binary_root)
    assert report.ok and report.summary is not None and report.summary.normalization is not None
    summary = report.summary
    assert summary.channels == 1 and summary.num_classes == 2
    assert 0.15 <= summary.class_frequencies[1] <= 0.45
    assert 0.05 < summary.normalization.std[0] < 0.4  # textured, noisy: neither flat nor saturated


def test_a_global_threshold_is_not_enough(binary_root):
    accuracies = []
    for pair in _pairs(binary_root)[:12]:
        image, foreground = read_image(pair.image)[:, :, 0], read_mask(pair.mask) == 1
        best = max(((image > t) == foreground).mean() for t in range(0, 256, 2))
        accuracies.append(best)
    assert 0.6 < float(np.mean(accuracies)) < 0.97


def test_every_image_holds_every_class(tmp_path):
    root = make_synthetic(tmp_path / "multi", num_images=12, num_classes=3)
    for pair in _pairs(root):
        assert set(np.unique(read_mask(pair.mask)).tolist()) == {0, 1, 2}


def test_requested_sizes_and_colour(tmp_path):
    root = make_synthetic(
        tmp_path / "rgb", num_images=5, num_classes=4, sizes=[(40, 50), (64, 32)], channels=3
    )
    pairs = _pairs(root)
    assert len(pairs) == 5
    for i, pair in enumerate(pairs):
        expected = [(40, 50), (64, 32)][i % 2]
        image = read_image(pair.image)
        assert image.shape == (*expected, 3)
        assert not np.array_equal(image[..., 0], image[..., 2])  # really coloured
        assert read_mask(pair.mask).shape == expected
        assert set(np.unique(read_mask(pair.mask)).tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize(
    "kwargs",
    [{"num_images": 0}, {"num_classes": 1}, {"channels": 2}, {"sizes": []}, {"sizes": [(8, 8)]}],
)
def test_bad_arguments_are_rejected(tmp_path, kwargs):
    with pytest.raises(ValueError):
        make_synthetic(tmp_path, **kwargs)
