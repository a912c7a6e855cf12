"""``drunet demo``: the whole path on generated data, in about two minutes on a laptop CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from drunet.cli.common import OverwriteOption, console, user_errors
from drunet.cli.device import DeviceOption, show_device, training_device
from drunet.cli.progress import make_reporter
from drunet.demo import run_demo
from drunet.device import resolve_device


def demo_command(
    out: Annotated[
        Path, typer.Option(help="Folder for the data, the run and the predictions.")
    ] = Path("drunet-demo"),
    epochs: Annotated[int | None, typer.Option(min=1, help="Override the recipe's epochs.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data.")] = 0,
    device: DeviceOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Generate a synthetic dataset, train a small DRUNet on it, and predict a new image."""
    with user_errors():
        device = training_device(device, "auto")  # the flag, else $DRUNET_DEVICE; checked
        show_device(resolve_device(device or "auto"))
        console.print(
            f"generating synthetic data in {out}/data and training a small DRUNet …",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
        with make_reporter(console) as reporter:
            result = run_demo(
                out, epochs, seed, reporter=reporter, device=device, overwrite=overwrite
            )
        run = result.run
        console.print(
            f"validation Dice [bold]{run.best_score:.4f}[/] (best epoch {run.best_epoch}); "
            f"run folder {escape(str(run.run_dir))}",
            highlight=False,
            soft_wrap=True,
        )
        console.print(
            f"predicted {result.image}:\n  mask    {result.mask}\n  overlay {result.overlay}",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
