"""``drunet train``: parse flags into the typed config and call :func:`drunet.train`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from drunet.cli.common import console, user_errors
from drunet.cli.device import DeviceOption, show_device, training_device
from drunet.cli.progress import is_main_process, make_reporter
from drunet.config import ExperimentConfig, apply_overrides, load_config, set_fields
from drunet.device import resolve_device
from drunet.engine.distributed import check_device_count, launched_by_torchrun
from drunet.engine.folds import SUMMARY, train_folds
from drunet.engine.train import resume, train
from drunet.errors import DrunetError
from drunet.models.registry import shown_names


def train_command(
    data: Annotated[
        Path | None,
        typer.Option(help="Folder with images/ and masks/ (masks matched to images by file name)."),
    ] = None,
    images: Annotated[Path | None, typer.Option(help="Explicit images folder.")] = None,
    masks: Annotated[Path | None, typer.Option(help="Explicit masks folder.")] = None,
    fold: Annotated[
        str | None,
        typer.Option(
            help="Cross-validation fold (0..folds-1; see data.layout.folds), or 'all': every "
            "fold in turn into one parent folder, then the mean ± std score."
        ),
    ] = None,
    split_file: Annotated[
        Path | None, typer.Option(help='JSON split: {"train": [names], "val": [names]}.')
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML experiment file (see configs/); flags override it.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help=f"Model to train: {', '.join(shown_names())}."),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Number of epochs (with --resume: the new total).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Patches per batch.")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    init_from: Annotated[
        str | None,
        typer.Option(
            help="Start from these weights (a run folder, save_pretrained folder or .safetensors): "
            "matching layers load, a new class or channel count re-initialises the head or "
            "adapts the stem."
        ),
    ] = None,
    patch_size: Annotated[int | None, typer.Option(help="Training patch side in pixels.")] = None,
    runs_dir: Annotated[Path | None, typer.Option(help="Where run folders go.")] = None,
    name: Annotated[
        str | None, typer.Option(help="Run folder name (default: timestamp-model); never reused.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override any config key: --set train.optimizer=sgd --set model.params.depth=3",
        ),
    ] = None,
    resume_dir: Annotated[
        Path | None,
        typer.Option(
            "--resume", help="Continue this run folder from its last epoch (--epochs may raise)."
        ),
    ] = None,
    devices: Annotated[
        int,
        typer.Option(
            min=1, help="Processes for DDP: re-launches itself with torchrun (one per device)."
        ),
    ] = 1,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars: one line per epoch (CI logs).")
    ] = False,
    device: DeviceOption = None,
) -> None:
    """Train a segmentation model on a folder of images and masks.

    Writes runs/<name>/ with config.yaml, metrics.csv, progress.png, best/last weights
    (.safetensors) and state.pt (for --resume).
    """
    if devices > 1 and not launched_by_torchrun():
        with user_errors():  # one GPU per process: more processes than GPUs fail here, once
            check_device_count(devices, resolve_device(device).type)
        raise typer.Exit(relaunch_with_torchrun(devices))
    with user_errors():
        if resume_dir is not None:
            ignored = [flag for flag, value in _resume_ignored(locals()) if value]
            if ignored:
                raise DrunetError(
                    f"--resume continues the run with its stored config; {', '.join(ignored)} "
                    "cannot change it (only --epochs can raise the total)"
                )
            with make_reporter(console, quiet) as reporter:
                result = resume(resume_dir, epochs=epochs, reporter=reporter)
        else:
            cfg = load_config(config) if config is not None else ExperimentConfig()
            flags = {
                "data.root": data,
                "data.layout.images": images,
                "data.layout.masks": masks,
                "data.layout.fold": None if fold == "all" else fold,
                "data.layout.split_file": split_file,
                "model.name": model,
                "train.epochs": epochs,
                "data.batch_size": batch_size,
                "train.lr": lr,
                "train.init_from": init_from,
                "data.augmentation.patch_size": patch_size,
                "runs_dir": runs_dir,
                "name": name,
                "train.device": training_device(device, cfg.train.device),
            }
            # Flags set typed fields as typed (--name 2024 is the text "2024"); --set is YAML.
            cfg = set_fields(cfg, {k: v for k, v in flags.items() if v is not None})
            cfg = apply_overrides(cfg, set_ or [])
            if is_main_process():
                show_device(resolve_device(cfg.train.device))
            if fold == "all":
                with make_reporter(console, quiet) as reporter:
                    folds = train_folds(cfg, reporter=reporter)
                monitor = cfg.train.monitor
                console.print(
                    f"cross-validated {monitor} over {len(folds.runs)} folds: "
                    f"[bold]{folds.mean:.4f} ± {folds.std:.4f}[/] (mean ± std; "
                    + ", ".join(f"{s:.4f}" for s in folds.scores)
                    + f"); runs and {SUMMARY} in {escape(str(folds.parent))}",
                    highlight=False,
                    soft_wrap=True,
                )
                return
            with make_reporter(console, quiet) as reporter:
                result = train(cfg, reporter=reporter)
        if not is_main_process():
            return
        stopped = " (early stopping)" if result.stopped_early else ""
        console.print(
            f"best validation {result.config.train.monitor} [bold]{result.best_score:.4f}[/] at "
            f"epoch {result.best_epoch}{stopped}; weights: {result.best_weights}",
            highlight=False,
            soft_wrap=True,
        )


def _resume_ignored(args: dict) -> list[tuple[str, object]]:
    names = (
        "data",
        "images",
        "masks",
        "fold",
        "split_file",
        "config",
        "model",
        "batch_size",
        "lr",
        "init_from",
        "patch_size",
        "runs_dir",
        "name",
        "device",
    )
    return [(f"--{n.replace('_', '-')}", args[n]) for n in names] + [("--set", args["set_"])]


def relaunch_with_torchrun(devices: int) -> int:
    """Run this same command under ``torchrun --nproc_per_node devices``; return its exit code."""
    argv, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--devices":
            skip = True
        elif not arg.startswith("--devices="):
            argv.append(arg)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc_per_node", str(devices), "-m", "drunet", *argv,
    ]  # fmt: skip
    console.print("launching: " + " ".join(command), highlight=False, soft_wrap=True)
    return subprocess.call(command)
