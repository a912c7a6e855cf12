"""Every command in README.md is run by a test.

The commands are read from README's ```bash blocks (one per line, ``\\`` continuations joined,
comments dropped) and its ```python blocks; ``CHECKS`` says how each is checked, and a command
without an entry (or an entry no longer in the README) fails
``test_every_readme_command_is_checked``:

- the examples run as written, in README order, in a folder holding small synthetic ``my_data``,
  ``scans``, ``test_data`` and ``volumes``, in-process; each ``drunet train`` gets
  ``--config <tiny recipe> --epochs 1`` appended (the last flag wins), so a run takes seconds;
- the quickstart: ``.ci/run`` installs ``.[dev]`` on a clean clone and runs exactly the README's
  test command; ``drunet demo`` is run by ``tests/cli/test_demo.py`` (one epoch through the CLI,
  and the full recipe reaching the promised Dice);
- the benchmark commands are not run in full (25 minutes, and minutes of timing): a dry run parses
  every flag with the real command or script (nothing runs), the figures beside them must be those
  the benchmark wrote under ``benchmarks/results/``, and the tiny variants are
  ``tests/cli/test_compare.py::test_compare_two_models`` (in the suite) and
  ``tests/test_benchmarks_smoke.py::test_bench_models_end_to_end`` (``-m slow``).
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tifffile
import typer
import yaml
from typer.testing import CliRunner

from drunet.cli.main import app
from drunet.datasets import make_synthetic, read_image, read_mask
from tests.conftest import tiny_recipe

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

QUICKSTART_DEMO = "test_quickstart_demo"
QUICKSTART_TESTS = "test_quickstart_test_command_is_what_ci_runs"
OWN_IMAGES = "test_example_your_own_images"
VOLUMES = "test_example_volumes"
ISBI = "test_isbi_benchmark_command"
SPEED = "test_speed_benchmark_command"
PLAN = "test_plan_benchmark_commands"
GIANT = "test_giant_benchmark_commands"

CHECKS = {
    "pip install -e .[dev] && drunet demo": QUICKSTART_DEMO,
    "python -m pytest -q -n 2": QUICKSTART_TESTS,
    "drunet verify my_data": OWN_IMAGES,
    "drunet train --data my_data --epochs 50 --name my-run": OWN_IMAGES,
    "drunet predict scans/ --model runs/my-run --out preds/": OWN_IMAGES,
    "drunet evaluate --model runs/my-run --data test_data --report --out my-eval": OWN_IMAGES,
    "drunet train --data volumes --set data.context_slices=1 --name volumes": VOLUMES,
    "drunet predict new_volume.tif --model runs/volumes --out volume-preds/": VOLUMES,
    "drunet compare --config isbi2012 --data ../shared/datasets/isbi2012/train --models "
    "drunet,unet_resnet34 --budget-minutes 25 --out isbi-compare": ISBI,
    "cd benchmarks && OMP_WAIT_POLICY=PASSIVE python bench_models.py --models drunet drunet_s "
    "unet_resnet34 --inputs 4x3x256x256 8x3x256x256 --rounds 8": SPEED,
    "SETS=isbi2012 dsb2018_nuclei LONG_SEEDS=1 benchmarks/plan_vs_default.sh": PLAN,
    "SETS=synth_thin synth_wide synth_empty LONG_SETS= SYNTH_MINUTES=3 "
    "benchmarks/plan_vs_default.sh": PLAN,
    "SETS=isbi2012 LONG_SETS= ARMS=plan benchmarks/plan_vs_default.sh": PLAN,
    "SETS=synth_thin LONG_SETS= SYNTH_MINUTES=3 ARMS=plan benchmarks/plan_vs_default.sh": PLAN,
    "SETS=synth_empty LONG_SETS= SYNTH_MINUTES=3 ARMS=plan benchmarks/plan_vs_default.sh": PLAN,
    "SETS= LONG_SETS=isbi2012 dsb2018_nuclei LONG_SEEDS=1 LONG_RECIPE=default "
    "benchmarks/plan_vs_default.sh": PLAN,
    "SETS=isbi2012 MINUTES=30 SEEDS=1 LONG_SETS= benchmarks/plan_vs_default.sh": PLAN,
    "python benchmarks/plan_sets.py table plan-vs-default/results.jsonl": PLAN,
    "cd benchmarks && python bench_giant.py --sizes 10000": GIANT,
    "cd benchmarks && python bench_giant.py --sizes 20000 40000 --tissue 0.1 --no-memory": GIANT,
}


def readme_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text("utf-8"), re.M | re.S)


def readme_commands() -> list[str]:
    """The shell commands of README's bash blocks, in order, as their words joined by spaces."""
    commands = []
    for block in readme_blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(" ".join(words))
    return commands


