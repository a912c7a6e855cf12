"""``drunet plan``: fingerprint a dataset and print the recipe the plan would train with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from drunet.cli.common import console, user_errors
from drunet.cli.device import DeviceOption, training_device
from drunet.config import compose_config
from drunet.plan import explicit_keys, fingerprint_lines, plan_config, plan_lines
from drunet.plan.fingerprint import MAX_IMAGES
from drunet.plan.rules import MEMORY_GB


def plan_command(
    data: Annotated[
        Path | None, typer.Option(help="Dataset folder (images/ + masks/, nnU-Net, …).")
    ] = None,
    images: Annotated[Path | None, typer.Option(help="Explicit images folder.")] = None,
    masks: Annotated[Path | None, typer.Option(help="Explicit masks folder.")] = None,
    split_file: Annotated[
        Path | None, typer.Option(help='JSON split: {"train": [names], "val": [names]}.')
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML experiment file; its values are kept as yours.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Fix the model (the plan keeps it).")] = None,
    num_classes: Annotated[
        int | None, typer.Option(help="Classes the model will have (default: from the masks).")
    ] = None,
    patch_size: Annotated[int | None, typer.Option(help="Fix the training patch side.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Fix the batch size.")] = None,
    minutes: Annotated[
        float | None, typer.Option(min=0.01, help="Time budget (train.max_minutes).")
    ] = None,
    device: DeviceOption = None,
    memory_gb: Annotated[
        float, typer.Option(min=0.01, help="Memory the batch may take for training.")
    ] = MEMORY_GB,
    max_images: Annotated[
        int, typer.Option(min=1, help="Training pairs read at most (evenly spaced).")
    ] = MAX_IMAGES,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key, e.g. data.layout.stack={name}_z{index}"),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the fingerprint and plan as JSON.")
    ] = False,
) -> None:
    """Measure the training images and masks (sizes, intensities, classes, empty masks, object
    sizes, structure widths) and print the recipe chosen from them, one reason per choice.
    Values you set (flags, --set, --config) are kept."""
    with user_errors():
        flags = {
            "data.root": data,
            "data.layout.images": images,
            "data.layout.masks": masks,
            "data.layout.split_file": split_file,
            "model.name": model,
            "model.num_classes": num_classes,
            "data.augmentation.patch_size": patch_size,
            "data.batch_size": batch_size,
            "train.max_minutes": minutes,
            # The device whose training speed weighs a time budget (drunet.plan.speed).
            "train.device": training_device(device, "auto") if device else None,
        }
        cfg = compose_config(config, set_ or [], flags)  # train's precedence: flags win
        user = explicit_keys(config, flags, set_ or [])
        fingerprint, plan = plan_config(cfg, user, memory_gb=memory_gb, max_images=max_images)
    if as_json:
        document = {
            "fingerprint": fingerprint.to_json(),
            "plan": plan.to_json(),
            "overrides": plan.overrides,
        }
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return
    console.print("[bold]fingerprint[/]")
    for line in fingerprint_lines(fingerprint):
        console.print(line, highlight=False, soft_wrap=True, markup=False)
    console.print("[bold]plan[/]")
    for line in plan_lines(plan):
        console.print(line, highlight=False, soft_wrap=True, markup=False)
