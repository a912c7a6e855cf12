"""``drunet verify``: check a dataset folder before training, file by file, and show its
fingerprint (what ``drunet plan`` chooses the recipe from; measured once, see
:mod:`drunet.plan.cache`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from drunet.cli.common import PROBLEMS_FOUND_EXIT, console, user_errors
from drunet.config import ExperimentConfig, compose_config
from drunet.datasets import VerifyReport, discover, format_summary_lines, verify_dataset
from drunet.errors import DrunetError
from drunet.plan import Fingerprint, fingerprint_config, fingerprint_lines

ERRORS_FOUND_EXIT = PROBLEMS_FOUND_EXIT


def verify_command(
    data: Annotated[
        Path | None, typer.Argument(help="Dataset folder (images/ + masks/, …).")
    ] = None,
    data_option: Annotated[
        Path | None, typer.Option("--data", help="The dataset folder (the same as DATA).")
    ] = None,
    images: Annotated[Path | None, typer.Option(help="Explicit images folder.")] = None,
    masks: Annotated[Path | None, typer.Option(help="Explicit masks folder.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML experiment file: mask options, classes, patch size.")
    ] = None,
    num_classes: Annotated[
        int | None, typer.Option(help="Classes the model will have (default: from the masks).")
    ] = None,
    patch_size: Annotated[int | None, typer.Option(help="Training patch side.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key, e.g. data.masks.ignore_index=255"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Report every problem in a dataset (one line each, naming the file and the fix), a
    summary of what training would use and the fingerprint the plan reads (sizes, intensities,
    classes, empty masks, objects, structure widths). Exit code 1 when there are errors."""
    with user_errors():
        if data is not None and data_option is not None and data != data_option:
            raise DrunetError(f"two dataset folders: {data} and --data {data_option}; give one")
        flags = {
            "data.root": data or data_option,
            "data.layout.images": images,
            "data.layout.masks": masks,
            "model.num_classes": num_classes,
            "data.augmentation.patch_size": patch_size,
        }
        # defaults < --config < --set < flags, merged and validated once (as drunet train).
        cfg = compose_config(config, set_ or [], flags)
        # Explicit --images/--masks without a folder: find the pairs here (a user error, exit 2,
        # when there are neither).
        source = cfg.data.root or discover(None, cfg.data.layout, strict=False)
        report = verify_dataset(
            source,
            cfg.data.masks,
            layout=cfg.data.layout,
            normalization=cfg.data.normalization,
            num_classes=cfg.model.num_classes,
            in_channels=cfg.model.in_channels,
            patch_size=cfg.data.augmentation.patch_size,
        )
        fingerprint = _fingerprint(cfg)
    if as_json:
        fields = {"fingerprint": None if isinstance(fingerprint, str) else fingerprint.to_json()}
        print(json.dumps({**report.to_json(), **fields}, indent=2, ensure_ascii=False))
    else:
        _render(report, fingerprint)
    if not report.ok:
        raise typer.Exit(ERRORS_FOUND_EXIT)


def _fingerprint(cfg: ExperimentConfig) -> Fingerprint | str:
    """The training pairs' fingerprint, or why it could not be measured."""
    try:
        return fingerprint_config(cfg)
    except DrunetError as err:  # the report names each unreadable pair
        return str(err)


def _render(report: VerifyReport, fingerprint: Fingerprint | str) -> None:
    if report.problems:
        table = Table(title=f"{len(report.problems)} problem(s)", show_lines=False)
        for column in ("severity", "file", "problem", "fix"):
            table.add_column(column, overflow="fold")
        colours = {"error": "red", "warning": "yellow", "note": "cyan"}
        for problem in report.problems:
            colour = colours.get(problem.severity, "white")
            table.add_row(  # file names and messages as written, never read as rich markup
                f"[{colour}]{problem.severity}[/]",
                escape(str(problem.path or "")),
                escape(problem.message),
                escape(problem.fix),
            )
        console.print(table)
    else:
        console.print("[green]no problems found[/]")
    if report.summary is not None:
        for line in format_summary_lines(report.summary):
            console.print(line, highlight=False, soft_wrap=True, markup=False)
    if isinstance(fingerprint, str):
        console.print(f"fingerprint: not measured ({escape(fingerprint)})", highlight=False)
    else:
        console.print("[bold]fingerprint[/] (what drunet plan chooses the recipe from)")
        for line in fingerprint_lines(fingerprint):
            console.print(line, highlight=False, soft_wrap=True, markup=False)
    errors = len(report.errors)
    if errors:
        console.print(f"[bold red]{errors} error(s)[/]: training would refuse to start")
