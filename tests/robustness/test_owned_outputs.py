"""Issue 25, class 2: every command's outputs are owned (``drunet.outputs``).

A file at one of a command's output names that drunet did not write is refused — exit 2, the
message names it, the file is untouched and nothing else is written — unless ``--overwrite``;
a re-run over drunet's own outputs replaces them. ``predict`` is covered in
``test_aliasing.py``, ``evaluate`` in the evaluation tests.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from drunet import demo
from drunet.outputs import MANIFEST
from tests.robustness.conftest import assert_user_error, invoke


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# ---------------------------------------------------------------- compare


@pytest.mark.parametrize("name", ["compare.md", "compare.json", "report.html", "curves.png"])
def test_compare_refuses_a_foreign_table_before_training(tmp_path, name: str) -> None:
    out = tmp_path / "cmp"
    out.mkdir()
    (out / name).write_text("my notes")
    before = snapshot(tmp_path)
    result = invoke("compare", "--data", tmp_path / "none", "--models", "drunet", "--out", out)
    assert_user_error(result, str(out / name), "drunet did not write it", "--overwrite")
    assert snapshot(tmp_path) == before  # no runs/, no manifest


def test_compare_overwrite_then_a_rerun_over_its_own_tables(good_data, recipe, tmp_path) -> None:
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "compare.md").write_text("my notes")
    args = ["compare", "--data", good_data, "--config", recipe, "--out", out, "--epochs", "1"]
    result = invoke(*args, "--models", "drunet", "--overwrite")
    assert result.exit_code == 0, result.output
    assert "| drunet |" in (out / "compare.md").read_text()
    result = invoke(*args, "--models", "drunet_s")  # another model, the same tables: drunet's
    assert result.exit_code == 0, result.output
    assert [r["model"] for r in json.loads((out / "compare.json").read_text())] == ["drunet_s"]
    assert "| drunet_s |" in (out / "compare.md").read_text()


# ---------------------------------------------------------------- export


def test_export_overwrite_replaces_a_foreign_file_then_reruns(trained_run, tmp_path) -> None:
    out = tmp_path / "model.pt2"
    out.write_bytes(b"someone's model")
    result = invoke("export", trained_run, "--out", out, "--format", "pt2", "--no-check")
    assert_user_error(result, str(out), "drunet did not write it", "--overwrite")
    assert out.read_bytes() == b"someone's model" and not Path(f"{out}.json").exists()
    args = ["export", trained_run, "--out", out, "--format", "pt2", "--no-check"]
    result = invoke(*args, "--overwrite")
    assert result.exit_code == 0, result.output
    assert out.read_bytes() != b"someone's model"
    assert json.loads(Path(f"{out}.json").read_text())["format"] == "pt2"
    lines = (tmp_path / MANIFEST).read_text().splitlines()
    assert sorted(json.loads(line) for line in lines) == ["model.pt2", "model.pt2.json"]
    result = invoke(*args)  # drunet's own export now
    assert result.exit_code == 0, result.output


# ---------------------------------------------------------------- demo


@pytest.fixture
def quick_demo(monkeypatch) -> None:
    """The demo recipe cut to one step of one epoch (the outputs are what is tested)."""
    recipe = copy.deepcopy(demo.DEMO_RECIPE)
    recipe["train"].update(epochs=1, steps_per_epoch=1, warmup_epochs=0)
    recipe["data"].update(batch_size=2)
    recipe["data"]["augmentation"]["patch_size"] = 32
    monkeypatch.setattr(demo, "DEMO_RECIPE", recipe)


@pytest.mark.parametrize(
    "name",
    ["data/images/000.png", "data/masks/047.png", "test/masks/000.png", "predictions/000_mask.png"],
)
def test_demo_refuses_a_foreign_file_before_writing(tmp_path, name: str) -> None:
    out = tmp_path / "drunet-demo"
    (out / name).parent.mkdir(parents=True)
    (out / name).write_bytes(b"my file")
    result = invoke("demo", "--out", out, "--device", "cpu")
    assert_user_error(result, str(out / name), "drunet did not write it", "--overwrite")
    assert snapshot(tmp_path) == {f"drunet-demo/{name}": b"my file"}


def test_demo_overwrite_then_a_rerun_over_its_own_outputs(tmp_path, quick_demo) -> None:
    out = tmp_path / "drunet-demo"
    (out / "predictions").mkdir(parents=True)
    (out / "predictions" / "000_overlay.png").write_bytes(b"my file")
    result = invoke("demo", "--out", out, "--device", "cpu", "--overwrite")
    assert result.exit_code == 0, result.output
    overlay = (out / "predictions" / "000_overlay.png").read_bytes()
    assert overlay != b"my file"
    assert len([p for p in (out / "data" / "images").iterdir()]) == 48
    data = (out / "data" / "images" / "000.png").read_bytes()
    result = invoke("demo", "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert (out / "data" / "images" / "000.png").read_bytes() == data  # same seed, same data
    assert len(list((out / "runs").iterdir())) == 2  # a new run folder each time
