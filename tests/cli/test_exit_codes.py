"""Exit codes (0 done, 1 verify found problems, 2 usage or input error, 3 some inputs failed)
and text printed as written: paths and names holding "[...]" are not rich markup."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from drunet.cli.common import (
    DONE_EXIT,
    PARTIAL_EXIT,
    PROBLEMS_FOUND_EXIT,
    USER_ERROR_EXIT,
)
from drunet.cli.main import app
from drunet.datasets import write_mask

WIDE = {"COLUMNS": "400"}  # one line per message, whatever the path length


def test_the_codes_are_distinct() -> None:
    assert len({DONE_EXIT, PROBLEMS_FOUND_EXIT, USER_ERROR_EXIT, PARTIAL_EXIT}) == 4
    assert (DONE_EXIT, PROBLEMS_FOUND_EXIT, USER_ERROR_EXIT, PARTIAL_EXIT) == (0, 1, 2, 3)


def test_0_when_done(runner, tiny_data) -> None:
    assert runner.invoke(app, ["verify", str(tiny_data)], env=WIDE).exit_code == DONE_EXIT


def test_1_when_verify_finds_problems(runner, tiny_data, tmp_path) -> None:
    root = tmp_path / "data"
    shutil.copytree(tiny_data, root)
    (root / "masks" / "000.png").unlink()  # an image without its mask
    result = runner.invoke(app, ["verify", str(root)], env=WIDE)
    assert result.exit_code == PROBLEMS_FOUND_EXIT, result.output
    assert "000.png" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--no-such-flag"],  # usage
        ["predict"],  # a missing argument
        ["verify", "--config", "no-such-config"],  # input: neither a file nor a bundled name
    ],
)
def test_2_for_usage_and_input_errors(runner, args: list[str]) -> None:
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == USER_ERROR_EXIT, result.output


def test_predict_3_when_some_inputs_fail_and_2_when_all_do(
    runner, trained_run, tiny_data, tmp_path
):
    folder = tmp_path / "in"
    shutil.copytree(tiny_data / "images", folder)
    (folder / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["predict", str(folder), "--model", str(trained_run), "--out", str(out)]
    )
    assert result.exit_code == PARTIAL_EXIT, result.output
    assert "1 input(s) failed" in result.output and "broken.png" in result.output
    assert len(list(out.glob("*_mask.png"))) == 6

    args = ["predict", str(folder / "broken.png"), "--model", str(trained_run)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "none")])
    assert result.exit_code == USER_ERROR_EXIT, result.output
    assert not list((tmp_path / "none").glob("*_mask.png"))


def test_evaluate_3_when_some_pairs_fail(runner, trained_run, tiny_data, tmp_path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    write_mask(data / "masks" / "001.png", np.zeros((12, 13), np.uint8))  # wrong size
    out = tmp_path / "eval"
    args = ["evaluate", "--model", str(trained_run), "--data", str(data), "--out", str(out)]
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == PARTIAL_EXIT, result.output
    assert "1 pair(s) could not be scored" in result.output and "001.png" in result.output
    assert (out / "summary.json").is_file()


# ---------------------------------------------------------------- text printed as written


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "--config", "{tmp}/[/x]/recipe.yaml"],
        ["train", "--data", "{tmp}/[/x]/data", "--epochs", "1"],
        ["evaluate", "--model", "{tmp}/[/x]/run"],
    ],
)
def test_an_error_naming_a_path_with_brackets_prints_it_verbatim(
    runner, tmp_path: Path, args: list[str]
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == USER_ERROR_EXIT, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, KeyError)
    assert f"{tmp_path}/[/x]/" in result.output, result.output


def test_failed_inputs_with_brackets_are_named_verbatim(runner, trained_run, tiny_data, tmp_path):
    folder = tmp_path / "in [b]"
    shutil.copytree(tiny_data / "images", folder)
    (folder / "[b]broken[b].png").write_bytes(b"")
    result = runner.invoke(
        app,
        ["predict", str(folder), "--model", str(trained_run), "--out", str(tmp_path / "out")],
        env=WIDE,
    )
    assert result.exit_code == PARTIAL_EXIT, result.output
    assert "[b]broken[b].png" in result.output and "in [b]" in result.output


def test_verify_table_prints_file_names_with_brackets(runner, tiny_data, tmp_path) -> None:
    root = tmp_path / "data"
    shutil.copytree(tiny_data, root)
    (root / "images" / "000.png").rename(root / "images" / "[red]000.png")
    result = runner.invoke(app, ["verify", str(root)], env=WIDE)
    assert result.exit_code == PROBLEMS_FOUND_EXIT, result.output
    assert "[red]000.png" in result.output
