"""``drunet evaluate``: score a run on a folder of images and masks."""

from __future__ import annotations

from collections.abc import Callable
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
    CompileOption,
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
from drunet.errors import DrunetError
from drunet.inference import Predictor
from drunet.inference.evaluate import (
    PER_STACK_CSV,
    Evaluation,
    evaluate,
    evaluation_pairs,
    per_stack_path,
    write_evaluation,
)
from drunet.inference.evaluate_folder import count_classes, evaluate_folder
from drunet.report import CaseCollector, write_evaluation_report
from drunet.report.markdown import markdown
from drunet.sliding import DEFAULT_MAX_PIXELS

Spacing = Annotated[
    tuple[float, float] | None,
    typer.Option(
        metavar="SY SX", help="Pixel height and width: HD95 in their unit (implies --hd95)."
    ),
]
Scored = tuple[Evaluation, CaseCollector | None, dict[str, str], Path | None]
CollectorFactory = Callable[[int, int | None], CaseCollector] | None  # (classes, ignore_index)


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
    min_size: MinSize = 0,
    fill_holes: FillHoles = False,
    largest: Largest = False,
    device: DeviceOption = None,
    precision: PrecisionOption = "auto",
    compile_network: CompileOption = False,
) -> None:
    """Predict every image of a dataset and score it against its mask: Dice, IoU, precision
    and recall per image and class (per_image.csv), a summary (summary.json) and a table.
    Multi-page TIFF stacks are scored per slice and per stack (per_stack.csv: each stack's
    summed counts, scored).

    --pred PRED_DIR --truth MASK_DIR scores a folder of existing predictions instead (no model).
    --report adds report.html: summary, a sortable table, the worst cases pictured.

    A pair that cannot be read or scored is listed at the end and the others are still scored:
    exit code 3 (2 when no pair could be scored).
    """
    with user_errors():

        def say(text: str) -> None:
            if not json_output:
                console.print(text, highlight=False, soft_wrap=True, markup=False)

        hd95 = hd95 or spacing is not None
        collector = (lambda n, ignore: CaseCollector(n, ignore, worst)) if report else None
        if pred is not None:
            if truth is None:
                raise DrunetError("--pred needs --truth MASK_DIR: the masks to score against")
            if model is not None or data is not None:
                raise DrunetError("--pred scores existing predictions: drop --model and --data")
            scored = _score_folder(pred, truth, hd95, spacing, collector, stack)
        else:
            if truth is not None:
                raise DrunetError("--truth goes with --pred PRED_DIR; with a model use --data")
            if stack is not None:
                raise DrunetError(
                    "--stack goes with --pred; with a model the run's data.layout.stack names "
                    "the slices"
                )
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
                compile_network,
            )
            predictor = Predictor.from_run(model, runs_dir=runs_dir, device=where, options=options)
            say(f"model: {predictor.weights_path}")
            if not json_output:
                show_device(predictor.device, predictor.precision.name)
            scored = _score_model(predictor, data, split, hd95, spacing, collector, say)
        evaluation, cases, extra, run_dir = scored
        if not evaluation.num_images:
            tried = evaluation.num_images + len(evaluation.failed)
            print_failures(f"no pair could be scored ({tried}):", evaluation.failed)
            raise typer.Exit(USER_ERROR_EXIT)
        csv_path, json_path = write_evaluation(evaluation, out, extra)
        written = [csv_path, json_path]
        if evaluation.has_stacks:
            written.insert(1, per_stack_path(out))
        if cases is not None:
            meta = [f"{key}: {value}" for key, value in extra.items()]
            written.append(write_evaluation_report(evaluation, cases, out, meta, run_dir))
        if json_output:
            typer.echo(json_path.read_text(encoding="utf-8"), nl=False)
        else:
            print_scores(evaluation)
            print_stacks(evaluation)
            say("wrote " + ", ".join(str(path) for path in written))
        if evaluation.failed:
            print_failures(
                f"{len(evaluation.failed)} pair(s) could not be scored:", evaluation.failed
            )
            raise typer.Exit(PARTIAL_EXIT)


def _score_model(
    predictor: Predictor,
    data: Path | None,
    split: str,
    hd95: bool,
    spacing: tuple[float, float] | None,
    collector: CollectorFactory,
    say: Callable[[str], None],
) -> Scored:
    pairs, source = evaluation_pairs(data, predictor.config, split)  # type: ignore[arg-type]
    say(f"data: {source}")
    ignore = predictor.config.data.masks.ignore_index
    cases = collector(predictor.num_classes, ignore) if collector else None
    with progress_bar() as bar:
        task = bar.add_task("evaluating", total=len(pairs))
        evaluation = evaluate(
            predictor,
            pairs,
            hd95,
            on_done=lambda _: bar.advance(task),
            spacing=spacing,
            on_case=cases,
        )
    extra = {"model": str(predictor.weights_path), "data": source, "split": split}
    run = predictor.weights_path.parent if predictor.weights_path is not None else None
    has_history = run is not None and (run / "metrics.csv").is_file()
    return evaluation, cases, extra, run if has_history else None


def _score_folder(
    pred: Path,
    truth: Path,
    hd95: bool,
    spacing: tuple[float, float] | None,
    collector: CollectorFactory,
    stack: str | None = None,
) -> Scored:
    num_classes = count_classes(pred, truth)
    cases = collector(num_classes, None) if collector else None
    with progress_bar() as bar:
        task = bar.add_task("evaluating", total=None)
        evaluation = evaluate_folder(
            pred,
            truth,
            hd95,
            spacing,
            num_classes,
            on_done=lambda _: bar.advance(task),
            on_case=cases,
            stack=stack,
        )
    return evaluation, cases, {"predictions": str(pred), "truth": str(truth)}, None


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
    row.update({title: f"{scores[key]:.4f}" for title, key in _COLUMNS})
    if unit is not None:
        hd = scores.get("hd95")
        row[f"HD95 ({unit})"] = "—" if hd is None else f"{hd:.2f}"
    return row


_COLUMNS = (("Dice", "dice"), ("IoU", "iou"), ("precision", "precision"), ("recall", "recall"))


def score_table(evaluation: Evaluation) -> Table:
    """Per-class scores (counts summed over the images) and the foreground mean."""
    summary = evaluation.summary()
    with_hd95 = "hd95" in summary
    table = Table(title=_title(evaluation))
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
        stacks = sorted(stacks, key=lambda s: (s.mean["dice"], s.name))[:MAX_STACK_ROWS]
        title += f"; the {MAX_STACK_ROWS} lowest Dice (all in {PER_STACK_CSV})"
    rows = [
        {
            "stack": stack.name,
            "slices": str(stack.slices),
            **{column: f"{stack.mean[key]:.4f}" for column, key in _COLUMNS},
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
