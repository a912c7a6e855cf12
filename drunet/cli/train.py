"""``drunet train``: parse flags into the typed config and call :func:`drunet.train`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from drunet.cli.common import console, user_errors
from drunet.cli.progress import RichReporter
from drunet.config import ExperimentConfig, load_config
from drunet.engine.train import train
from drunet.models import model_names


def train_command(
    data: Annotated[
        Path | None,
        typer.Option(help="Folder with images/ and masks/ (masks matched to images by file name)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML experiment file (see configs/); flags override it.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help=f"Model to train: {', '.join(model_names())}.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Number of epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Patches per batch.")] = None,
    lr: Annotated[float | None, typer.Option(min=0, help="Peak learning rate (AdamW).")] = None,
    patch_size: Annotated[int | None, typer.Option(min=16, help="Training patch side.")] = None,
    runs_dir: Annotated[Path | None, typer.Option(help="Where run folders go.")] = None,
    name: Annotated[
        str | None, typer.Option(help="Run folder name (default: timestamp-model); never reused.")
    ] = None,
) -> None:
    """Train a segmentation model on a folder of images and masks.

    Writes runs/<name>/ with config.yaml, metrics.csv and best/last weights (.safetensors).
    """
    with user_errors():
        cfg = load_config(config) if config is not None else ExperimentConfig()
        for section, key, value in (
            (cfg.data, "root", data),
            (cfg.model, "name", model),
            (cfg.train, "epochs", epochs),
            (cfg.data, "batch_size", batch_size),
            (cfg.train, "lr", lr),
            (cfg.data, "patch_size", patch_size),
            (cfg, "runs_dir", runs_dir),
            (cfg, "name", name),
        ):
            if value is not None:
                setattr(section, key, value)
        with RichReporter(console) as reporter:
            result = train(cfg, reporter=reporter)
        console.print(
            f"best validation {cfg.train.monitor} [bold]{result.best_score:.4f}[/] at epoch "
            f"{result.best_epoch}; weights: {result.best_weights}",
            highlight=False,
            soft_wrap=True,
        )
