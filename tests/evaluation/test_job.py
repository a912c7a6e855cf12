"""The evaluate command is a thin shell: every option is an EvaluateJob field, the command body
is short, and `--out` never loses a file drunet did not write (issue 25, class 2)."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import textwrap
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import drunet.cli.evaluate as evaluate_cli
from drunet.cli.main import app
from drunet.datasets import write_mask
from drunet.evaluation import EvaluateJob
from tests.evaluation.test_pairing_and_classes import FIRST_ROW, TOP

runner = CliRunner()
CONSOLE_ONLY = {"json_output"}  # --json changes what is printed; the API returns the summary


def _options() -> dict[str, object]:
    command = typer.main.get_command(app).commands["evaluate"]  # type: ignore[attr-defined]
    return {param.name: param for param in command.params}


def test_every_option_is_a_job_field() -> None:
    fields = {field.name for field in dataclasses.fields(EvaluateJob)}
    assert set(_options()) - CONSOLE_ONLY == fields


def test_the_flags_reach_the_job(monkeypatch, tmp_path: Path) -> None:
    jobs: list[EvaluateJob] = []

    def capture(job, on_start=None, on_done=None):
        jobs.append(job)
        raise typer.Exit(0)

    monkeypatch.setattr(evaluate_cli, "run_evaluation", capture)
    model_flags = [
        *("--model", "r", "--data", "d", "--split", "val", "--out", "o", "--hd95"),
        *("--spacing", "0.5", "2", "--report", "--worst", "3", "--overwrite"),
        *("--absent-as-one", "--runs-dir", "rs", "--tile-size", "64", "--overlap", "0.25"),
        *("--batch-size", "2", "--max-pixels", "9", "--tta", "--tta-rot90", "--threshold"),
        *("0.7", "--min-size", "5", "--fill-holes", "--largest", "--device", "cpu"),
        *("--empty-below", "40"),
        *("--precision", "fp32", "--compile"),
    ]
    assert runner.invoke(app, ["evaluate", *model_flags]).exit_code == 0
    folder_flags = ["--pred", "p", "--truth", "t", "--stack", "{name}_z{index}", "--classes", "4"]
    assert runner.invoke(app, ["evaluate", *folder_flags]).exit_code == 0
    model, folder = jobs
    assert model == EvaluateJob(
        model="r", data=Path("d"), split="val", out=Path("o"), hd95=True, spacing=(0.5, 2.0),
        report=True, worst=3, overwrite=True, absent_as_one=True, runs_dir=Path("rs"),
        tile_size=64, overlap=0.25, batch_size=2, max_pixels=9, tta=True, tta_rot90=True,
        threshold=0.7, min_size=5, fill_holes=True, largest=True, empty_below=40, device="cpu",
        precision="fp32", compile=True,
    )  # fmt: skip
    assert folder == EvaluateJob(
        pred=Path("p"), truth=Path("t"), stack="{name}_z{index}", classes=4
    )
    set_by_a_test = {
        name
        for name in _options()
        if getattr(model, name, None) != getattr(EvaluateJob(), name, None)
    } | {"pred", "truth", "stack", "classes"}
    assert set(_options()) - CONSOLE_ONLY == set_by_a_test  # no option left untried


def test_the_command_body_is_short() -> None:
    tree = ast.parse(textwrap.dedent(inspect.getsource(evaluate_cli.evaluate_command)))
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef)
    first = function.body[1]  # after the docstring
    assert function.end_lineno is not None
    assert function.end_lineno - first.lineno + 1 < 40


@pytest.fixture
def folders(tmp_path: Path) -> tuple[list[str], Path]:
    write_mask(tmp_path / "truth" / "a.png", TOP)
    write_mask(tmp_path / "pred" / "a_mask.png", FIRST_ROW)
    out = tmp_path / "out"
    args = ["evaluate", "--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth")]
    return [*args, "--out", str(out), "--report"], out


@pytest.mark.parametrize("name", ["summary.json", "per_image.csv", "report.html", "per_stack.csv"])
def test_a_file_drunet_did_not_write_is_refused_and_kept(folders, name: str) -> None:
    args, out = folders
    out.mkdir()
    (out / name).write_text("the user's own\n")
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert str(out / name) in result.output and "--overwrite" in result.output
    assert (out / name).read_text() == "the user's own\n"
    written = {p.name for p in out.iterdir()} - {".drunet-manifest"}
    assert written == {name}  # refused before writing anything


def test_a_rerun_replaces_drunets_own_files_and_overwrite_replaces_any(folders) -> None:
    args, out = folders
    assert runner.invoke(app, args).exit_code == 0
    (out / "summary.json").write_text("{}")  # drunet's name, in its manifest: replaced again
    assert runner.invoke(app, args).exit_code == 0
    assert json.loads((out / "summary.json").read_text())["images"] == 1
    (out / ".drunet-manifest").unlink()  # now every file there looks foreign
    assert runner.invoke(app, args).exit_code == 2
    result = runner.invoke(app, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["mean"]["dice"] == pytest.approx(2 / 3)
