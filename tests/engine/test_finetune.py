"""Fine-tuning: --init-from another run (other classes), a frozen encoder, encoder LR scale."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from drunet import train
from drunet.checkpoint import load_model
from drunet.cli.main import app
from drunet.config import config_from_dict
from drunet.datasets.synthetic import make_synthetic
from drunet.engine.optim import build_optimizer, build_scheduler, encoder_modules
from tests.conftest import tiny_recipe


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ft")
    data = make_synthetic(root / "binary", 8, sizes=((40, 40),), seed=1)
    recipe = tiny_recipe(data={"root": str(data)}, runs_dir=str(root / "runs"), name="src")
    return train(config_from_dict(recipe)).run_dir


def test_init_from_a_binary_run_on_three_class_data_through_the_cli(
    binary_run: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    data = make_synthetic(tmp_path / "three", 8, num_classes=3, sizes=((40, 40),), seed=2)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_recipe()))
    args = ["train", "--data", str(data), "--config", str(config), "--init-from", str(binary_run)]
    result = runner.invoke(app, [*args, "--runs-dir", str(tmp_path / "runs"), "--name", "ft"])
    assert result.exit_code == 0, result.output
    assert "initialised from" in result.output and "head.weight" in result.output
    stored = yaml.safe_load((tmp_path / "runs" / "ft" / "config.yaml").read_text())
    assert stored["model"]["num_classes"] == 3
    assert stored["train"]["init_from"] == str((binary_run / "best.safetensors").resolve())


def test_a_frozen_encoder_keeps_the_weights_it_started_from(binary_run: Path, tmp_path) -> None:
    data = make_synthetic(tmp_path / "d", 8, sizes=((40, 40),), seed=3)
    recipe = tiny_recipe(
        data={"root": str(data)},
        train={"init_from": str(binary_run), "freeze_encoder_epochs": 1, "epochs": 1},
        runs_dir=str(tmp_path / "runs"),
    )
    source, _ = load_model(binary_run)
    tuned = train(config_from_dict(recipe)).model
    assert tuned is not None
    before = {k: v for m in encoder_modules(source) for k, v in m.state_dict().items()}
    after = {k: v for m in encoder_modules(tuned) for k, v in m.state_dict().items()}
    for key, value in before.items():
        if "running" in key or "num_batches" in key:
            continue  # BatchNorm statistics still follow the new data
        torch.testing.assert_close(after[key].cpu(), value, atol=0, rtol=0, msg=key)
    head_before, head_after = source.head.weight, tuned.head.weight.cpu()
    assert not torch.equal(head_before, head_after)  # the decoder did train


def test_encoder_groups_run_at_the_scaled_rate_and_start_frozen() -> None:
    config = config_from_dict(
        {
            "model": {
                "in_channels": 1,
                "num_classes": 2,
                "params": {"init_features": 4, "depth": 2},
            },
            "train": {"lr": 0.01, "encoder_lr_scale": 0.1, "freeze_encoder_epochs": 2},
        }
    )
    from drunet.checkpoint import build_model

    model = build_model(config)
    optimizer = build_optimizer(model, config.train)
    encoder = {id(p) for m in encoder_modules(model) for p in m.parameters()}
    for group in optimizer.param_groups:
        assert all((id(p) in encoder) == group["encoder"] for p in group["params"])
        assert group["lr"] == pytest.approx(0.001 if group["encoder"] else 0.01)
    scheduler = build_scheduler(optimizer, config.train, steps_per_epoch=3)
    lrs = []
    for _ in range(8):
        lrs.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    for step, rates in enumerate(lrs):
        flags = [g["encoder"] for g in optimizer.param_groups]
        encoder_rates = [r for r, e in zip(rates, flags, strict=True) if e]
        other_rates = [r for r, e in zip(rates, flags, strict=True) if not e]
        assert all(r > 0 for r in other_rates)
        assert all((r == 0) == (step < 6) for r in encoder_rates), (step, rates)


def test_fold_all_trains_every_fold_and_reports_mean_and_std(tmp_path: Path) -> None:
    import csv
    import json
    import statistics

    data = make_synthetic(tmp_path / "d", 6, sizes=((40, 40),), seed=4)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_recipe()))
    args = ["train", "--data", str(data), "--config", str(config), "--fold", "all"]
    args += ["--set", "data.layout.folds=3", "--runs-dir", str(tmp_path / "runs"), "--name", "cv"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    parent = tmp_path / "runs" / "cv"
    assert sorted(p.name for p in parent.iterdir()) == ["cv.json", "fold0", "fold1", "fold2"]
    best = []
    for fold in range(3):
        stored = yaml.safe_load((parent / f"fold{fold}" / "config.yaml").read_text())
        assert stored["data"]["layout"]["fold"] == fold
        rows = list(csv.DictReader((parent / f"fold{fold}" / "metrics.csv").open()))
        best.append(max(float(row["dice"]) for row in rows))
    summary = json.loads((parent / "cv.json").read_text())
    assert summary["scores"] == pytest.approx({f"fold{k}": best[k] for k in range(3)}, abs=1e-5)
    assert summary["mean"] == pytest.approx(statistics.fmean(best), abs=1e-5)
    assert summary["std"] == pytest.approx(statistics.stdev(best), abs=1e-5)
    assert f"{summary['mean']:.4f} ± {summary['std']:.4f}" in result.output


def test_encoder_weights_start_an_smp_run_and_are_refused_for_drunet(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from drunet.checkpoint import build_model
    from drunet.engine.prepare import _load_start_weights
    from drunet.errors import ConfigError

    smp = {"name": "unet_resnet34", "in_channels": 1, "num_classes": 2,
           "params": {"encoder_name": "resnet18", "encoder_depth": 3}}  # fmt: skip
    donor = build_model(config_from_dict({"model": {**smp, "in_channels": 3}}))
    encoder = {k: v.contiguous() for k, v in donor.net.encoder.state_dict().items()}
    path = tmp_path / "encoder.safetensors"
    save_file(encoder, str(path))
    config = config_from_dict({"model": smp, "train": {"encoder_weights": str(path)}})
    model = build_model(config)
    _load_start_weights(model, config)
    start = model.state_dict()
    stem = start["net.encoder.conv1.weight"]
    torch.testing.assert_close(stem, encoder["conv1.weight"].sum(1, keepdim=True))  # 3 → 1
    torch.testing.assert_close(start["net.encoder.layer1.0.conv1.weight"],
                               encoder["layer1.0.conv1.weight"])  # fmt: skip
    drunet = config_from_dict(
        {"model": {"in_channels": 1, "num_classes": 2}, "train": {"encoder_weights": str(path)}}
    )
    with pytest.raises(ConfigError, match="train.encoder_weights applies to smp models"):
        _load_start_weights(build_model(drunet), drunet)
