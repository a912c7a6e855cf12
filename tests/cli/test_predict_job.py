"""``drunet predict`` is a thin shell over ``PredictJob`` + ``run_predict``: every flag is a job
field with the same default, and the Python API alone writes the CLI's files, byte for byte."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import typer

from drunet.cli.main import app
from drunet.errors import DrunetError
from drunet.inference.job import PredictJob
from drunet.inference.run import PredictHooks, run_predict
from drunet.outputs import MANIFEST


def _predict_params() -> list[Any]:
    """The click parameters Typer made of ``predict_command``'s arguments."""
    group = typer.main.get_command(app)
    return list(group.commands["predict"].params)  # type: ignore[attr-defined]


def test_every_predict_flag_is_a_job_field_with_the_same_default() -> None:
    fields = {field.name for field in dataclasses.fields(PredictJob)}
    params = _predict_params()
    names = [param.name for param in params]
    assert len(names) == 32 and "shard" in names and "nnunet_names" in names and "stream" in names
    assert [name for name in names if name not in fields] == []  # a new flag needs a field
    defaults = {p.name: p.default for p in params if p.name != "inputs"}
    assert PredictJob("x", **defaults) == PredictJob("x")  # type: ignore[arg-type]


def test_the_job_parses_its_shard_and_refuses_a_bad_one() -> None:
    assert PredictJob("x", shard="1/4").shard == (1, 4)
    assert PredictJob("x", shard=(0, 2)).shard == (0, 2)
    with pytest.raises(
        DrunetError, match=r"^--shard 2/2: need 0 <= I < N \(the shards are 0/2 to 1/2\)$"
    ):
        PredictJob("x", shard=(2, 2))
    with pytest.raises(DrunetError, match=r"^--shard '1-2' is not I/N"):
        PredictJob("x", shard="1-2")


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_the_python_api_alone_reproduces_a_cli_run(runner, trained_run, tiny_data, tmp_path):
    images = tiny_data / "images"
    flags = ["--color", "--probabilities", "--tta", "--min-size", "3", "--shard", "0/2"]
    cli_out, api_out = tmp_path / "cli", tmp_path / "api"
    args = ["predict", str(images), "--model", str(trained_run), "--out", str(cli_out), "--json"]
    result = runner.invoke(app, [*args, *flags, "--device", "cpu"])
    assert result.exit_code == 0, result.output
    job = PredictJob(
        images,
        models=(trained_run,),
        out=api_out,
        color=True,
        probabilities=True,
        tta=True,
        min_size=3,
        shard="0/2",
        device="cpu",
    )
    report = run_predict(job)
    every = sorted(images.iterdir())
    assert [path.name for path in report.written] == [f"{p.stem}_mask.png" for p in every[::2]]
    cli, api = _files(cli_out), _files(api_out)
    assert sorted(cli) == sorted(api) and len(cli) == 4 * len(report.written) + 1  # + manifest
    for name in cli:
        if name != MANIFEST:  # the manifest names each folder's own files
            assert cli[name] == api[name], name
    cli_report = json.loads(result.stdout)
    assert cli_report["written"] == [str(cli_out / p.name) for p in report.written]
    assert (
        report.to_json()["models"]
        == cli_report["models"]
        == [str(trained_run / "best.safetensors")]
    )


class Recorder(PredictHooks):
    def __init__(self) -> None:
        self.notes: list[str] = []
        self.count = -1
        self.done_paths: list[Path] = []

    def note(self, text: str) -> None:
        self.notes.append(text)

    def inputs(self, count: int) -> None:
        self.count = count

    def done(self, path: Path) -> None:
        self.done_paths.append(path)


def test_hooks_hear_the_notes_inputs_and_each_input_done(trained_run, tiny_data, tmp_path):
    images = sorted((tiny_data / "images").iterdir())
    hooks = Recorder()
    job = PredictJob(tiny_data / "images", models=(trained_run,), out=tmp_path, shard=(1, 2))
    report = run_predict(job, hooks)
    assert hooks.count == len(images[1::2]) and hooks.done_paths == images[1::2]
    assert hooks.notes == [
        f"model: {trained_run / 'best.safetensors'}",
        f"shard 1/2: {len(images[1::2])} of {len(images)} input(s)",
    ]
    assert report.summary() == f"wrote {len(images[1::2])} mask(s) to {tmp_path}/"
    quiet = Recorder()
    run_predict(dataclasses.replace(job, json_output=True, resume=True), quiet)
    assert quiet.notes == []  # JSON on stdout: nothing else there
