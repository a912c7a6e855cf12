"""``drunet export``: a run as ONNX or a ``torch.export`` program, checked against PyTorch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from drunet.cli.common import OverwriteOption, console, user_errors
from drunet.cli.device import DeviceOption, any_case, chosen_device, show_device
from drunet.errors import DrunetError
from drunet.export import DEFAULT_OPSET, FORMATS, TOLERANCE, ExportResult, export_run
from drunet.export_checks import opset_range


def export_command(
    run: Annotated[
        str | None,
        typer.Argument(
            help="Run folder, save_pretrained folder, .safetensors weights or hf:ORG/NAME "
            "(default: latest run's best)."
        ),
    ] = None,
    format: Annotated[
        str, typer.Option("--format", callback=any_case, help=f"One of {', '.join(FORMATS)}.")
    ] = "onnx",
    out: Annotated[
        Path | None, typer.Option(help="Output file (default: model.<format> beside the weights).")
    ] = None,
    opset: Annotated[
        int, typer.Option(help="ONNX opset version ({}-{}).".format(*opset_range()))
    ] = DEFAULT_OPSET,
    check: Annotated[
        bool, typer.Option(help="Compare with PyTorch on two input sizes before writing.")
    ] = True,
    runs_dir: Annotated[Path, typer.Option(help="Where to look for the latest run.")] = Path(
        "runs"
    ),
    json_output: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the files written and the parity check as JSON on stdout."
        ),
    ] = False,
    device: DeviceOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Export for deployment: dynamic batch, height and width; normalised float32 input,
    logits out. <file>.json beside it states the opset, the normalisation and the classes."""
    with user_errors("the parity check runs the model on two small inputs: export with --no-check"):
        if format not in FORMATS:
            raise DrunetError(f"--format {format!r} is not one of {', '.join(FORMATS)}")
        where = chosen_device(device)  # the PyTorch side of the parity check
        result = export_run(
            run,
            out,
            format,  # type: ignore[arg-type]
            opset,
            check,
            runs_dir,
            device=where,
            overwrite=overwrite,
        )
        if json_output:
            typer.echo(json.dumps(export_json(result), indent=2))
            return
        if check:  # after the export, so that an error stays the only line
            show_device(where)
        what = f"{result.format}, opset {result.opset}" if result.opset else result.format
        console.print(
            f"wrote {result.path} ({what})", highlight=False, soft_wrap=True, markup=False
        )
        console.print(
            f"wrote {result.sidecar} (preprocessing, classes)",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
        if result.parity is not None:
            diffs = ", ".join(f"{k}: {v:.2g}" for k, v in result.parity.max_abs_diff.items())
            console.print(
                f"matches PyTorch: max |Δ logit| {diffs} (logits up to "
                f"{result.parity.scale:.3g}, relative tolerance {TOLERANCE:g}); "
                f"{result.parity.mask_mismatches} mask pixel(s) differ",
                highlight=False,
                soft_wrap=True,
            )


def export_json(result: ExportResult) -> dict[str, Any]:
    """What ``--json`` prints: the files written, the format and the parity check."""
    parity = None
    if result.parity is not None:
        parity = {
            "max_abs_diff": result.parity.max_abs_diff,
            "mask_mismatches": result.parity.mask_mismatches,
            "tolerance": TOLERANCE,
        }
    return {
        "path": str(result.path),
        "sidecar": str(result.sidecar),
        "format": result.format,
        "opset": result.opset,
        "parity": parity,
    }
