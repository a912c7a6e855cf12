"""The documentation site's own promises: every error class is on the troubleshooting page, the
generated CLI reference holds every flag ``--help`` prints, and every page is in the navigation.
(``mkdocs build --strict`` itself, which fails on a broken link, runs in ``.ci/run``.)"""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
from pathlib import Path
from types import ModuleType

import pytest
import typer
import yaml
from typer.testing import CliRunner

from drunet.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _hook(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, DOCS / "hooks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def error_classes() -> set[str]:
    """Every class in ``drunet/`` that derives, directly or not, from ``DrunetError`` (read from
    the source, so a new one anywhere in the package is found without importing it)."""
    bases: dict[str, set[str]] = {}
    for path in (ROOT / "drunet").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                names = {
                    b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
                }
                bases.setdefault(node.name, set()).update(names)
    found = {"DrunetError"}
    while True:
        more = {name for name, parents in bases.items() if parents & found} - found
        if not more:
            return found
        found |= more


def test_the_error_scan_finds_the_known_classes() -> None:
    known = {
        "DrunetError",
        "DataError",
        "ConfigError",
        "OptionError",
        "OutputError",
        "NonFiniteLoss",
    }
    assert known <= error_classes()


def test_every_error_class_is_explained_on_the_troubleshooting_page() -> None:
    page = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    section = page.split("## Error classes", 1)[1].split("\n## ", 1)[0]
    rows = {
        m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)`[^|]*\|([^|]+)\|", section, re.M)
    }
    missing = error_classes() - set(rows)
    assert not missing, (
        f"add a row (cause and fix) to docs/troubleshooting.md for {sorted(missing)}"
    )
    assert all(len(cause.split()) >= 8 for cause in rows.values()), rows


@pytest.fixture(scope="module")
def cli_page() -> str:
    return _hook("cli_reference").render(app)


def test_cli_reference_has_a_section_per_command(cli_page: str) -> None:
    commands = ["compare", "demo", "evaluate", "export", "plan", "predict", "train", "verify"]
    for name in commands:
        assert f"\n## drunet {name}\n" in cli_page, name
    # A known row, written out: the flag, its metavar, its help and its default.
    assert (
        "| `--overlap <float>` | Share of a tile its neighbours overlap, in [0, 1). "
        "[default: 0.5] |" in cli_page
    )


FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


@pytest.mark.parametrize("command", ["train", "predict", "evaluate", "export", "compare", "plan"])
def test_cli_reference_names_every_flag_help_prints(cli_page: str, command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    # In --help the flags are the first column of the options list.
    options = result.output.partition("Options:")[2].splitlines()
    printed = {
        m
        for line in options
        for m in FLAG.findall(line.split("  ", 2)[1] if line.startswith("  ") else "")
    }
    printed.discard("--help")
    section = cli_page.split(f"\n## drunet {command}\n", 1)[1].split("\n## drunet ", 1)[0]
    names = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    on_page = {flag for cell in names for flag in FLAG.findall(cell)}
    assert len(printed) >= 5 and printed == on_page, sorted(printed ^ on_page)


def _nav_pages(entries: list) -> list[str]:
    pages: list[str] = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_every_page_is_in_the_navigation_and_every_entry_exists() -> None:
    config = yaml.safe_load(
        (ROOT / "mkdocs.yml").read_text(encoding="utf-8").replace("!!python", "#")
    )
    nav = _nav_pages(config["nav"])
    generated = {_hook("cli_reference").PAGE}
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert set(nav) - generated == on_disk
    assert len(nav) == len(set(nav))


def _docs_commands() -> list[tuple[str, list[str]]]:
    commands = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"^```bash\n(.*?)^```", text, re.M | re.S):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words[:1] == ["drunet"]:
                    commands.append((page.name, words))
    return commands


def test_every_drunet_command_on_the_pages_parses() -> None:
    """A dry run of each ``drunet`` line in the pages' bash blocks: the command exists and every
    flag and value parses (nothing runs), so a renamed or removed flag fails here."""
    group = typer.main.get_command(app)
    commands = _docs_commands()
    assert len(commands) >= 25
    for page, words in commands:
        assert words[1] in group.commands, (page, words)
        with type(group).context_class(group, info_name="drunet") as root:
            try:
                group.commands[words[1]].make_context(words[1], words[2:], parent=root)
            except Exception as error:  # click's usage errors: a flag or value that does not parse
                pytest.fail(f"docs/{page}: {' '.join(words)}: {error}")
