"""Every command has helpful --help, and the version is reported."""

from __future__ import annotations

import pytest

from drunet import __version__
from drunet.cli.main import app


def test_root_help_lists_commands(runner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "predict", "demo"):
        assert command in result.output


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("train", ["--data", "--model", "--epochs", "--batch-size", "--runs-dir", "--name"]),
        ("predict", ["--model", "--out"]),
        ("demo", ["--out", "--epochs"]),
    ],
)
def test_command_help_documents_options(runner, command: str, options: list[str]) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in options:
        assert option in result.output


def test_version(runner) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"drunet {__version__}"
