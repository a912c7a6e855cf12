"""`drunet compare`: two models, one split, one table, curves and a figure."""

from __future__ import annotations

import csv
import json

from drunet.cli.main import app
from drunet.compare.measure import adapted_rand_error, forward_gflops
from drunet.models import create_model


def test_compare_two_models(runner, tiny_data, tiny_config, tmp_path) -> None:
    out = tmp_path / "cmp"
    args = ["compare", "--data", str(tiny_data), "--config", str(tiny_config), "--out", str(out)]
    result = runner.invoke(app, [*args, "--epochs", "1"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    reports = json.loads((out / "compare.json").read_text())
    assert [r["model"] for r in reports] == ["drunet", "unet_resnet34"]
    for report in reports:
        assert 0.0 <= report["scores"]["dice"] <= 1.0
        assert "adapted_rand_error" in report["scores"]  # binary data
        assert report["epochs"] == 1 and report["train_images_per_second"] > 0
    # The baseline has its registry defaults; drunet the recipe's tiny parameters.
    assert reports[1]["parameters"] == sum(
        p.numel() for p in create_model("unet_resnet34", in_channels=1).parameters()
    )
    assert reports[0]["parameters"] < reports[1]["parameters"] / 100
    rows = list(csv.DictReader((out / "compare.csv").open()))
    assert [row["model"] for row in rows] == ["drunet", "unet_resnet34"]
    assert (out / "curves.png").stat().st_size > 0 and (out / "predictions.png").stat().st_size > 0
    assert "| drunet |" in (out / "compare.md").read_text()
    again = runner.invoke(app, [*args, "--epochs", "1"])
    assert again.exit_code == 2 and "never overwritten" in again.output


def test_adapted_rand_error_known_answers() -> None:
    import numpy as np

    truth = np.zeros((20, 20), np.int64)
    truth[:, 10] = 1  # a membrane splitting two cells
    assert adapted_rand_error(truth, truth) == 0.0
    merged = np.zeros_like(truth)  # the membrane missed: the two cells merge
    assert adapted_rand_error(truth, merged) > 0.3


def test_forward_gflops_of_a_single_conv() -> None:
    import torch

    conv = torch.nn.Conv2d(1, 2, 3, padding=1, bias=False)
    # 2 output channels × 16 × 16 positions × 9 multiply-adds × 2 FLOPs = 9216.
    assert forward_gflops(conv, 1, 16) * 1e9 == 9216
