"""Issue 25, class 1: work and memory a value implies are bounded when settings are validated.

The bounds (``drunet.bounds``) are derived from the machine; tests pin the machine's memory
(``machine_memory``) and the pixel limit so that the expected answers are hand-computed.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drunet import bounds
from drunet.config import config_from_dict
from drunet.errors import ConfigError, DrunetError
from drunet.inference.options import PredictOptions
from tests.robustness.conftest import assert_user_error, invoke

GIB = 2**30


@pytest.fixture
def four_gib(monkeypatch) -> None:
    """A 4 GiB machine: one batch may hold 2 GiB / 1 KiB = 2,097,152 pixels (= 32 × 256²)."""
    monkeypatch.setattr(bounds, "machine_memory", lambda: 4 * GIB)


def training(batch: int, patch: int, folds: int = 5, epochs: int = 20, context: int = 0):
    data = {"batch_size": batch, "augmentation": {"patch_size": patch}, "context_slices": context}
    data["layout"] = {"folds": folds}
    return config_from_dict({"data": data, "train": {"epochs": epochs}}, source="test")


def test_machine_memory_is_the_lower_of_physical_memory_and_ulimit(monkeypatch) -> None:
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    monkeypatch.setattr(resource, "getrlimit", lambda _: (resource.RLIM_INFINITY,) * 2)
    assert bounds.machine_memory() == physical
    monkeypatch.setattr(resource, "getrlimit", lambda _: (4_000_000 * 1024, -1))
    assert bounds.machine_memory() == min(physical, 4_096_000_000)


def test_a_training_batch_up_to_half_the_memory_is_accepted(four_gib) -> None:
    assert bounds.batch_pixel_bound() == 2_097_152
    assert training(32, 256).data.batch_size == 32  # exactly 2,097,152 pixels
    with pytest.raises(ConfigError) as err:
        training(33, 256)
    message = str(err.value)
    assert "data.batch_size × data.augmentation.patch_size² = 33 × 256²" in message
    assert "2.16e+06 pixels" in message and "more than 2,097,152" in message
    assert "half of this machine's 4 GiB at 1024 bytes per pixel" in message
    assert message.endswith("lower data.batch_size or data.augmentation.patch_size")


def test_weights_trained_beyond_this_machine_s_batch_bound_still_load(four_gib, tmp_path) -> None:
    # Trained elsewhere with 64 × 256² (twice this machine's training bound): prediction and
    # export read the stored configuration without refusing it; training with it is refused.
    from drunet.checkpoint import build_model, load_model, save_weights
    from drunet.config import config_to_dict

    recipe = {"model": {"in_channels": 1, "num_classes": 2, "params": {"init_features": 4}}}
    small = config_from_dict({**recipe, "data": {"batch_size": 2}}, source="test")
    stored = config_to_dict(small)
    stored["data"]["batch_size"] = 64
    with pytest.raises(ConfigError, match="64 × 256²"):
        config_from_dict(stored, source="test")
    trained = config_from_dict(stored, source="weights", stored=True)
    assert trained.data.batch_size == 64
    save_weights(tmp_path / "w.safetensors", build_model(small), trained)
    model, config = load_model(tmp_path / "w.safetensors")
    assert config.data.batch_size == 64 and sum(p.numel() for p in model.parameters()) > 0


def test_the_issue_s_huge_values_are_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match="data.batch_size × .* lower data.batch_size"):
        training(1_000_000_000, 256)
    with pytest.raises(ConfigError, match=r"patch_size 1000000 gives 1e\+12-pixel squares"):
        training(1, 1_000_000)


def test_the_patch_side_is_bounded_by_the_pixel_limit(monkeypatch) -> None:
    monkeypatch.setenv("DRUNET_MAX_IMAGE_PIXELS", "10000")
    assert training(1, 100).data.augmentation.patch_size == 100
    with pytest.raises(ConfigError, match="more than the 10,000 pixels an image may hold"):
        training(1, 101)


def test_folds_times_epochs_is_bounded() -> None:
    assert training(1, 64, folds=5, epochs=200_000).train.epochs == 200_000
    with pytest.raises(ConfigError, match=r"folds × train.epochs = 5 × 200,001 epochs in all"):
        training(1, 64, folds=5, epochs=200_001)


@pytest.mark.parametrize(
    ("overlap", "flips", "rot90", "passes"),
    [
        (0.0, False, False, 1),
        (0.5, False, False, 4),
        (0.75, True, True, 128),
        (0.96875, False, False, 1024),
    ],
)
def test_passes_per_pixel_within_the_bound(overlap, flips, rot90, passes) -> None:
    tta = 8 if flips and rot90 else 4 if flips or rot90 else 1
    assert bounds.passes_per_pixel(overlap, tta) == passes
    PredictOptions(overlap=overlap, tta_flips=flips, tta_rot90=rot90)  # accepted


@pytest.mark.parametrize(("overlap", "flips"), [(0.99999, False), (0.96875, True), (0.97, False)])
def test_overlap_beyond_the_bound_is_refused(overlap, flips) -> None:
    with pytest.raises(ConfigError, match=f"overlap {overlap} .* more than 1024; lower --overlap"):
        PredictOptions(overlap=overlap, tta_flips=flips)


def test_prediction_batches_and_whole_images_are_bounded(four_gib) -> None:
    PredictOptions(tile_size=256, batch_size=32, max_pixels=2_097_152)
    with pytest.raises(
        ConfigError, match=r"batch_size × tile_size² = 33 × 256² .* lower --batch-size"
    ):
        PredictOptions(tile_size=256, batch_size=33)
    with pytest.raises(
        ConfigError, match=r"max_pixels \(--max-pixels\) = 2,097,153 .* lower --max-pixels"
    ):
        PredictOptions(max_pixels=2_097_153)


# ---------------------------------------------------------------- through the CLI


@pytest.mark.parametrize(
    "flags",
    [["--set", "data.batch_size=1000000000"], ["--patch-size", "1000000"], ["--epochs", "1000000"]],
)
def test_train_refuses_before_creating_a_folder(good_data, tmp_path, flags) -> None:
    runs = tmp_path / "runs"
    result = invoke("train", "--data", good_data, "--runs-dir", runs, "--fold", "all", *flags)
    assert_user_error(result, "lower ")
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not runs.exists()


def test_predict_refuses_an_endless_overlap_before_anything(tmp_path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    result = invoke(
        "predict", tmp_path / "a.png", "--out", tmp_path / "out", "--overlap", "0.99999"
    )
    assert_user_error(result, "overlap 0.99999", "lower --overlap")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the numeric space


def _accepted_training(batch, patch, folds, epochs, limit, memory) -> bool:
    return (
        patch * patch <= limit
        and batch * patch * patch * 1024 <= memory // 2
        and folds * epochs <= 10**6
    )


def _accepted_prediction(tile, overlap, batch, max_pixels, tta, limit, memory) -> bool:
    budget = memory // 2 // 1024
    tile_ok = tile is None or (tile * tile <= limit and batch * tile * tile <= budget)
    return tile_ok and max_pixels <= budget and tta / (1 - overlap) ** 2 <= 1024


numbers = st.one_of(st.integers(1, 64), st.integers(1, 10**12))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batch=numbers,
    patch=st.one_of(st.integers(8, 1024), st.integers(8, 10**9)),
    folds=st.integers(2, 10**7),
    epochs=numbers,
    context=st.integers(0, 8),
    tile=st.one_of(st.none(), st.integers(8, 4096), st.integers(8, 10**9)),
    overlap=st.one_of(st.sampled_from([0.0, 0.5, 0.9, 0.99999]), st.floats(0, 0.999999)),
    max_pixels=st.one_of(st.integers(0, 2**22), st.integers(0, 10**15)),
    flips=st.booleans(),
    rot90=st.booleans(),
)
def test_the_numeric_space_is_refused_or_bounded(
    tmp_path,
    monkeypatch,
    batch,
    patch,
    folds,
    epochs,
    context,
    tile,
    overlap,
    max_pixels,
    flips,
    rot90,
) -> None:
    """Every combination either validates within the documented bounds or is refused with a
    drunet error — never another exception — and validation writes nothing."""
    monkeypatch.chdir(tmp_path)
    memory, limit = bounds.machine_memory(), 2**28
    try:
        config = training(batch, patch, folds, epochs, context)
    except DrunetError:
        assert not _accepted_training(batch, patch, folds, epochs, limit, memory)
    else:
        assert _accepted_training(batch, patch, folds, epochs, limit, memory)
        assert config.data.context_slices == context
    tta = 8 if flips and rot90 else 4 if flips or rot90 else 1
    try:
        PredictOptions(tile_size=tile, overlap=overlap, batch_size=min(batch, 10**6),
                       max_pixels=max_pixels, tta_flips=flips, tta_rot90=rot90)  # fmt: skip
    except DrunetError:
        args = (tile, overlap, min(batch, 10**6), max_pixels, tta, limit, memory)
        assert not _accepted_prediction(*args)
    else:
        assert _accepted_prediction(
            tile, overlap, min(batch, 10**6), max_pixels, tta, limit, memory
        )
    assert list(Path(tmp_path).iterdir()) == []
