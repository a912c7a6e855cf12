"""``drunet predict``: masks, overlays and more for an image, a folder or a glob."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from drunet.checkpoint import resolve_weights
from drunet.cli.common import PARTIAL_EXIT, USER_ERROR_EXIT, console, print_failures, user_errors
from drunet.cli.device import DeviceOption, PrecisionOption, chosen_device, show_device
from drunet.errors import DrunetError
from drunet.inference import (
    OutputOptions,
    PostprocessOptions,
    PredictOptions,
    Predictor,
    collect_inputs,
    predict_files,
)
from drunet.inference.channel_files import channel_cases
from drunet.inference.files import check_no_clobber, check_out_dir
from drunet.inference.shard import parse_shard, prediction_units, select_shard
from drunet.sliding import DEFAULT_MAX_PIXELS

_TTA = "Test-time augmentation"
_POST = "Post-processing"
_OUT = "Outputs"


def prediction_options(
    tile_size: int | None,
    overlap: float,
    batch_size: int,
    max_pixels: int,
    tta: bool,
    tta_rot90: bool,
    threshold: float,
    min_size: int,
    fill_holes: bool,
    largest: bool,
    precision: str = "auto",
    compile_network: bool = False,
) -> PredictOptions:
    """The flags shared by ``predict`` and ``evaluate`` as :class:`PredictOptions`."""
    return PredictOptions(
        tile_size=tile_size,
        overlap=overlap,
        batch_size=batch_size,
        max_pixels=max_pixels,
        tta_flips=tta,
        tta_rot90=tta_rot90,
        postprocess=PostprocessOptions(threshold, min_size, fill_holes, largest),
        precision=precision,
        compile=compile_network,
    )


# Typer options shared with ``drunet evaluate``.
TileSize = Annotated[
    int | None,
    typer.Option(help="Sliding-window tile side (default: the training patch size)."),
]
Overlap = Annotated[float, typer.Option(help="Share of a tile its neighbours overlap, in [0, 1).")]
BatchSize = Annotated[int, typer.Option(help="Tiles, or same-sized small images, per pass.")]
MaxPixels = Annotated[
    int,
    typer.Option(help="Images up to this many pixels are predicted whole; larger ones in tiles."),
]
Tta = Annotated[
    bool, typer.Option("--tta", help="Average over flipped copies (4×).", rich_help_panel=_TTA)
]
TtaRot90 = Annotated[
    bool,
    typer.Option("--tta-rot90", help="Average over 90° rotations too.", rich_help_panel=_TTA),
]
Threshold = Annotated[
    float,
    typer.Option(help="Binary models: foreground where p > threshold.", rich_help_panel=_POST),
]
MinSize = Annotated[
    int,
    typer.Option(help="Remove objects smaller than this (pixels).", rich_help_panel=_POST),
]
FillHoles = Annotated[
    bool, typer.Option("--fill-holes", help="Fill holes inside objects.", rich_help_panel=_POST)
]
Largest = Annotated[
    bool,
    typer.Option(
        "--largest", help="Keep only the largest object of each class.", rich_help_panel=_POST
    ),
]
CompileOption = Annotated[
    bool,
    typer.Option(
        "--compile",
        help="Run the network through torch.compile: 1.13× float32, 1.47× bfloat16 on a 2-core "
        "CPU after a 15–25 s compile (1–2 s when cached), so it pays from a few minutes of "
        "tiles or same-sized images.",
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(help="Run folder or .safetensors weights (default: latest run's best)."),
]
RunsDir = Annotated[Path, typer.Option(help="Where to look for the latest run.")]
ModelsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--model",
        help="Run folder or .safetensors weights (default: latest run's best); repeat it for an "
        "ensemble averaging the runs' probabilities.",
    ),
]


def predict_command(
    inputs: Annotated[str, typer.Argument(help="An image file, a folder of images, or a glob.")],
    model: ModelsOption = None,
    out: Annotated[
        Path, typer.Option(help="Folder for <stem>_mask.png and the other outputs.")
    ] = Path("predictions"),
    runs_dir: RunsDir = Path("runs"),
    overlay: Annotated[
        bool, typer.Option(help="Write <stem>_overlay.png.", rich_help_panel=_OUT)
    ] = True,
    color: Annotated[
        bool,
        typer.Option(
            "--color", help="Write <stem>_color.png (coloured mask).", rich_help_panel=_OUT
        ),
    ] = False,
    probabilities: Annotated[
        bool,
        typer.Option(
            "--probabilities",
            help="Write <stem>_probs.tif (float32, one page per class).",
            rich_help_panel=_OUT,
        ),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option("--continue", help="Skip inputs whose outputs all exist already."),
    ] = False,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json", help="Print what was written, skipped and failed as JSON on stdout."
        ),
    ] = False,
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
    backend: Annotated[
        str,
        typer.Option(
            help="torch, or onnxruntime: the exported graph (built once, cached beside the "
            "weights, parity-checked), float32 on the CPU.",
        ),
    ] = "torch",
    shard: Annotated[
        str | None,
        typer.Option(
            help="I/N: predict only the inputs whose index in the sorted list is I modulo N, so N "
            "jobs (0/N … N-1/N) cover the inputs exactly once.",
            show_default=False,
        ),
    ] = None,
    prefetch: Annotated[
        int,
        typer.Option(
            min=0,
            help="Batches read and normalised ahead (in threads) while the network runs, "
            "outputs written behind it; 0: one batch at a time.",
        ),
    ] = 2,
    nnunet_names: Annotated[
        bool,
        typer.Option(
            "--nnunet-names",
            help="nnU-Net channel files (<case>_0000.png …): write the mask as <case>.png, "
            "not <case>_mask.png.",
            rich_help_panel=_OUT,
        ),
    ] = False,
) -> None:
    """Predict class-index masks (PNG) and colour overlays; inputs are never overwritten.

    Every file is written whole or not at all, so an interrupted run can go on with --continue.
    An unreadable input is listed at the end and the others are still predicted: exit code 3
    (2 when no input could be predicted).
    """
    with user_errors():
        where = chosen_device(device)  # before any work: a missing GPU is a one-line error
        part = parse_shard(shard) if shard is not None else None
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
        predictor, weights = load_predictor(model or [], runs_dir, where, options, backend)
        if not json_output:
            console.print(
                f"model: {' + '.join(map(str, weights))}"
                + (
                    f" (ensemble of {len(weights)}, probabilities averaged)"
                    if len(weights) > 1
                    else ""
                ),
                highlight=False,
                soft_wrap=True,
                markup=False,
            )
            show_device(predictor.device, predictor.precision.name)
        files = collect_inputs(inputs)
        cases = channel_cases(files, predictor.in_channels, nnunet_names)
        if nnunet_names and cases is None:
            raise DrunetError(
                f"--nnunet-names: {inputs} is not nnU-Net channel files whose channels make the "
                f"model's {predictor.in_channels} input channel(s) (<case>_0000.png, "
                "<case>_0001.png, … for every case); drop --nnunet-names"
            )
        outputs = OutputOptions(
            overlay=overlay,
            color=color,
            probabilities=probabilities,
            names=cases.names if cases else {},
            nnunet_names=nnunet_names,
        )
        extra_channels = cases.extra_channels if cases else None
        if cases is not None:
            files = cases.inputs
            extras = sum(len(paths) for paths in cases.extra_channels.values())
            if not json_output:
                console.print(
                    f"nnU-Net channel files: {len(files)} case(s) of "
                    f"{(len(files) + extras) // len(files)} file(s)",
                    highlight=False,
                    markup=False,
                )
        if part is not None:
            stack = predictor.config.data.layout.stack
            units = prediction_units(files, bool(predictor.context_slices), stack)
            files = shard_of(files, part, out, outputs, weights, units, extra_channels)
        with progress_bar() as bar:
            task = bar.add_task("images", total=len(files))
            tiles = bar.add_task("tiles", total=None, visible=False)  # large images only

            def image_done(_: Path) -> None:
                bar.advance(task)
                bar.update(tiles, visible=False)

            report = predict_files(
                predictor,
                files,
                out,
                on_done=image_done,
                outputs=outputs,
                skip_existing=resume,
                protected=weights,
                prefetch=prefetch,
                extra_channels=extra_channels,
                on_progress=lambda n, total: bar.update(
                    tiles, completed=n, total=total, visible=True
                ),
            )
        done = f"wrote {len(report.written)} mask(s) to {out}/"
        if report.skipped:
            done += f"; skipped {len(report.skipped)} already predicted (--continue)"
        if json_output:
            written = {
                "models": [str(path) for path in weights],
                "out": str(out),
                "written": [str(path) for path in report.written],
                "skipped": [str(path) for path in report.skipped],
                "failed": {str(path): reason for path, reason in report.failed.items()},
            }
            typer.echo(json.dumps(written, indent=2))
        else:
            console.print(done, highlight=False, soft_wrap=True, markup=False)
        if report.failed:
            print_failures(f"{len(report.failed)} input(s) failed:", report.failed)
            some_done = report.written or report.skipped
            raise typer.Exit(PARTIAL_EXIT if some_done else USER_ERROR_EXIT)


def load_predictor(
    models: list[str],
    runs_dir: Path,
    device: torch.device,
    options: PredictOptions,
    backend: str = "torch",
) -> tuple[Predictor, list[Path]]:
    """One ``--model`` (or none: the latest run), or an ensemble of several; and the weights
    files, which predict never writes over."""
    if len(models) > 1:
        if backend != "torch":
            raise DrunetError("--backend onnxruntime runs one model; drop it for an ensemble")
        weights = [resolve_weights(m) for m in models]
        return Predictor.from_runs(weights, device=device, options=options), weights
    predictor = Predictor.from_run(
        models[0] if models else None,
        runs_dir=runs_dir,
        device=device,
        options=options,
        backend=backend,
    )
    assert predictor.weights_path is not None
    return predictor, [predictor.weights_path]


def shard_of(
    files: list[Path],
    shard: tuple[int, int],
    out: Path,
    outputs: OutputOptions,
    weights: list[Path],
    units: list[list[Path]] | None = None,
    extra_channels: Mapping[Path, tuple[Path, ...]] | None = None,
) -> list[Path]:
    """The inputs of ``--shard I/N``, after checking the outputs of every shard (two inputs of
    one stem in different shards would write the same files). ``units`` keep files together
    (a series of slices of a context model), sharded by their first file; an nnU-Net case is
    one input (its ``_0000`` file)."""
    index, count = shard
    check_out_dir(out)
    extras = [path for paths in (extra_channels or {}).values() for path in paths]
    check_no_clobber(files, out, outputs, protected=[*weights, *extras])
    units = units or [[path] for path in files]
    chosen = set(select_shard([unit[0] for unit in units], index, count))
    selected = sorted(path for unit in units if unit[0] in chosen for path in unit)
    console.print(
        f"shard {index}/{count}: {len(selected)} of {len(files)} input(s)",
        highlight=False,
        markup=False,
    )
    return selected


def progress_bar() -> Progress:
    """A transient bar on a terminal; nothing when the output is a file or a pipe."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
