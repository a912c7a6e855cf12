"""mkdocs hook: ``cli.md``, the command-line reference, rendered from the Typer app itself.

Every command, argument and option of ``drunet`` is read from ``drunet.cli.main.app`` when the
site is built — the same usage lines and help records ``drunet COMMAND --help`` prints — so the
page cannot drift from the code. ``tests/test_docs.py`` checks that it names every option.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path
from typing import Any

import typer

PAGE = "cli.md"
ROOT = Path(__file__).resolve().parents[2]  # the checkout whose drunet the page describes


def _text(text: str) -> str:
    """Help text as Markdown that shows it as written: HTML and emphasis characters escaped."""
    return html.escape(text, quote=False).replace("*", "\\*").replace("|", "\\|")


def _cell(text: str) -> str:
    return _text(" ".join(text.split()))


def _table(command: Any, ctx: Any) -> list[str]:
    """One row per visible argument or option: its names and metavar, then its help."""
    rows = []
    for param in command.params:
        record = param.get_help_record(ctx)
        if record is not None:
            names, help_text = record
            rows.append(f"| `{' '.join(names.split())}` | {_cell(help_text)} |")
    if not rows:
        return []
    return ["| argument / option | description |", "|---|---|", *rows, ""]


def _section(command: Any, ctx: Any, title: str) -> list[str]:
    paragraphs = (command.help or "").replace("\b\n", "").strip().split("\n\n")
    lines = [title, ""]
    lines += [_text(" ".join(p.split())) + "\n" for p in paragraphs if p.strip()]
    lines += ["```text", command.get_usage(ctx), "```", ""]
    lines += _table(command, ctx)
    if command.epilog:  # click's "\b" (keep this paragraph's line breaks) is not text
        lines += ["```text", command.epilog.replace("\b", "").strip(), "```", ""]
    return lines


def render(app: typer.Typer) -> str:
    """The whole reference as Markdown: the root command, then one section per command."""
    group = typer.main.get_command(app)
    context = type(group).context_class
    lines = [
        "# Command-line reference",
        "",
        "This page is generated from the `drunet` command itself when the site is built",
        "(`docs/hooks/cli_reference.py`): it holds exactly what `drunet --help` and",
        "`drunet COMMAND --help` print.",
        "",
    ]
    with context(group, info_name="drunet") as root:
        lines += _section(group, root, "## drunet")
        for name in group.list_commands(root):
            command = group.commands[name]
            with context(command, info_name=name, parent=root) as ctx:
                lines += _section(command, ctx, f"## drunet {name}")
    return "\n".join(lines)


def on_files(files: Any, config: Any) -> Any:
    """Add the generated page to the site (it has no file under ``docs/``)."""
    from mkdocs.structure.files import File

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from drunet.cli.main import app

    files.append(File.generated(config, PAGE, content=render(app)))
    return files
