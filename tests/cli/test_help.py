"""Every command has --help listing each option with its help as written; the version."""

from __future__ import annotations

import pytest
import typer.main

from drunet import __version__
from drunet.cli.main import app

COMMANDS = typer.main.get_command(app).commands  # the group's commands, by name
NAMES = sorted(COMMANDS)  # a new command is covered without touching this file
WIDE = {"COLUMNS": "200"}


def _words(text: str) -> str:
    return " ".join(text.split())  # help is re-wrapped to the terminal


def _letters(text: str) -> str:
    return "".join(text.split())  # wrapping may also break after a hyphen ("re-" / "initialise")


def test_every_command_is_registered() -> None:
    assert {"train", "predict", "demo", "verify", "evaluate", "export", "compare"} <= set(NAMES)


def test_root_help_lists_commands_and_exit_codes(runner) -> None:
    result = runner.invoke(app, ["--help"], env=WIDE)
    assert result.exit_code == 0
    for name in NAMES:
        assert name in result.output
    output = _words(result.output)
    for code in ("0 done", "1 verify found problems", "2 usage or input error", "3 predict"):
        assert code in output


@pytest.mark.parametrize("name", NAMES)
def test_command_help_lists_every_option_with_its_help_as_written(runner, name: str) -> None:
    result = runner.invoke(app, [name, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    output = _words(result.output)
    assert f"{name} [OPTIONS]" in output
    for param in COMMANDS[name].params:
        if param.param_type_name == "option":
            assert all(opt in output for opt in param.opts), (param.opts, result.output)
        help_text = getattr(param, "help", None)
        if help_text:  # brackets and all: help is not read as rich markup
            assert _letters(help_text) in _letters(output), (help_text, result.output)


def test_split_file_help_keeps_its_brackets(runner) -> None:
    result = runner.invoke(app, ["train", "--help"], env=WIDE)
    assert '{"train": [names], "val": [names]}' in result.output


def test_version(runner) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"drunet {__version__}"
