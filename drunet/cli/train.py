"""``drunet train``: parse flags into the typed config and call :func:`drunet.train`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from drunet import checkpoint as runs
from drunet.cli.common import console, user_errors
from drunet.cli.device import DeviceOption, any_case, show_device, training_device
from drunet.cli.progress import is_main_process, make_reporter
from drunet.config import ExperimentConfig, compose_config, load_config, updated
from drunet.device import resolve_device
from drunet.engine.distributed import check_device_count, launched_by_torchrun
from drunet.engine.folds import SUMMARY, CrossValidation, train_folds
from drunet.engine.train import RunResult, resume, train
from drunet.errors import DrunetError
from drunet.models.registry import shown_names
from drunet.plan import (
    Fingerprint,
    Plan,
    apply_plan,
    explicit_keys,
    key_lines,
    plan_config,
    save_plan,
    selection_lines,
)


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
            callback=any_case,
            help="Cross-validation fold (0..folds-1; see data.layout.folds), or 'all': every "
            "fold in turn into one parent folder, then the mean ± std score.",
        ),
    ] = None,
    split_file: Annotated[
        Path | None, typer.Option(help='JSON split: {"train": [names], "val": [names]}.')
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="YAML experiment file (see configs/); --set and flags override it."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help=f"Model to train: {', '.join(shown_names())}."),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Number of epochs (with --resume: the new total).")
    ] = None,
    minutes: Annotated[
        float | None,
        typer.Option(
            min=0.01,
            help="Time budget (train.max_minutes): the learning rate decays over it and training "
            "stops when it is spent; with the plan and without --epochs it alone decides.",
        ),
    ] = None,
    use_plan: Annotated[
        bool,
        typer.Option(
            "--plan/--no-plan",
            help="Let the data choose the model, patch, batch, oversampling and augmentation, "
            "below the values you set (drunet plan shows the choices); --no-plan: the defaults.",
        ),
    ] = True,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Patches per batch.")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    init_from: Annotated[
        str | None,
        typer.Option(
            help="Start from these weights (a run folder, save_pretrained folder, .safetensors "
            "or hf:ORG/NAME): matching layers load, a new class or channel count re-initialises "
            "the head or adapts the stem."
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
    (.safetensors) and state.pt (for --resume), and with the plan fingerprint.json and
    plan.json. Settings come from, lowest first: the defaults, the plan, --config, --set, then
    the flags above; they are merged and then validated once.
    """
    planned: tuple[Fingerprint, Plan] | None = None
    with user_errors():
        main = is_main_process()  # a malformed RANK, WORLD_SIZE, … is named before anything
        flags = _config_flags(locals())
        if resume_dir is not None:
            _refuse_changes_on_resume(locals())
            cfg = None
        else:
            cfg = _device_default(compose_config(config, set_ or [], flags), device)
        if devices > 1 and not launched_by_torchrun():  # one GPU per process: checked once
            run_device = resolve_device(_run_device(cfg, resume_dir), source="train.device")
            check_device_count(devices, run_device.type)
            raise typer.Exit(relaunch_with_torchrun(devices))
        if main and cfg is not None:
            show_device(resolve_device(cfg.train.device, source="train.device"))
        if cfg is not None and use_plan:  # the data's recipe below the user's values
            planned = plan_config(cfg, explicit_keys(config, flags, set_ or []))
            cfg = apply_plan(cfg, planned[1])
            for line in key_lines(planned[1]) if main else []:
                console.print(line, highlight=False, soft_wrap=True, markup=False)
        with make_reporter(console, quiet) as reporter:
            if cfg is None:
                result = resume(Path(str(resume_dir)), epochs=epochs, reporter=reporter)
            elif fold == "all":
                folds = train_folds(cfg, reporter=reporter)
                if main and planned:  # each fold's run keeps the plan it trained with
                    for run in folds.runs:
                        save_plan(run.run_dir, *planned)
                return _show_folds(folds, cfg.train.monitor, main)
            else:
                result = train(cfg, reporter=reporter)
        if main:
            if planned:  # fingerprint.json and plan.json beside config.yaml
                save_plan(result.run_dir, *planned)
            _show_result(result)


