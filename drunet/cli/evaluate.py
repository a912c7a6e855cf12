"""``drunet evaluate``: score a run on a folder of images and masks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from drunet.cli.common import (
    PARTIAL_EXIT,
    USER_ERROR_EXIT,
    console,
    print_failures,
    user_errors,
)
from drunet.cli.device import DeviceOption, PrecisionOption, chosen_device, show_device
from drunet.cli.predict import (
    BatchSize,
    FillHoles,
    Largest,
    MaxPixels,
    MinSize,
    ModelOption,
    Overlap,
    RunsDir,
    Threshold,
    TileSize,
    Tta,
    TtaRot90,
    prediction_options,
    progress_bar,
)
from drunet.inference import Predictor
from drunet.inference.evaluate import Evaluation, evaluate, evaluation_pairs, write_evaluation
from drunet.inference.options import DEFAULT_MAX_PIXELS


def evaluate_command(
    model: ModelOption = None,
    data: Annotated[
        Path | None,
        typer.Option(help="Folder of images and masks (default: the run's own data folder)."),
    ] = None,
    split: Annotated[
        str,
        typer.Option(help="all: every pair; train / val / test: the run's split of the folder."),
    ] = "all",
    out: Annotated[Path, typer.Option(help="Folder for per_image.csv and summary.json.")] = Path(
        "evaluation"
    ),
    hd95: Annotated[
        bool, typer.Option("--hd95", help="Also the 95th-percentile Hausdorff distance (px).")
    ] = False,
    runs_dir: RunsDir = Path("runs"),
    tile_size: TileSize = None,
    overlap: Overlap = 0.5,
    batch_size: BatchSize = 4,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    tta: Tta = False,
    tta_rot90: TtaRot90 = False,
    threshold: Threshold = 0.5,
    min_size: MinSize = 0,
    fill_holes: FillHoles = False,
    largest: Largest = False,
    device: DeviceOption = None,
    precision: PrecisionOption = "auto",
) -> None:
    """Predict every image of a dataset and score it against its mask: Dice, IoU, precision
    and recall per image and class (per_image.csv), a summary (summary.json) and a table.

    A pair that cannot be read or scored is listed at the end and the others are still scored:
    exit code 3 (2 when no pair could be scored).
    """
    with user_errors():
        where = chosen_device(device)  # before any work: a missing GPU is a one-line error
        options = prediction_options(
            tile_size,
            overlap,
            batch_size,
            max_pixels,
            tta,
            tta_rot90,
            threshold,
            min_size,
            fill_holes,
            largest,
            precision,
        )
        predictor = Predictor.from_run(model, runs_dir=runs_dir, device=where, options=options)
        console.print(
            f"model: {predictor.weights_path}", highlight=False, soft_wrap=True, markup=False
        )
        show_device(predictor.device, predictor.precision.name)
        pairs, source = evaluation_pairs(data, predictor.config, split)  # type: ignore[arg-type]
        console.print(f"data: {source}", highlight=False, soft_wrap=True, markup=False)
        with progress_bar() as bar:
            task = bar.add_task("evaluating", total=len(pairs))
            evaluation = evaluate(predictor, pairs, hd95, on_done=lambda _: bar.advance(task))
        if not evaluation.num_images:
            print_failures(f"no pair could be scored ({len(pairs)}):", evaluation.failed)
            raise typer.Exit(USER_ERROR_EXIT)
        extra = {"model": str(predictor.weights_path), "data": source, "split": split}
        csv_path, json_path = write_evaluation(evaluation, out, extra)
        console.print(score_table(evaluation))
        console.print(
            f"wrote {csv_path} and {json_path}", highlight=False, soft_wrap=True, markup=False
        )
        if evaluation.failed:
            print_failures(
                f"{len(evaluation.failed)} pair(s) could not be scored:", evaluation.failed
            )
            raise typer.Exit(PARTIAL_EXIT)


def score_table(evaluation: Evaluation) -> Table:
    """Per-class scores (counts summed over the images) and the foreground mean."""
    summary = evaluation.summary()
    with_hd95 = "hd95" in summary
    table = Table(title=f"{evaluation.num_images} image(s)")
    for column in ("class", "Dice", "IoU", "precision", "recall", *(["HD95 (px)"] * with_hd95)):
        table.add_column(column, justify="left" if column == "class" else "right")

    def cells(scores: dict) -> list[str]:
        values = [f"{scores[k]:.4f}" for k in ("dice", "iou", "precision", "recall")]
        if with_hd95:
            values.append("—" if scores.get("hd95") is None else f"{scores['hd95']:.2f}")
        return values

    for c, (name, scores) in enumerate(summary["per_class"].items()):
        table.add_row(escape(f"{c} {name}"), *cells(scores))
    mean = dict(summary["mean"])
    if with_hd95:
        mean["hd95"] = summary["hd95"]["mean"]
    table.add_row("[bold]mean (foreground)[/]", *cells(mean))
    return table
