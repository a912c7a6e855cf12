"""``drunet evaluate``: score a run on a folder of images and masks, or predictions against
truth masks. The flags become an :class:`~drunet.evaluation.EvaluateJob` (one field each) and
:func:`~drunet.evaluation.run_evaluation` does the work; this module prints."""

from __future__ import annotations

import json
import math
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
from drunet.cli.device import DeviceOption, PrecisionOption, any_case, show_device
from drunet.cli.predict import (
    BatchSize,
    CompileOption,
    EmptyBelow,
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
    progress_bar,
)
from drunet.evaluation import EvaluateJob, Evaluation, EvaluationResult, Started, run_evaluation
from drunet.evaluation.stacks import StackScores
from drunet.evaluation.write import PER_STACK_CSV
from drunet.report.markdown import markdown
from drunet.sliding import DEFAULT_MAX_PIXELS

Spacing = Annotated[
    tuple[float, float] | None,
    typer.Option(
        metavar="SY SX", help="Pixel height and width: HD95 in their unit (implies --hd95)."
    ),
]


def evaluate_command(
    model: ModelOption = None,
    data: Annotated[
        Path | None,
        typer.Option(help="Folder of images and masks (default: the run's own data folder)."),
    ] = None,
    split: Annotated[
        str,
        typer.Option(
            callback=any_case,
            help="all: every pair; train / val / test: the run's split of the folder.",
        ),
    ] = "all",
    out: Annotated[
        Path, typer.Option(help="Folder for per_image.csv, summary.json (and report.html).")
    ] = Path("evaluation"),
    hd95: Annotated[
        bool, typer.Option("--hd95", help="Also the 95th-percentile Hausdorff distance (px).")
    ] = False,
    spacing: Spacing = None,
    report: Annotated[
        bool,
        typer.Option("--report", help="Also report.html: one self-contained page to look at."),
    ] = False,
    worst: Annotated[int, typer.Option(min=0, help="Worst cases pictured in the report.")] = 12,
    pred: Annotated[
        Path | None,
        typer.Option(
            help="Score this folder of predictions (<stem>_mask.png or the masks' own names) "
            "instead of a model; needs --truth."
        ),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(help="With --pred: the reference masks (or a dataset folder with masks/)."),
    ] = None,
    stack: Annotated[
        str | None,
        typer.Option(
            help="With --pred: masks named as numbered slices, e.g. '{name}_z{index}', are "
            "scored per stack too (per_stack.csv), as a run's data.layout.stack.",
            show_default=False,
        ),
    ] = None,
    classes: Annotated[
        int | None,
        typer.Option(
            help="With --pred: the number of classes, background included (default: the "
            "truth masks' largest value + 1). A predicted value outside is a listed error.",
            show_default=False,
        ),
    ] = None,
    absent_as_one: Annotated[
        bool,
        typer.Option(
            "--absent-as-one",
            help="Score a class absent from both prediction and truth 1.0 (training's rule) "
            "instead of reporting it as absent and leaving it out of the means.",
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace files in --out that drunet did not write (refused else)."
        ),
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on stdout (nothing else).")
    ] = False,
    runs_dir: RunsDir = Path("runs"),
    tile_size: TileSize = None,
    overlap: Overlap = 0.5,
    batch_size: BatchSize = 4,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    tta: Tta = False,
    tta_rot90: TtaRot90 = False,
    threshold: Threshold = 0.5,
    min_size: MinSize = None,
    fill_holes: FillHoles = None,
    largest: Largest = None,
    empty_below: EmptyBelow = None,
    device: DeviceOption = None,
    precision: PrecisionOption = "auto",
    compile: CompileOption = False,
) -> None:
    """Predict every image of a dataset and score it against its mask: Dice, IoU, precision
    and recall per image and class (per_image.csv), a summary (summary.json) and a table.
    Multi-page TIFF stacks are scored per slice and per stack (per_stack.csv: each stack's
    summed counts, scored).

    --pred PRED_DIR --truth MASK_DIR scores a folder of existing predictions instead (no model):
    each mask against exactly one prediction (<stem>_mask.png or <stem>.png); a missing or
    ambiguous match, or a predicted value outside the classes, is listed. A class absent from
    both prediction and truth is reported as absent, not as 1.0 (--absent-as-one).
    --report adds report.html: summary, a sortable table, the worst cases pictured.

    A pair that cannot be read or scored is listed at the end and the others are still scored:
    exit code 3 (2 when no pair could be scored). Files in --out that drunet did not write are
    never replaced (exit 2) unless --overwrite.
    """
    flags = dict(locals())  # every option but --json is an EvaluateJob field of the same name
    with user_errors():
        job = EvaluateJob(**{key: value for key, value in flags.items() if key != "json_output"})
        with progress_bar() as bar:
            task = bar.add_task("evaluating", total=None)

            def started(start: Started) -> None:
                bar.update(task, total=start.total)
                if not json_output:
                    _show_start(start)

            result = run_evaluation(job, started, lambda: bar.advance(task))
        _show_result(result, json_output)


def _say(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True, markup=False)


def _show_start(start: Started) -> None:
    """``model: …``, the device line and ``data: …`` (model mode), before the bar."""
    if "model" in start.source:
        _say(f"model: {start.source['model']}")
    if start.device is not None:
        show_device(start.device, start.precision)
    if "data" in start.source:
        _say(f"data: {start.source['data']}")


