"""Each rule of the plan on synthetic data with known widths, sizes and empty fractions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from drunet.config import ExperimentConfig, set_fields
from drunet.models import create_model
from drunet.plan import (
    PLAN_KEYS,
    Fingerprint,
    apply_plan,
    compute_fingerprint,
    key_lines,
    load_fingerprint,
    make_plan,
    save_plan,
)
from drunet.plan.apply import explicit_keys, fixed_values
from drunet.plan.rules import AUTOGRAD_PEAK, BYTES_PER_PIXEL, model_multiple
from drunet.plan.speed import Speed
from tests.plan.conftest import discs_mask, folder_pairs, lines_mask, write_folder


def _fingerprint(tmp_path: Path, masks: list[np.ndarray]) -> Fingerprint:
    return compute_fingerprint(folder_pairs(write_folder(tmp_path, masks)))


def _value(plan, key: str):
    return plan.choice(key).value


@pytest.fixture(scope="module")
def thin(tmp_path_factory: pytest.TempPathFactory) -> Fingerprint:
    """24 images of 2-px lines, 101² (width 2)."""
    return _fingerprint(tmp_path_factory.mktemp("thin"), [lines_mask(101, 2)] * 24)


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Fingerprint:
    """24 images of discs of radius 10, 101² (width ≈ 20)."""
    return _fingerprint(tmp_path_factory.mktemp("wide"), [discs_mask(101, 10)] * 24)


def test_thin_structures_train_at_full_resolution(thin: Fingerprint, wide: Fingerprint) -> None:
    plan = make_plan(thin)
    assert _value(plan, "model.name") == "drunet_s"
    assert "2.0 px" in plan.choice("model.name").reason
    assert plan.overrides["model.name"] == "drunet_s"
    wide_plan = make_plan(wide)
    assert _value(wide_plan, "model.name") == "drunet_s2"
    assert "model.name" not in wide_plan.overrides  # the default: nothing to override


def test_a_budget_too_short_for_full_resolution_keeps_the_half_resolution_model(
    thin: Fingerprint,
) -> None:
    calls: list[str] = []

    def measure(model: str) -> float:
        calls.append(model)
        return {"drunet_s": 0.6, "drunet_s2": 0.1}[model]

    speed = Speed(measure, min_steps_per_epoch=1)
    # By hand: drunet_s trains 112² patches (24 images of 101², multiple 16) in batches of 4:
    # one pass is 24 // 4 = 6 batches, 6 · 4 · 0.6 s · (112/128)² = 11.025 s an epoch, so 6
    # minutes buy 32.7 epochs (< 50) and 30 minutes 163.3 (≥ 50). drunet_s2: 128², batch 4,
    # 6 batches: 2.4 s an epoch, 150 epochs in 6 minutes.
    assert speed.epoch_seconds("drunet_s", 112, 4, 24) == pytest.approx(11.025)
    # The trainer drops a last partial batch: 24 // 21 = 1 batch of 21, not 2.
    assert speed.epoch_seconds("drunet_s", 112, 21, 24) == pytest.approx(21 * 0.6 * 0.765625)
    plan = make_plan(thin, {"train.max_minutes": 6}, speed=speed)
    assert _value(plan, "model.name") == "drunet_s2"
    reason = plan.choice("model.name").reason
    assert "the 6-minute budget buys ≈33 epochs of drunet_s (< 50" in reason
    assert "drunet_s2 trains ≈150" in reason
    assert plan.choice("train.max_minutes").source == "user"
    assert sorted(calls) == ["drunet_s", "drunet_s2"]  # each measured once
    long = make_plan(thin, {"train.max_minutes": 30}, speed=speed)
    assert _value(long, "model.name") == "drunet_s"
    assert "buys ≈163 epochs of drunet_s (≥ 50" in long.choice("model.name").reason
    assert len(calls) == 2  # the same Speed: no new measurement
    # The trainer's epoch: full batches of one pass (40 // 16 = 2, not 3), at least
    # min_steps_per_epoch batches, or steps_per_epoch exactly.
    assert speed.epoch_seconds("drunet_s2", 128, 16, 40) == pytest.approx(2 * 16 * 0.1)
    assert Speed(measure, min_steps_per_epoch=25).epoch_seconds("drunet_s2", 128, 16, 24) == (
        pytest.approx(25 * 16 * 0.1)
    )
    assert Speed(measure, steps_per_epoch=3).epoch_seconds("drunet_s2", 128, 16, 24) == (
        pytest.approx(3 * 16 * 0.1)
    )
    # The user's patch and batch are the ones the budget is weighed at: batch 2, 12 batches,
    # 12 · 2 · 0.6 · (112/128)² = 11.025 s an epoch, 65.3 epochs in 12 minutes.
    fixed = make_plan(thin, {"train.max_minutes": 12, "data.batch_size": 2}, speed=speed)
    assert _value(fixed, "model.name") == "drunet_s"
    assert "buys ≈65 epochs of drunet_s" in fixed.choice("model.name").reason


def test_without_a_speed_or_a_budget_nothing_is_measured(thin: Fingerprint) -> None:
    def measure(model: str) -> float:
        raise AssertionError(f"measured {model}")

    assert _value(make_plan(thin, speed=Speed(measure)), "model.name") == "drunet_s"
    assert _value(make_plan(thin, {"train.max_minutes": 6}), "model.name") == "drunet_s"


def test_a_time_budget_decides_when_to_stop_unless_epochs_are_set(thin: Fingerprint) -> None:
    assert make_plan(thin, {"train.max_minutes": 6}).overrides["train.epochs"] == 100_000
    fixed = make_plan(thin, {"train.max_minutes": 6, "train.epochs": 3})
    assert fixed.choice("train.epochs").source == "user" and "train.epochs" not in fixed.overrides
    assert make_plan(thin).choice("train.epochs").value == 20  # no budget: the default
    assert "train.epochs" not in make_plan(thin).overrides


def test_small_images_train_whole_at_the_models_multiple(
    thin: Fingerprint, wide: Fingerprint
) -> None:
    assert model_multiple("drunet_s") == 16 and model_multiple("drunet_s2") == 32
    assert _value(make_plan(thin), "data.augmentation.patch_size") == 112  # 101 → 7 × 16
    assert _value(make_plan(wide), "data.augmentation.patch_size") == 128  # 101 → 4 × 32
    # Whole images: centring on foreground would change nothing.
    assert make_plan(wide).choice("data.augmentation.foreground_share").source == "default"


def test_large_images_keep_the_default_patch(tmp_path: Path) -> None:
    fp = _fingerprint(tmp_path, [discs_mask(300, 20)] * 4)
    plan = make_plan(fp)
    assert _value(plan, "data.augmentation.patch_size") == 256
    assert plan.choice("data.augmentation.patch_size").source == "default"
    assert _value(plan, "data.batch_size") == 4


def test_batch_stays_the_default_whatever_the_patch(thin: Fingerprint, wide: Fingerprint) -> None:
    # Whole 112² / 128² patches keep batch 4: a budget then buys more steps (rules module).
    for plan in (make_plan(thin), make_plan(wide)):
        assert _value(plan, "data.augmentation.patch_size") in (112, 128)
        assert _value(plan, "data.batch_size") == 4
        assert plan.choice("data.batch_size").source == "default"
        assert "data.batch_size" not in plan.overrides


def test_batch_is_at_most_the_training_pairs(tmp_path: Path) -> None:
    plan = make_plan(_fingerprint(tmp_path, [lines_mask(101, 2)] * 3))
    assert _value(plan, "data.batch_size") == 3
    assert "at most the training pairs" in plan.choice("data.batch_size").reason


def test_batch_fits_the_memory_budget(thin: Fingerprint) -> None:
    # drunet_s at 112²: 2040 B/px × 1.5 × 12544 px = 38.4 MB per patch; 0.1 GB holds 2.
    plan = make_plan(thin, memory_gb=0.1)
    assert _value(plan, "data.batch_size") == 2
    assert "fit in 0.1 GB" in plan.choice("data.batch_size").reason
    assert _value(make_plan(thin, memory_gb=0.001), "data.batch_size") == 1


def test_empty_masks_keep_dice_and_ce_and_the_batch(tmp_path: Path) -> None:
    disc, empty = discs_mask(300, 20), np.zeros((300, 300), np.uint8)
    forty = make_plan(_fingerprint(tmp_path / "40", [disc] * 3 + [empty] * 2))
    assert forty.choice("loss").reason.startswith("40% of masks are empty")
    assert forty.choice("loss").source == "default"  # Dice + CE kept
    assert _value(forty, "data.batch_size") == 4
    eighty = make_plan(_fingerprint(tmp_path / "80", [disc] * 5 + [empty] * 20))
    assert eighty.choice("loss").reason.startswith("80% of masks are empty")
    # All-empty batches (0.8⁴ = 41 %) are not avoided by a larger batch: measured harmless.
    assert _value(eighty, "data.batch_size") == 4
    full = make_plan(_fingerprint(tmp_path / "0", [disc]))
    assert full.choice("loss").reason == "no mask is empty"


def test_rare_foreground_is_oversampled(tmp_path: Path) -> None:
    rare = np.zeros((64, 64), np.uint8)
    rare[10:12, 10:12] = 1  # 4 of 4096 px: 0.1 %
    plan = make_plan(_fingerprint(tmp_path / "r", [rare] * 2), {"data.augmentation.patch_size": 32})
    assert _value(plan, "data.augmentation.foreground_share") == 0.66
    some = np.zeros((64, 64), np.uint8)
    some[:8, :16] = 1  # 128 px: 3.1 %
    plan = make_plan(_fingerprint(tmp_path / "s", [some]), {"data.augmentation.patch_size": 32})
    assert _value(plan, "data.augmentation.foreground_share") == 0.5


def test_augmentation_is_strong_only_for_few_wide_images(
    thin: Fingerprint, wide: Fingerprint, tmp_path: Path
) -> None:
    assert _value(make_plan(wide), "data.augmentation.preset") == "strong"  # 24 pairs
    assert _value(make_plan(thin), "data.augmentation.preset") == "light"
    many = _fingerprint(tmp_path, [discs_mask(32, 6)] * 50)
    assert _value(make_plan(many), "data.augmentation.preset") == "light"


def test_user_values_win_and_steer_the_later_rules(thin: Fingerprint) -> None:
    plan = make_plan(thin, {"model.name": "drunet_s2", "data.batch_size": 3})
    assert plan.choice("model.name").source == "user"
    assert _value(plan, "data.augmentation.patch_size") == 128  # the user's model's multiple
    assert _value(plan, "data.batch_size") == 3
    assert "model.name" not in plan.overrides and "data.batch_size" not in plan.overrides


def test_explicit_keys_and_apply_plan(thin: Fingerprint, tmp_path: Path) -> None:
    config_file = tmp_path / "c.yaml"
    config_file.write_text("data:\n  augmentation:\n    ops: [{name: HorizontalFlip}]\n")
    flags = {"data.root": tmp_path, "model.name": None}
    user = explicit_keys(config_file, flags, ["data.batch_size=2"])
    assert user == {"data.root", "data.augmentation.ops", "data.batch_size"}
    config = set_fields(ExperimentConfig(), {"data.batch_size": 2})
    fixed = fixed_values(config, user)
    assert fixed == {"data.batch_size": 2, "data.augmentation.preset": None}  # ops fix the preset
    plan = make_plan(thin, fixed)
    applied = apply_plan(config, plan)
    assert applied.model.name == "drunet_s" and applied.data.augmentation.patch_size == 112
    assert applied.data.batch_size == 2 and applied.data.augmentation.preset is None
    # A whole section set by the user fixes every plan key inside it; weights to start from
    # keep the model they were trained as.
    assert "data.augmentation.patch_size" in fixed_values(config, {"data.augmentation"})
    assert fixed_values(config, {"train.init_from"}) == {"model.name": "drunet_s2"}


@pytest.mark.parametrize("name", sorted(BYTES_PER_PIXEL))
def test_memory_per_pixel_matches_a_measurement(name: str) -> None:
    model = create_model(name, in_channels=1, out_channels=1).train()
    weights = sum(p.untyped_storage().nbytes() for p in model.parameters())
    storages: dict[int, int] = {}

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        model(torch.randn(1, 1, 64, 64))
    per_pixel = (sum(storages.values()) - weights) / 64**2
    assert per_pixel == pytest.approx(BYTES_PER_PIXEL[name], rel=0.05)
    assert AUTOGRAD_PEAK >= 1


def test_the_plan_is_saved_beside_the_run_and_summarised_in_three_lines(
    thin: Fingerprint, tmp_path: Path
) -> None:
    plan = make_plan(thin, {"data.batch_size": 3})
    save_plan(tmp_path, thin, plan)
    assert load_fingerprint(tmp_path / "fingerprint.json") == thin
    stored = json.loads((tmp_path / "plan.json").read_text())
    assert stored["overrides"] == {"model.name": "drunet_s", "data.augmentation.patch_size": 112}
    assert [c["key"] for c in stored["choices"]] == list(PLAN_KEYS)
    lines = key_lines(plan)
    assert lines[0].startswith("plan: model drunet_s (plan: thinnest foreground structures 2.0")
    assert lines[1].startswith("plan: patch 112 (plan: whole images")
    assert lines[2] == "plan: batch 3 (user: set by you)"
