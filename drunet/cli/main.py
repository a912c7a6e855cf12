"""The ``drunet`` command: a thin Typer shell over the library."""

from __future__ import annotations

from typing import Annotated

import typer

from drunet import __version__
from drunet.cli.common import EXIT_CODES_HELP, console, setup_logging, state
from drunet.cli.compare import compare_command
from drunet.cli.demo import demo_command
from drunet.cli.evaluate import evaluate_command
from drunet.cli.export import export_command
from drunet.cli.plan import plan_command
from drunet.cli.predict import predict_command
from drunet.cli.push import push_command
from drunet.cli.train import train_command
from drunet.cli.verify import verify_command

app = typer.Typer(
    name="drunet",
    help="Deep Residual U-Net segmentation: train on a folder of images and masks, predict.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Help is printed as written: "[names]" and "[/x]" are text, not rich markup.
    rich_markup_mode=None,
)
app.command("train")(train_command)
app.command("predict")(predict_command)
app.command("demo")(demo_command)
app.command("verify")(verify_command)
app.command("evaluate")(evaluate_command)
app.command("export")(export_command)
app.command("compare")(compare_command)
app.command("plan")(plan_command)
app.command("push")(push_command)


def _version(value: bool) -> None:
    if value:
        console.print(f"drunet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks and debug logs.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    state.debug = debug
    setup_logging(debug)


def main() -> None:
    app()