def commands_for(check: str) -> list[list[str]]:
    """The README's commands that ``check`` runs, in README order, as argument lists."""
    commands = [shlex.split(c) for c in readme_commands() if CHECKS.get(c) == check]
    assert commands, f"the README has no command checked by {check}"
    return commands


def test_every_readme_command_is_checked() -> None:
    commands = readme_commands()
    unchecked = [c for c in commands if c not in CHECKS]
    assert not unchecked, f"add each to CHECKS in {__file__} with a test that runs it: {unchecked}"
    assert set(CHECKS) <= set(commands), f"no longer in the README: {set(CHECKS) - set(commands)}"


def test_readme_is_a_front_page() -> None:
    assert len(README.read_text("utf-8").splitlines()) < 250


def test_readme_links_and_named_tests_exist() -> None:
    text = README.read_text("utf-8")
    for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        assert "://" in link or (ROOT / link).exists(), link
    for path, name in re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", text):
        assert (ROOT / path).is_file(), path
        if name:
            tree = ast.parse((ROOT / path).read_text("utf-8"))
            assert name in {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def test_readme_extras_are_the_packages_extras() -> None:
    """The extras table names only real extras, and ``dev`` holds every other one."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"][
        "optional-dependencies"
    ]
    section = README.read_text("utf-8").split("| extra | adds |", 1)[1].split("\n\n", 1)[0]
    named = re.findall(r"^\| `([\w-]+)` \|", section, re.M)
    assert named and set(named) <= set(extras), set(named) - set(extras)
    included = re.search(r"drunet\[([^\]]*)\]", " ".join(extras["dev"]))
    assert included and set(included.group(1).split(",")) == set(extras) - {"dev"}


def _run(args: list[str], *, tiny: Path) -> str:
    assert args[0] == "drunet", args
    extra = ["--config", str(tiny), "--epochs", "1"] if args[1] == "train" else []
    result = CliRunner().invoke(app, [*args[1:], *extra], env={"COLUMNS": "200"})
    assert result.exit_code == 0, (args, result.output)
    return result.output


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding the README examples' inputs, as the current directory."""
    make_synthetic(tmp_path / "my_data", 6, sizes=((48, 48), (40, 56)), seed=3)
    make_synthetic(tmp_path / "test_data", 3, sizes=((48, 48),), seed=4)
    (tmp_path / "scans").mkdir()
    for image in (tmp_path / "test_data" / "images").iterdir():
        shutil.copy(image, tmp_path / "scans" / image.name)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_recipe()))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_quickstart_demo() -> None:
    (install, demo) = [" ".join(c).split(" && ") for c in commands_for(QUICKSTART_DEMO)][0]
    assert install == "pip install -e .[dev]" and demo == "drunet demo"
    assert 'pip install --quiet -e ".[dev]"' in (ROOT / ".ci" / "run").read_text("utf-8")
    tests = (ROOT / "tests" / "cli" / "test_demo.py").read_text("utf-8")
    assert '["demo", "--out"' in tests and "def test_full_demo_reaches_dice_090" in tests


def test_quickstart_test_command_is_what_ci_runs() -> None:
    [command] = commands_for(QUICKSTART_TESTS)
    ci = (ROOT / ".ci" / "run").read_text("utf-8").splitlines()
    runs = [line.strip() for line in ci if re.match(r"\s*python -m pytest\b", line)]
    assert runs == [" ".join(command)]


def test_example_your_own_images(workspace: Path) -> None:
    tiny = workspace / "tiny.yaml"
    for args in commands_for(OWN_IMAGES):
        _run(args, tiny=tiny)
    assert (workspace / "runs" / "my-run" / "best.safetensors").is_file()
    for scan in (workspace / "scans").iterdir():
        mask = read_mask(workspace / "preds" / f"{scan.stem}_mask.png")
        assert mask.shape == read_image(scan).shape[:2]
        assert (workspace / "preds" / f"{scan.stem}_overlay.png").is_file()
    for name in ("per_image.csv", "summary.json", "report.html"):
        assert (workspace / "my-eval" / name).is_file(), name
    # The Python example works on the same run and scans.
    [python] = readme_blocks("python")
    names: dict[str, Any] = {}
    exec(compile(python, "README.md", "exec"), names)
    assert names["mask"].shape == read_image(workspace / "scans" / "000.png").shape[:2]
    assert names["probs"].shape == (2, *names["mask"].shape)
    assert {p.name for p in (workspace / "my-model").iterdir()} >= {"model.safetensors"}


