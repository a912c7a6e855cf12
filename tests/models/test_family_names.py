"""A model family is named in ``drunet/models/`` only: elsewhere, code asks the registry.

Outside ``drunet/models/``, no code may name a family's classes or tables (``DRUNet``,
``SmpModel``, ``PRESETS`` …) or hold a family's model names or name patterns as strings
(``"unet_resnet34"``, ``"drunet_s"``, ``"smp:"``). Docstrings and comments may mention them.
"""

from __future__ import annotations

import ast
from pathlib import Path

from drunet.models.registry import model_names

PACKAGE = Path(__file__).resolve().parents[2] / "drunet"
FAMILY_SYMBOLS = {
    "DRUNet",
    "DRUNetEncoder",
    "DRUNetDecoder",
    "DRUNetParams",
    "SmpModel",
    "SmpParams",
    "PRESETS",
    "SMP_PREFIX",
    "BASELINE",
    "parse_smp_name",
    "encoder_names",
}
# Names whose strings may appear: "drunet" is also the program's name.
NEUTRAL_NAMES = {"drunet"}
# What legitimately remains, file → the symbols or strings it may hold, and why.
ALLOWED: dict[str, set[str]] = {
    # The package's public API re-exports the model classes lazily (``drunet.DRUNet``).
    "__init__.py": {"DRUNet", "SmpModel"},
    # The default of --models: which models a comparison trains, a choice and not a check.
    "cli/compare.py": {"unet_resnet34"},
    # drunet plan picks one of two presets by measured rules (its choice), and reads a preset's
    # depth and stem stride for the input multiple: helper plan's file, left as it is.
    "plan/rules.py": {"drunet_s", "drunet_s2", "PRESETS"},
}


def _docstring_nodes(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def family_mentions(source: str) -> set[str]:
    """The family symbols and model-name strings that ``source``'s code (not its docstrings or
    comments) holds."""
    names = set(model_names()) - NEUTRAL_NAMES
    tree = ast.parse(source)
    docstrings = _docstring_nodes(tree)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in FAMILY_SYMBOLS:
            found.add(node.id)
        elif isinstance(node, ast.Attribute) and node.attr in FAMILY_SYMBOLS:
            found.add(node.attr)
        elif isinstance(node, ast.alias) and node.name in FAMILY_SYMBOLS:
            found.add(node.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in docstrings:
                continue
            if "smp:" in node.value:
                found.add("smp:")
            found.update(name for name in names if name in node.value)
    return found


def test_the_check_finds_family_knowledge() -> None:
    code = (
        "from drunet.models import SmpModel\n"
        "def f(model, name):\n"
        '    """DRUNet and unet_resnet34 may be named here."""\n'
        "    # and here: smp:Unet:resnet18\n"
        "    return isinstance(model, SmpModel) or name.startswith('smp:') or name == 'drunet_s'\n"
    )
    assert family_mentions(code) == {"SmpModel", "smp:", "drunet_s"}
    assert family_mentions("x = models.DRUNet(1, 1)\nname = f'{a}unet_resnet34'\n") == {
        "DRUNet",
        "unet_resnet34",
    }


def test_no_family_is_named_outside_drunet_models() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "models":
            continue
        found = family_mentions(path.read_text()) - ALLOWED.get(str(relative), set())
        if found:
            offenders[str(relative)] = sorted(found)
    assert offenders == {}
