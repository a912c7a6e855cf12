"""``drunet predict``: masks, overlays and more for an image, a folder or a glob."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from drunet.cli.common import PARTIAL_EXIT, USER_ERROR_EXIT, console, print_failures, user_errors
from drunet.cli.device import DeviceOption, PrecisionOption, any_case, show_device
from drunet.inference.job import PredictJob
from drunet.inference.run import PredictHooks, run_predict
from drunet.sliding import DEFAULT_MAX_PIXELS

_TTA = "Test-time augmentation"
_POST = "Post-processing"
_OUT = "Outputs"
_GIANT = "Giant images (streamed)"


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
# The clean-ups: not given (None), the run's own (chosen on validation when it was trained).
_RUNS = " Default: the run's choice (drunet train picks it on validation)."
MinSize = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="Remove objects smaller than this (pixels); 0: none." + _RUNS,
        rich_help_panel=_POST,
        show_default=False,
    ),
]
FillHoles = Annotated[
    bool | None,
    typer.Option(
        "--fill-holes/--no-fill-holes",
        help="Fill holes inside objects." + _RUNS,
        rich_help_panel=_POST,
        show_default=False,
    ),
]
Largest = Annotated[
    bool | None,
    typer.Option(
        "--largest/--no-largest",
        help="Keep only the largest object of each class." + _RUNS,
        rich_help_panel=_POST,
        show_default=False,
    ),
]
EmptyBelow = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="Empty a mask with fewer foreground pixels than this; 0: never." + _RUNS,
        rich_help_panel=_POST,
        show_default=False,
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
    typer.Option(
        help="Run folder, save_pretrained folder, .safetensors weights or hf:ORG/NAME (a Hugging "
        "Face Hub model) (default: latest run's best)."
    ),
]
RunsDir = Annotated[Path, typer.Option(help="Where to look for the latest run.")]
ModelsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--model",
        help="Run folder, save_pretrained folder, .safetensors weights or hf:ORG/NAME (a Hugging "
        "Face Hub model) (default: latest run's best); repeat it for an ensemble averaging the "
        "runs' probabilities.",
    ),
]


def predict_command(
    inputs: Annotated[str, typer.Argument(help="An image file, a folder of images, or a glob.")],
    models: ModelsOption = None,
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
        typer.Option(
            "--continue",
            help="Skip inputs whose outputs all exist already; a giant image whose run was "
            "interrupted continues from its last finished rows.",
        ),
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
    min_size: MinSize = None,
    fill_holes: FillHoles = None,
    largest: Largest = None,
    empty_below: EmptyBelow = None,
    device: DeviceOption = None,
    precision: PrecisionOption = "auto",
    compile: CompileOption = False,
    backend: Annotated[
        str,
        typer.Option(
            callback=any_case,
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
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="Predict every input as a giant image: region by region in bounded memory, "
            "to a tiled pyramidal BigTIFF mask (slides, OME-Zarr and TIFFs too large to read "
            "whole are always streamed).",
            rich_help_panel=_GIANT,
        ),
    ] = False,
    level: Annotated[
        int | None,
        typer.Option(help="Pyramid level to predict (0: full resolution).", rich_help_panel=_GIANT),
    ] = None,
    mpp: Annotated[
        float | None,
        typer.Option(
            help="Predict the coarsest pyramid level at least this fine (microns per pixel).",
            rich_help_panel=_GIANT,
        ),
    ] = None,
    tissue: Annotated[
        bool | None,
        typer.Option(
            "--tissue/--no-tissue",
            help="Skip tiles without tissue (Otsu on an overview), written as background "
            "[default: on for whole-slide files, off for others].",
            show_default=False,
            rich_help_panel=_GIANT,
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace a file drunet did not write at a streamed output's name, and discard "
            "an interrupted streamed prediction instead of continuing it.",
            rich_help_panel=_GIANT,
        ),
    ] = False,
) -> None:
    """Predict class-index masks (PNG) and colour overlays; inputs are never overwritten.

    Every file is written whole or not at all, so an interrupted run can go on with --continue.
    An unreadable input is listed at the end and the others are still predicted: exit code 3
    (2 when no input could be predicted).
    """
    with user_errors():
        job = PredictJob(**locals())  # every parameter is a field of the same name
        with progress_bar() as bar:
            report = run_predict(job, ConsoleHooks(bar))
        if json_output:
            typer.echo(json.dumps(report.to_json(), indent=2))
        else:
            console.print(report.summary(), highlight=False, soft_wrap=True, markup=False)
        if report.failed:
            print_failures(f"{len(report.failed)} input(s) failed:", report.failed)
            some_done = report.written or report.skipped
            raise typer.Exit(PARTIAL_EXIT if some_done else USER_ERROR_EXIT)


class ConsoleHooks(PredictHooks):
    """``run_predict``'s notes on the console; an images bar, and a tiles bar while a large
    image goes through the sliding window."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.images = bar.add_task("images", total=None, visible=False)
        self.tile_task = bar.add_task("tiles", total=None, visible=False)  # large images only

    def note(self, text: str) -> None:
        console.print(text, highlight=False, soft_wrap=True, markup=False)

    def device(self, device: torch.device, precision: str) -> None:
        show_device(device, precision)

    def inputs(self, count: int) -> None:
        self.bar.update(self.images, total=count, visible=True)

    def done(self, path: Path) -> None:
        self.bar.advance(self.images)
        self.bar.update(self.tile_task, visible=False)

    def tiles(self, done: int, total: int) -> None:
        self.bar.update(self.tile_task, completed=done, total=total, visible=True)


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
