"""The code's shape (issue 24): thin commands, small files.

Every ``*_command`` in ``drunet/cli`` parses flags and calls the library, so its body (after the
docstring) stays under 40 lines; every module under ``drunet/`` stays under 400 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "drunet"
MAX_COMMAND_BODY = 40
MAX_FILE_LINES = 400


def body_lines(function: ast.FunctionDef) -> int:
    """Lines from the first statement after the docstring to the function's last line."""
    body = function.body
    if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return int(function.end_lineno or 0) - body[0].lineno + 1


def commands() -> list[tuple[str, ast.FunctionDef]]:
    found = []
    for path in sorted((PACKAGE / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name.endswith("_command"):
                found.append((f"{path.name}:{node.name}", node))
    return found


def test_body_lines_counts_after_the_docstring() -> None:
    source = 'def f(\n    a,\n    b,\n):\n    """Doc.\n\n    More."""\n    x = 1\n    return x\n'
    function = ast.parse(source).body[0]
    assert isinstance(function, ast.FunctionDef)
    assert body_lines(function) == 2


def test_the_main_commands_are_found() -> None:
    names = {name.split(":")[1] for name, _ in commands()}
    assert {"train_command", "predict_command", "evaluate_command"} <= names


@pytest.mark.parametrize(("name", "function"), commands(), ids=[n for n, _ in commands()])
def test_command_bodies_are_thin(name: str, function: ast.FunctionDef) -> None:
    assert body_lines(function) < MAX_COMMAND_BODY, f"{name}: {body_lines(function)} lines"


def test_no_module_over_400_lines() -> None:
    sizes = {
        str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines())
        for p in sorted(PACKAGE.rglob("*.py"))
    }
    long = {name: lines for name, lines in sizes.items() if lines >= MAX_FILE_LINES}
    assert long == {}
