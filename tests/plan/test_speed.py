"""drunet.plan.speed: a real training-step measurement, cached per model, and the epoch count."""

from __future__ import annotations

import math

import pytest

from drunet.errors import DrunetError
from drunet.plan import speed as speed_module
from drunet.plan.speed import SIDE, measured_speed, sample_seconds


def test_a_training_step_is_measured_per_sample_and_once_per_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seconds = sample_seconds("drunet_s2", in_channels=1, num_classes=3, device="cpu")
    assert 0 < seconds < 60 and math.isfinite(seconds)
    calls: list[str] = []
    real = speed_module.sample_seconds

    def counted(model: str, *args: object) -> float:
        calls.append(model)
        return real(model, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(speed_module, "sample_seconds", counted)
    speed = measured_speed(1, 2, "cpu", None, 4)
    first = speed.seconds("drunet_s2")
    assert speed.seconds("drunet_s2") == first and calls == ["drunet_s2"]
    # An epoch is at least 4 batches here: 4 · 2 · first · (256/128)² seconds.
    assert speed.epoch_seconds("drunet_s2", 2 * SIDE, 2, 3) == pytest.approx(4 * 2 * first * 4)
    assert speed.epochs("drunet_s2", 1.0, SIDE, 2, 3) == pytest.approx(60 / (4 * 2 * first))


def test_a_missing_device_is_a_user_error() -> None:
    with pytest.raises(DrunetError, match="train.device cuda:7 is not available"):
        sample_seconds("drunet_s2", 1, 2, "cuda:7")