def test_example_volumes(workspace: Path) -> None:
    make_synthetic(workspace / "volumes", 16, sizes=((48, 48),), seed=5, stack_slices=4)
    new = make_synthetic(workspace / "new", 4, sizes=((48, 48),), seed=6, stack_slices=4)
    shutil.copy(next((new / "images").iterdir()), workspace / "new_volume.tif")
    for args in commands_for(VOLUMES):
        _run(args, tiny=workspace / "tiny.yaml")
    pages = tifffile.imread(workspace / "volume-preds" / "new_volume_mask.tif")
    assert pages.shape == tifffile.imread(workspace / "new_volume.tif").shape


def test_isbi_benchmark_command() -> None:
    """Dry run: the flags parse with the real command; the figures are those it wrote."""
    [args] = commands_for(ISBI)
    group = typer.main.get_command(app)
    command = group.commands[args[1]]
    with type(group).context_class(group, info_name="drunet") as root:
        params = command.make_context(args[1], args[2:], parent=root).params
    assert params["models"] == "drunet,unet_resnet34" and params["budget_minutes"] == 25
    assert (ROOT / "drunet" / "configs" / f"{params['config']}.yaml").is_file()
    _figures_are_in("ISBI 2012", ROOT / "benchmarks" / "results" / "isbi2012" / "compare.md")


class _Parsed(Exception):
    pass


def _dry_run(monkeypatch: pytest.MonkeyPatch, script: str, flags: list[str]) -> Any:
    """Run ``benchmarks/<script>`` until its argument parser has read ``flags``: the namespace."""
    parse = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, *a: Any, **k: Any) -> argparse.Namespace:
        raise _Parsed(parse(self, *a, **k))

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
        patch.setattr(sys, "argv", [script, *flags])
        patch.syspath_prepend(str(ROOT / "benchmarks"))
        patch.chdir(ROOT / "benchmarks")
        with pytest.raises(_Parsed) as parsed:
            runpy.run_path(script, run_name="__main__")
    return parsed.value.args[0]


def test_speed_benchmark_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dry run: the script's own argument parser reads every flag, then it stops."""
    [args] = commands_for(SPEED)
    assert args[:3] == ["cd", "benchmarks", "&&"]
    env, python, script, *flags = args[3:]
    assert env == "OMP_WAIT_POLICY=PASSIVE" and python == "python"
    namespace = _dry_run(monkeypatch, script, flags)
    assert namespace.models == ["drunet", "drunet_s", "unet_resnet34"] and namespace.rounds == 8
    _figures_are_in("Training speed", ROOT / "benchmarks" / "results" / "models.md")


def test_plan_benchmark_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shell script's variables are ones it reads, and it parses (bash -n); the table
    command's flags parse; the README's figures are those of the results file."""
    script = ROOT / "benchmarks" / "plan_vs_default.sh"
    text = script.read_text("utf-8")
    *runs, table = commands_for(PLAN)
    for args in runs:  # VAR="a b" … script, re-split on spaces: the words with "=" name VARs
        assert args[-1] == "benchmarks/plan_vs_default.sh" and os.access(script, os.X_OK)
        for name in (word.split("=", 1)[0] for word in args[:-1] if "=" in word):
            assert re.search(rf"\${{{name}\b", text), f"{name} is not read by {script.name}"
    assert shutil.which("bash") is not None
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    python, path, *flags = table
    assert python == "python" and path == "benchmarks/plan_sets.py"
    namespace = _dry_run(monkeypatch, "plan_sets.py", flags)
    assert namespace.command == "table"
    _figures_are_in("Plan against default", ROOT / "benchmarks" / "results" / "plan_vs_default.md")


def test_giant_benchmark_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dry runs of bench_giant.py; the README's figures are those of the results file."""
    for args in commands_for(GIANT):
        assert args[:3] == ["cd", "benchmarks", "&&"] and args[3:5] == ["python", "bench_giant.py"]
        namespace = _dry_run(monkeypatch, "bench_giant.py", args[5:])
        assert namespace.sizes and all(size >= 10000 for size in namespace.sizes)
    _figures_are_in("Giant images", ROOT / "benchmarks" / "results" / "giant.md")


def _figures_are_in(heading: str, results: Path) -> None:
    """Every number in the table under README's ``heading`` appears in ``results``."""
    section = README.read_text("utf-8").split(f"**{heading}", 1)[1].split("\n**", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    written = results.read_text("utf-8")
    figures = {f for line in table[1:] for f in re.findall(r"\d+\.\d+(?: \([\d.–]+\))?", line)}
    assert len(figures) >= 8
    missing = {f for f in figures if f not in written and f != "1.00"}
    assert not missing, f"figures in README not in {results.relative_to(ROOT)}: {missing}"
    assert os.path.getsize(results) > 0
