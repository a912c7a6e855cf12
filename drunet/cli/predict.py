"""``drunet predict``: masks and overlays for an image, a folder or a glob."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from drunet.cli.common import USER_ERROR_EXIT, console, err_console, user_errors
from drunet.inference import Predictor, collect_inputs, predict_files


def predict_command(
    inputs: Annotated[str, typer.Argument(help="An image file, a folder of images, or a glob.")],
    model: Annotated[
        str | None,
        typer.Option(help="Run folder or .safetensors weights (default: latest run's best)."),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Folder for <stem>_mask.png and <stem>_overlay.png.")
    ] = Path("predictions"),
    runs_dir: Annotated[Path, typer.Option(help="Where to look for the latest run.")] = Path(
        "runs"
    ),
) -> None:
    """Predict class-index masks (PNG) and colour overlays; inputs are never overwritten."""
    with user_errors():
        predictor = Predictor.from_run(model, runs_dir=runs_dir)
        console.print(f"model: {predictor.weights_path}", highlight=False, soft_wrap=True)
        files = collect_inputs(inputs)
        with console.status(f"predicting {len(files)} image(s)"):
            report = predict_files(predictor, files, out)
        console.print(
            f"wrote {len(report.written)} mask(s) and overlay(s) to {out}/", highlight=False
        )
        if report.failed:
            for path, reason in report.failed.items():
                err_console.print(
                    f"[red]failed[/] {path}: {reason}", highlight=False, soft_wrap=True
                )
            raise typer.Exit(USER_ERROR_EXIT)