def _show_result(result: EvaluationResult, json_output: bool) -> None:
    """The tables (or the summary as JSON), the files written, and the exit code: 2 when
    nothing could be scored, 3 when some cases failed."""
    evaluation = result.evaluation
    if not evaluation.num_images:
        print_failures(f"no pair could be scored ({len(evaluation.failed)}):", evaluation.failed)
        raise typer.Exit(USER_ERROR_EXIT)
    if json_output:
        typer.echo(json.dumps(result.summary, indent=2, allow_nan=False))
    else:
        print_scores(evaluation)
        print_stacks(evaluation)
        _say("wrote " + ", ".join(str(path) for path in result.written))
    if evaluation.failed:
        print_failures(f"{len(evaluation.failed)} pair(s) could not be scored:", evaluation.failed)
        raise typer.Exit(PARTIAL_EXIT)


def print_scores(evaluation: Evaluation) -> None:
    """The score table: rich on a terminal; Markdown in a log file or pipe, where a rich
    table would cut numbers and names to fit a guessed width."""
    if console.is_terminal:
        console.print(score_table(evaluation))
        return
    summary = evaluation.summary()
    unit = summary["hd95"]["unit"] if "hd95" in summary else None
    rows = []
    for c, (name, scores) in enumerate(summary["per_class"].items()):
        rows.append(_cells(f"{c} {name}", scores, unit))
    mean = dict(summary["mean"], hd95=summary["hd95"]["mean"] if unit else None)
    rows.append(_cells("mean (foreground)", mean, unit))
    text = f"{_title(evaluation)}\n\n{markdown(rows)}"
    console.print(text, highlight=False, soft_wrap=True, markup=False, end="")


def _cells(label: str, scores: dict, unit: str | None) -> dict[str, str]:
    row = {"class": label}
    row.update({title: _score(scores, key) for title, key in _COLUMNS})
    if unit is not None:
        hd = scores.get("hd95")
        row[f"HD95 ({unit})"] = "—" if hd is None else f"{hd:.2f}"
    return row


_COLUMNS = (("Dice", "dice"), ("IoU", "iou"), ("precision", "precision"), ("recall", "recall"))


def _score(scores: dict, key: str) -> str:
    """A score to 4 decimals; ``absent`` for a class in neither file, ``—`` for a mean
    with no class present."""
    value = scores[key]
    if value is None or math.isnan(value):
        return "absent" if scores.get("absent") else "—"
    return f"{value:.4f}"


def _stack_order(stack: StackScores) -> tuple[float, str]:
    """Lowest Dice first; a stack with no foreground class present last."""
    dice = stack.mean["dice"]
    return (math.inf if math.isnan(dice) else dice, stack.name)


def score_table(evaluation: Evaluation) -> Table:
    """Per-class scores (counts summed over the images) and the foreground mean."""
    summary = evaluation.summary()
    with_hd95 = "hd95" in summary
    table = Table(title=_title(evaluation))
    for column in ("class", "Dice", "IoU", "precision", "recall", *(["HD95 (px)"] * with_hd95)):
        table.add_column(column, justify="left" if column == "class" else "right")

    def cells(scores: dict) -> list[str]:
        values = [_score(scores, key) for _, key in _COLUMNS]
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


def _title(evaluation: Evaluation) -> str:
    """``N image(s)``; with stacks ``N slice(s) of K stack(s)`` (and the 2D images apart)."""
    if not evaluation.has_stacks:
        return f"{evaluation.num_images} image(s)"
    slices = sum(stack is not None for stack in evaluation.stacks)
    title = f"{slices} slice(s) of {len(set(evaluation.stacks) - {None})} stack(s)"
    images = evaluation.num_images - slices
    return title + (f" and {images} image(s)" if images else "")


MAX_STACK_ROWS = 10  # more stacks: the lowest foreground Dice ones (all in per_stack.csv)


def print_stacks(evaluation: Evaluation) -> None:
    """Per-stack foreground means when there is more than one stack (at most
    ``MAX_STACK_ROWS`` rows, the worst by Dice when there are more)."""
    stacks = evaluation.stack_scores() if evaluation.has_stacks else []
    if len(stacks) < 2:
        return
    title = f"per stack ({len(stacks)}): Dice etc. of each stack's summed counts"
    if len(stacks) > MAX_STACK_ROWS:
        stacks = sorted(stacks, key=_stack_order)[:MAX_STACK_ROWS]
        title += f"; the {MAX_STACK_ROWS} lowest Dice (all in {PER_STACK_CSV})"
    rows = [
        {
            "stack": stack.name,
            "slices": str(stack.slices),
            **{column: _score(stack.mean, key) for column, key in _COLUMNS},
        }
        for stack in stacks
    ]
    if console.is_terminal:
        table = Table(title=title)
        for column in rows[0]:
            table.add_column(column, justify="left" if column == "stack" else "right")
        for row in rows:
            table.add_row(*(escape(cell) for cell in row.values()))
        console.print(table)
        return
    text = f"\n{title}\n\n{markdown(rows)}"
    console.print(text, highlight=False, soft_wrap=True, markup=False, end="")