def _show_result(result: RunResult) -> None:
    """The best epoch's monitored score with the per-image Dice beside it, where the weights
    are, and the post-processing chosen on validation."""
    stopped = " (early stopping)" if result.stopped_early else ""
    record = result.best_record
    per_image = ""
    if record is not None and "image_dice" in record.scores:
        per_image = f" (per-image Dice {record.scores['image_dice']:.4f})"
    console.print(
        f"best validation {result.config.train.monitor} [bold]{result.best_score:.4f}[/]"
        f"{per_image} at epoch {result.best_epoch}{stopped}; weights: {result.best_weights}",
        highlight=False,
        soft_wrap=True,
    )
    for line in selection_lines(result.postprocessing) if result.postprocessing else []:
        console.print(line, highlight=False, soft_wrap=True, markup=False)


def _config_flags(args: dict[str, Any]) -> dict[str, Any]:
    """The configuration keys the flags set (``None``: not given); flags set typed fields as
    typed (``--name 2024`` is the text "2024"), never parsed as YAML like ``--set``."""
    fold = args["fold"]
    return {
        "data.root": args["data"],
        "data.layout.images": args["images"],
        "data.layout.masks": args["masks"],
        "data.layout.fold": None if fold == "all" else fold,
        "data.layout.split_file": args["split_file"],
        "model.name": args["model"],
        "train.epochs": args["epochs"],
        "train.max_minutes": args["minutes"],
        "data.batch_size": args["batch_size"],
        "train.lr": args["lr"],
        "train.init_from": args["init_from"],
        "data.augmentation.patch_size": args["patch_size"],
        "runs_dir": args["runs_dir"],
        "name": args["name"],
        "train.device": training_device(args["device"], "auto") if args["device"] else None,
    }


def _device_default(cfg: ExperimentConfig, flag: str | None) -> ExperimentConfig:
    """``$DRUNET_DEVICE`` where neither the flag nor the configuration chose a device."""
    if flag is not None:
        return cfg
    device = training_device(None, cfg.train.device)
    return cfg if device is None else updated(cfg, {"train.device": device})


def _run_device(cfg: ExperimentConfig | None, resume_dir: Path | None) -> str:
    """The ``train.device`` of the run about to start (a resumed run: its own config.yaml)."""
    if cfg is not None:
        return cfg.train.device
    stored = Path(str(resume_dir)) / runs.CONFIG
    return load_config(stored).train.device if stored.is_file() else "auto"


def _show_folds(folds: CrossValidation, monitor: str, main: bool) -> None:
    if main:
        console.print(
            f"cross-validated {monitor} over {len(folds.runs)} folds: "
            f"[bold]{folds.mean:.4f} ± {folds.std:.4f}[/] (mean ± std; "
            + ", ".join(f"{s:.4f}" for s in folds.scores)
            + f"); runs and {SUMMARY} in {escape(str(folds.parent))}",
            highlight=False,
            soft_wrap=True,
        )


def _refuse_changes_on_resume(args: dict[str, Any]) -> None:
    names = (
        "data",
        "images",
        "masks",
        "fold",
        "split_file",
        "config",
        "model",
        "minutes",
        "batch_size",
        "lr",
        "init_from",
        "patch_size",
        "runs_dir",
        "name",
        "device",
    )
    given = [(f"--{n.replace('_', '-')}", args[n]) for n in names] + [("--set", args["set_"])]
    ignored = [flag for flag, value in given if value]
    if ignored:
        raise DrunetError(
            f"--resume continues the run with its stored config; {', '.join(ignored)} "
            "cannot change it (only --epochs can raise the total)"
        )


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
