"""``drunet push``: a run as a Hugging Face Hub model (weights, config.json, model card)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from drunet.cli.common import OverwriteOption, console, user_errors
from drunet.hub.push import push_to_hub


def push_command(
    run: Annotated[
        str,
        typer.Argument(help="Run folder (its best weights), save_pretrained folder or weights."),
    ],
    repo: Annotated[str, typer.Argument(help="Hub repository ORG/NAME (created if missing).")],
    private: Annotated[bool, typer.Option(help="Create the repository private.")] = False,
    license: Annotated[
        str | None, typer.Option(help="Licence id for the model card (mit, apache-2.0, …).")
    ] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option(help="A Hub dataset id the model was trained on (repeatable)."),
    ] = None,
    revision: Annotated[
        str | None, typer.Option(help="Branch to commit to (default: main).")
    ] = None,
    message: Annotated[str | None, typer.Option(help="Commit message.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Keep the uploaded folder here (default: a temporary one).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Write the folder to --out; upload nothing.")
    ] = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Upload a model to the Hugging Face Hub: model.safetensors, config.json and a model card
    README.md with the run's validation scores and training data. Log in first with
    `hf auth login` (or set HF_TOKEN); needs pip install "drunet[hub]"."""
    with user_errors():
        result = push_to_hub(
            run,
            repo,
            private=private,
            revision=revision,
            commit_message=message,
            license=license,
            datasets=dataset or (),
            folder=out,
            dry_run=dry_run,
            overwrite=overwrite,
        )
    if result.folder is not None:
        console.print(f"wrote {', '.join(result.files)} in {result.folder}", markup=False)
    if result.url is not None:
        console.print(f"pushed {repo}: {result.url}", markup=False, soft_wrap=True)
        console.print(f"use it with: drunet predict IMAGES --model hf:{repo}", markup=False)
