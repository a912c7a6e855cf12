"""``drunet compare``: train several models on the same split and budget; one table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from drunet.cli.common import OverwriteOption, console, user_errors
from drunet.cli.device import DeviceOption, show_device, training_device
from drunet.cli.progress import LineReporter
from drunet.compare import compare_models, write_reports
from drunet.compare.run import check_out_dir
from drunet.compare.tables import table_rows
from drunet.config import compose_config, updated
from drunet.device import resolve_device
from drunet.errors import DrunetError
from drunet.report.markdown import markdown


def compare_command(
    data: Annotated[Path | None, typer.Option(help="Dataset folder (images/ + masks/, …).")] = None,
    models: Annotated[
        str, typer.Option(help="Comma-separated model names.")
    ] = "drunet,unet_resnet34",
    epochs: Annotated[int | None, typer.Option(min=1, help="Epochs per model.")] = None,
    budget_minutes: Annotated[
        float | None, typer.Option(help="Wall-clock training minutes per model (equal budget).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="YAML recipe shared by all models, or a bundled name (e.g. isbi2012)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for runs, tables and figures.")] = Path(
        "compare"
    ),
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config key for all models.")
    ] = None,
    device: DeviceOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Train each model with the same split, augmentation, loss and budget, evaluate them on
    the same held-out images, and write compare.md/csv/json, curves.png, predictions.png and
    report.html (the models side by side)."""
    with user_errors(_OOM_HINT):
        names = [m.strip() for m in models.split(",") if m.strip()]
        if len(names) < 1:
            raise DrunetError("--models needs at least one model name")
        check_out_dir(out, names, overwrite)  # before the configuration is read
        flags = {
            "data.root": data,
            "train.epochs": epochs,
            "train.max_minutes": budget_minutes,
            "train.device": training_device(device, "auto") if device else None,
        }
        # A budget without --epochs: the budget decides when to stop. This stands where the old
        # order put it, above --config and below --set (a --set train.epochs still bounds it).
        budget = ["train.epochs=100000"] if budget_minutes is not None and epochs is None else []
        # defaults < --config < --set < flags, merged and validated once (as drunet train).
        cfg = compose_config(config, [*budget, *(set_ or [])], flags)
        if device is None:  # $DRUNET_DEVICE where neither the flag nor the config chose
            chosen = training_device(None, cfg.train.device)
            cfg = cfg if chosen is None else updated(cfg, {"train.device": chosen})
        show_device(resolve_device(cfg.train.device))  # where training (and scoring) run
        reports, held_out = compare_models(
            cfg,
            names,
            out,
            reporter_factory=_reporter,
            device=cfg.train.device,
            overwrite=overwrite,
        )
        paths = write_reports(reports, held_out, out, overwrite=overwrite)
    print_table(table_rows(reports), f"held-out images: {len(held_out)}")
    console.print(
        f"tables: {paths['md']}, {paths['csv']}; curves: {paths['curves']}; "
        f"figure: {paths['figure']}; report: {paths['report']}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )


_OOM_HINT = "lower data.batch_size or data.augmentation.patch_size (--set key=value)"


def print_table(rows: list[dict[str, str]], title: str) -> None:
    """Rich on a terminal; Markdown in a log file or pipe, where a rich table would cut
    numbers and names (``0.7…``) to fit a guessed width."""
    if not console.is_terminal:
        text = f"{title}\n\n{markdown(rows)}"
        console.print(text, highlight=False, soft_wrap=True, markup=False, end="")
        return
    table = Table(title=title)
    for column in rows[0]:
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row.values()))  # model names as typed
    console.print(table)


def _reporter(name: str) -> LineReporter:
    # One line per epoch: a comparison runs for long and several live bars would interleave.
    console.print(f"[bold]training {escape(name)}[/]", highlight=False)
    return LineReporter(console)
