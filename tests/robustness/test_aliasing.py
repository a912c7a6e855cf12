"""An output that is an input, a run file or someone else's file: refused, nothing written.

``drunet predict`` keeps a record of what it wrote in ``--out`` (``.drunet-manifest``) and may
replace only those files; ``drunet export`` never writes over the weights it reads or their run
folder's files, and replaces only an earlier export of its own (recognised by its sidecar).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from drunet import checkpoint
from drunet.datasets import write_image
from drunet.outputs import MANIFEST, Manifest
from tests.robustness.conftest import assert_user_error, invoke


def snapshot(*folders: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for f in folders for p in sorted(f.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- predict


def test_predict_refuses_to_overwrite_a_mask_it_did_not_write(
    trained_run, tmp_path, monkeypatch
) -> None:
    # The example: `drunet predict a.png --out .` beside a ground-truth a_mask.png.
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "a.png", np.full((40, 40), 200, np.uint8))
    write_image(tmp_path / "a_mask.png", np.ones((40, 40), np.uint8))  # ground truth
    before = snapshot(tmp_path)
    for extra in ([], ["--continue"]):
        result = invoke("predict", "a.png", "--model", trained_run, "--out", ".", *extra)
        assert_user_error(result, "a_mask.png", "did not write", "choose another --out")
        assert snapshot(tmp_path) == before  # nothing written, not even the manifest


def test_predict_replaces_its_own_earlier_outputs(trained_run, images, tmp_path) -> None:
    out = tmp_path / "out"
    assert invoke("predict", images, "--model", trained_run, "--out", out).exit_code == 0
    recorded = Manifest(out).names
    assert {p.name for p in out.iterdir()} == recorded | {MANIFEST}
    first = {p: p.stat().st_mtime_ns for p in out.glob("*_mask.png")}
    result = invoke("predict", images, "--model", trained_run, "--out", out)  # a plain re-run
    assert result.exit_code == 0, result.output
    assert all(p.stat().st_mtime_ns != t for p, t in first.items())
    assert Manifest(out).names == recorded


def test_predict_refuses_an_output_linked_to_an_input(trained_run, images, tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    first, second = sorted(images.iterdir())[:2]
    (out / f"{first.stem}_mask.png").symlink_to(second)  # an output name leading to an input
    before = snapshot(images, out)
    result = invoke("predict", images, "--model", trained_run, "--out", out)
    assert_user_error(result, f"{first.stem}_mask.png", "would overwrite the input", second.name)
    assert snapshot(images, out) == before


def test_predict_refuses_an_output_hard_linked_to_an_input(trained_run, images, tmp_path) -> None:
    # Compared as files, not as strings: a hard link has its own path, ./out is out.
    out = tmp_path / "out"
    out.mkdir()
    first, second = sorted(images.iterdir())[:2]
    os.link(second, out / f"{first.stem}_overlay.png")
    before = snapshot(images, out)
    result = invoke("predict", images, "--model", trained_run, "--out", tmp_path / "." / "out")
    assert_user_error(result, f"{first.stem}_overlay.png", "would overwrite the input", second.name)
    assert snapshot(images, out) == before


def test_predict_never_writes_over_the_weights(trained_run, tmp_path) -> None:
    weights = trained_run / checkpoint.BEST
    out = tmp_path / "out"
    out.mkdir()
    write_image(tmp_path / "w.png", np.zeros((40, 40), np.uint8))
    (out / "w_mask.png").symlink_to(weights)
    before = weights.read_bytes()
    result = invoke("predict", tmp_path / "w.png", "--model", trained_run, "--out", out)
    assert_user_error(result, "w_mask.png", "model weights", checkpoint.BEST)
    assert weights.read_bytes() == before


def test_concurrent_runs_see_each_others_records(tmp_path) -> None:
    out = tmp_path / "out"
    mine, theirs = Manifest(out), Manifest(out)  # both read before either wrote
    theirs.record([out / "a_mask.png"])
    (out / "a_mask.png").write_bytes(b"png")
    assert not mine.foreign(out / "a_mask.png")  # re-read when a file shows up
    (out / "b_mask.png").write_bytes(b"png")
    assert mine.foreign(out / "b_mask.png")


def test_a_damaged_manifest_line_is_skipped(tmp_path) -> None:
    (tmp_path / MANIFEST).write_text('"a_mask.png"\n"b_ma\n')  # cut short by a full disk
    assert Manifest(tmp_path).names == {"a_mask.png"}


# ---------------------------------------------------------------- export


@pytest.mark.parametrize(
    "name", [checkpoint.BEST, checkpoint.LAST, checkpoint.CONFIG, checkpoint.STATE]
)
def test_export_refuses_to_overwrite_the_run(trained_run, tmp_path, name: str) -> None:
    before = snapshot(trained_run)
    for out in (trained_run / name, trained_run / ".." / trained_run.name / name):
        result = invoke("export", trained_run, "--out", out, "--format", "pt2")
        assert_user_error(result, str(out), "being exported", "choose another --out")
    link = tmp_path / "deploy.onnx"  # a link elsewhere that leads into the run
    link.symlink_to(trained_run / name)
    result = invoke("export", trained_run, "--out", link)
    assert_user_error(result, str(link), name, "being exported")
    assert snapshot(trained_run) == before


def test_export_refuses_when_its_sidecar_would_overwrite_a_run_file(trained_run) -> None:
    before = snapshot(trained_run)
    out = trained_run / checkpoint.PRETRAINED_CONFIG.removesuffix(".json")  # sidecar: config.json
    result = invoke("export", trained_run, "--out", out)
    assert_user_error(result, str(out), checkpoint.PRETRAINED_CONFIG, "being exported")
    assert snapshot(trained_run) == before


def test_export_refuses_a_file_it_did_not_write(trained_run, tmp_path) -> None:
    out = tmp_path / "model.onnx"
    out.write_bytes(b"someone's model")
    result = invoke("export", trained_run, "--out", out)
    assert_user_error(result, str(out), "drunet did not write it", "choose another --out")
    assert out.read_bytes() == b"someone's model"
    assert not Path(f"{out}.json").exists()

    out.unlink()
    Path(f"{out}.json").write_text('{"notes": "mine"}')  # a foreign file where the sidecar goes
    result = invoke("export", trained_run, "--out", out)
    assert_user_error(result, f"{out}.json", "did not write", "choose another --out")
    assert Path(f"{out}.json").read_text() == '{"notes": "mine"}' and not out.exists()


def test_export_replaces_its_own_export_of_the_same_format_only(trained_run, tmp_path) -> None:
    out = tmp_path / "m.pt2"
    for _ in range(2):  # the second replaces the first: its sidecar says drunet wrote it
        result = invoke("export", trained_run, "--out", out, "--format", "pt2", "--no-check")
        assert result.exit_code == 0, result.output
    before = snapshot(tmp_path)
    result = invoke("export", trained_run, "--out", out, "--format", "onnx")
    assert_user_error(result, str(out), "not a onnx file drunet exported")
    assert snapshot(tmp_path) == before


def test_export_to_a_folder_asks_for_a_file_name(trained_run, tmp_path) -> None:
    result = invoke("export", trained_run, "--out", tmp_path)
    assert_user_error(result, f"--out {tmp_path} is a folder", "give a file name")
    assert list(tmp_path.iterdir()) == []
