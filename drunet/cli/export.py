"""``drunet export``: a run as ONNX or a ``torch.export`` program, checked against PyTorch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from drunet.cli.common import OverwriteOption, console, user_errors
from drunet.cli.device import DeviceOption, any_case, chosen_device, show_device
from drunet.errors import DrunetError
from drunet.export import DEFAULT_OPSET, FORMATS, TOLERANCE, ExportResult, export_run
from drunet.export_checks import opset_range

if TYPE_CHECKING:
    import torch

    from drunet.bioimageio import PackageResult

FORMAT_NAMES = (*FORMATS, "bioimageio")


def export_command(
    run: Annotated[
        str | None,
        typer.Argument(
            help="Run folder, save_pretrained folder, .safetensors weights or hf:ORG/NAME "
            "(default: latest run's best)."
        ),
    ] = None,
    format: Annotated[
        str,
        typer.Option("--format", callback=any_case, help=f"One of {', '.join(FORMAT_NAMES)}."),
    ] = "onnx",
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output file (default: model.<format> beside the weights); bioimageio: the "
            "package folder (default: bioimageio/ beside the weights), zipped beside it."
        ),
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
    sample: Annotated[
        Path | None,
        typer.Option(
            help="bioimageio: the image the test tensors are made from (default: the run's "
            "first validation image)."
        ),
    ] = None,
    author: Annotated[
        list[str] | None, typer.Option(help="bioimageio: an author's name (repeat it).")
    ] = None,
    license: Annotated[
        str, typer.Option(help="bioimageio: the package's licence (an SPDX id).")
    ] = "CC-BY-4.0",
    device: DeviceOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Export for deployment: dynamic batch, height and width; normalised float32 input,
    logits out. <file>.json beside it states the opset, the normalisation and the classes.
    bioimageio: a BioImage Model Zoo package (raw image in, probabilities out)."""
    with user_errors("the parity check runs the model on two small inputs: export with --no-check"):
        if format not in FORMAT_NAMES:
            raise DrunetError(f"--format {format!r} is not one of {', '.join(FORMAT_NAMES)}")
        if format == "bioimageio":
            from drunet.bioimageio import export_bioimageio  # the spec loads in seconds

            package = export_bioimageio(
                run,
                out,
                runs_dir=runs_dir,
                sample=sample,
                authors=author or (),
                license=license,
                opset=opset,
                overwrite=overwrite,
            )
            show_package(package, json_output)
            return
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
        show_export(result, check, where, json_output)


def show_export(
    result: ExportResult, check: bool, where: torch.device | str, json_output: bool
) -> None:
    """Print what an ONNX / pt2 export wrote (or, with ``--json``, its JSON)."""
    if json_output:
        typer.echo(json.dumps(export_json(result), indent=2))
        return
    if check:  # after the export, so that an error stays the only line
        show_device(where)
    what = f"{result.format}, opset {result.opset}" if result.opset else result.format
    console.print(f"wrote {result.path} ({what})", highlight=False, soft_wrap=True, markup=False)
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


def show_package(package: PackageResult, json_output: bool) -> None:
    """Print what a BioImage Model Zoo export wrote (or, with ``--json``, its JSON)."""
    info = {
        "folder": str(package.folder),
        "zip": str(package.zip) if package.zip else None,
        "format": "bioimageio",
        "weights": package.formats,
        "sample": package.sample,
        "parity": {f: p.max_abs_diff for f, p in package.parity.items()},
    }
    if json_output:
        typer.echo(json.dumps(info, indent=2))
        return
    for path, what in ((package.folder, "folder"), (package.zip, "zip")):
        if path is not None:
            console.print(
                f"wrote {path} (BioImage Model Zoo package, {what}; weights: "
                f"{', '.join(package.formats)})",
                highlight=False,
                soft_wrap=True,
                markup=False,
            )
    console.print(f"test tensors from {package.sample}", highlight=False, markup=False)


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
