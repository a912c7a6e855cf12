"""`drunet predict` in-process: default model, outputs, bad inputs, no clobbering."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from drunet.checkpoint import build_model, save_weights
from drunet.cli.main import app
from drunet.config import config_from_dict
from drunet.datasets import read_image, read_mask, write_image
from drunet.inference import PostprocessOptions, PredictOptions, Predictor
from drunet.outputs import MANIFEST
from tests.conftest import TINY_PARAMS


def test_predict_folder_with_the_latest_run(runner, trained_run, tiny_data, tmp_path) -> None:
    out = tmp_path / "preds"
    args = ["predict", str(tiny_data / "images"), "--out", str(out)]
    result = runner.invoke(app, [*args, "--runs-dir", str(trained_run.parent)])
    assert result.exit_code == 0, result.output
    assert str(trained_run / "best.safetensors") in result.output.replace("\n", "")
    predictor = Predictor.from_run(trained_run)
    for image_path in sorted((tiny_data / "images").iterdir()):
        mask = read_mask(out / f"{image_path.stem}_mask.png")
        overlay = read_image(out / f"{image_path.stem}_overlay.png")
        image = read_image(image_path)
        assert mask.shape == image.shape[:2] and overlay.shape == (*image.shape[:2], 3)
        assert np.array_equal(mask, predictor.predict(image))
        assert set(np.unique(mask)) <= {0, 1}


def test_predict_single_file_with_explicit_weights(runner, trained_run, tiny_data, tmp_path):
    image = next((tiny_data / "images").iterdir())
    weights = trained_run / "last.safetensors"
    result = runner.invoke(
        app, ["predict", str(image), "--model", str(weights), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != MANIFEST) == [
        f"{image.stem}_mask.png",
        f"{image.stem}_overlay.png",
    ]


def test_no_trained_run_is_explained(runner, tiny_data, tmp_path) -> None:
    args = ["predict", str(tiny_data / "images"), "--runs-dir", str(tmp_path / "empty")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "no trained run" in result.output and "drunet train" in result.output


def test_unreadable_input_is_listed_and_others_predicted(runner, trained_run, tiny_data, tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(tiny_data / "images", folder)
    (folder / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["predict", str(folder), "--model", str(trained_run), "--out", str(out)]
    )
    assert result.exit_code == 3  # some inputs failed, the others were written
    assert "broken.png" in result.output
    assert len(list(out.glob("*_mask.png"))) == len(list((tiny_data / "images").iterdir()))


def test_outputs_never_overwrite_inputs(runner, trained_run, tiny_data, tmp_path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    source = next((tiny_data / "images").iterdir())
    shutil.copy(source, folder / "a.png")
    shutil.copy(source, folder / "a_mask.png")  # an input that `a.png`'s mask would replace
    before = (folder / "a_mask.png").read_bytes()
    result = runner.invoke(
        app, ["predict", str(folder), "--model", str(trained_run), "--out", str(folder)]
    )
    assert result.exit_code == 2
    assert "overwrite" in result.output
    assert (folder / "a_mask.png").read_bytes() == before


def test_missing_input_is_named(runner, trained_run, tmp_path) -> None:
    result = runner.invoke(
        app, ["predict", str(tmp_path / "ghost.png"), "--model", str(trained_run)]
    )
    assert result.exit_code == 2
    assert "ghost.png" in result.output


# ---------------------------------------------------------------- large images, options, resume


def _rgb_run(root: Path, patch_size: int = 256) -> Path:
    """A run folder whose weights were 'trained' on RGB patches of ``patch_size``."""
    torch.manual_seed(0)
    config = config_from_dict(
        {
            "model": {
                "in_channels": 3,
                "num_classes": 2,
                "params": {"init_features": 4, "depth": 2, "blocks_per_stage": 1},
            },
            "data": {
                "normalization": {"mean": [0.5] * 3, "std": [0.25] * 3, "clip_percentiles": None},
                "augmentation": {"patch_size": patch_size},
            },
        }
    )
    save_weights(root / "best.safetensors", build_model(config), config)
    return root


def test_a_3000_by_2000_rgb_image_gives_a_full_size_mask(runner, tmp_path) -> None:
    run = _rgb_run(tmp_path / "run", patch_size=256)
    rows, cols = np.mgrid[0:2000, 0:3000]
    image = np.stack([rows % 256, cols % 256, (rows + cols) % 256], axis=2).astype(np.uint8)
    write_image(tmp_path / "big.png", image)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["predict", str(tmp_path / "big.png"), "--model", str(run), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    mask = read_mask(out / "big_mask.png")
    assert mask.shape == (2000, 3000)
    assert read_image(out / "big_overlay.png").shape == (2000, 3000, 3)
    assert set(np.unique(mask)) <= {0, 1}
    predictor = Predictor.from_run(run)
    assert not predictor.fits_whole(2000, 3000) and predictor.tile_size == 256  # it was tiled


def test_outputs_options_and_postprocessing_flags(runner, trained_run, tiny_data, tmp_path):
    image = sorted((tiny_data / "images").iterdir())[0]
    args = ["predict", str(image), "--model", str(trained_run), "--out", str(tmp_path)]
    flags = ["--no-overlay", "--color", "--probabilities", "--tta", "--tta-rot90"]
    flags += ["--tile-size", "16", "--overlap", "0.25", "--max-pixels", "0", "--min-size", "3"]
    result = runner.invoke(app, [*args, *flags, "--fill-holes", "--largest", "--threshold", "0.4"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != MANIFEST) == [
        f"{image.stem}_color.png",
        f"{image.stem}_mask.png",
        f"{image.stem}_probs.tif",
    ]
    options = PredictOptions(
        tile_size=16,
        overlap=0.25,
        max_pixels=0,
        tta_flips=True,
        tta_rot90=True,
        postprocess=PostprocessOptions(0.4, 3, True, True),
    )
    expected = Predictor.from_run(trained_run, options=options).predict(image)
    np.testing.assert_array_equal(read_mask(tmp_path / f"{image.stem}_mask.png"), expected)


def test_continue_skips_what_is_done(runner, trained_run, tiny_data, tmp_path) -> None:
    out = tmp_path / "out"
    args = ["predict", str(tiny_data / "images"), "--model", str(trained_run), "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    first = sorted(out.iterdir())  # .drunet-manifest first, then the outputs
    first[1].unlink()  # one input's outputs are incomplete
    result = runner.invoke(app, [*args, "--continue"])
    assert result.exit_code == 0, result.output
    count = len(list((tiny_data / "images").iterdir()))
    assert "wrote 1 mask(s)" in result.output
    assert f"skipped {count - 1} already predicted" in result.output
    assert sorted(out.iterdir()) == first


def test_failures_are_listed_at_the_end(runner, trained_run, tiny_data, tmp_path) -> None:
    folder = tmp_path / "in"
    shutil.copytree(tiny_data / "images", folder)
    (folder / "a_broken.png").write_bytes(b"")
    (folder / "z_broken.tif").write_bytes(b"II*\x00garbage")
    result = runner.invoke(
        app, ["predict", str(folder), "--model", str(trained_run), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 3
    tail = result.output[result.output.index("2 input(s) failed") :]
    assert "a_broken.png" in tail and "empty" in tail and "z_broken.tif" in tail
    for name in ("a_broken.png", "z_broken.tif"):  # each failure names its file once
        assert tail.count(name) == 1, tail


def test_bad_option_values_are_one_line_errors(runner, trained_run, tiny_data) -> None:
    image = str(next((tiny_data / "images").iterdir()))
    result = runner.invoke(app, ["predict", image, "--model", str(trained_run), "--overlap", "1"])
    assert result.exit_code == 2 and "overlap must be in [0, 1)" in result.output


def test_predict_help_documents_the_new_options(runner) -> None:
    result = runner.invoke(app, ["predict", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "--continue",
        "--tile-size",
        "--overlap",
        "--batch-size",
        "--max-pixels",
        "--tta",
        "--tta-rot90",
        "--threshold",
        "--min-size",
        "--fill-holes",
        "--largest",
        "--color",
        "--probabilities",
        "--no-overlay",
    ):
        assert option in result.output, option


# ---------------------------------------------------------------- ensembles


def _three_class_run(root: Path, seed: int) -> Path:
    """A run folder of a tiny 3-class DRUNet with its own random weights and BatchNorm stats."""
    config = config_from_dict(
        {
            "model": {"in_channels": 1, "num_classes": 3, "params": TINY_PARAMS},
            "data": {"normalization": {"mean": [0.2], "std": [0.3], "clip_percentiles": None}},
        }
    )
    torch.manual_seed(seed)
    model = build_model(config)
    model.train()
    with torch.no_grad():  # move BatchNorm statistics off their defaults
        model(torch.randn(2, 1, 16, 16))
    save_weights(root / "best.safetensors", model.eval(), config)
    return root


def test_repeated_model_predicts_with_the_ensemble(runner, tmp_path) -> None:
    a, b = _three_class_run(tmp_path / "a", 1), _three_class_run(tmp_path / "b", 2)
    rng = np.random.default_rng(0)
    for i, size in enumerate([(30, 26), (30, 26), (17, 40)]):
        write_image(tmp_path / "in" / f"{i}.png", rng.integers(0, 256, size, dtype=np.uint8))
    out = tmp_path / "out"
    args = ["predict", str(tmp_path / "in"), "--model", str(a), "--model", str(b)]
    result = runner.invoke(app, [*args, "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "ensemble of 2" in result.output
    one_a, one_b = Predictor.from_run(a, device="cpu"), Predictor.from_run(b, device="cpu")
    disagree = False
    for path in sorted((tmp_path / "in").iterdir()):
        image = read_image(path)
        probs = (one_a.predict_probabilities(image) + one_b.predict_probabilities(image)) / 2
        assert np.array_equal(read_mask(out / f"{path.stem}_mask.png"), probs.argmax(0))
        disagree |= bool((one_a.predict(image) != one_b.predict(image)).any())
    assert disagree  # not trivially one member's answer


def test_an_ensemble_never_writes_over_a_members_weights(runner, tmp_path) -> None:
    a, b = _three_class_run(tmp_path / "a", 1), _three_class_run(tmp_path / "b", 2)
    write_image(tmp_path / "best.png", np.zeros((8, 8), np.uint8))  # → best_mask.png …
    (b / "best_mask.png").symlink_to(b / "best.safetensors")  # … which is b's weights
    args = ["predict", str(tmp_path / "best.png"), "--model", str(a), "--model", str(b)]
    result = runner.invoke(app, [*args, "--out", str(b), "--device", "cpu"])
    assert result.exit_code == 2
    assert "would overwrite the model weights" in result.output


# ---------------------------------------------------------------- shards


def _masks(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in out.glob("*_mask.png")}


def test_three_shards_write_every_input_exactly_once(runner, trained_run, tmp_path) -> None:
    folder = tmp_path / "in"
    rng = np.random.default_rng(2)
    for i in range(10):  # 10 inputs: shards of 4, 3 and 3
        write_image(folder / f"{i:02d}.png", rng.integers(0, 256, (40, 40), dtype=np.uint8))
    out = tmp_path / "out"
    args = ["predict", str(folder), "--model", str(trained_run), "--out", str(out)]
    new_by_shard = []
    for index in range(3):
        before = _masks(out) if out.exists() else {}
        result = runner.invoke(app, [*args, "--shard", f"{index}/3"])
        assert result.exit_code == 0, result.output
        assert f"shard {index}/3: {4 if index == 0 else 3} of 10 input(s)" in result.output
        new_by_shard.append(set(_masks(out)) - set(before))
    expected = [{f"{i:02d}_mask.png" for i in range(10) if i % 3 == s} for s in range(3)]
    assert new_by_shard == expected  # index % N == I, disjoint, together every input
    done = _masks(out)
    assert len(done) == 10
    for index in range(3):  # a re-run with --continue writes nothing new
        result = runner.invoke(app, [*args, "--shard", f"{index}/3", "--continue"])
        assert result.exit_code == 0, result.output
        assert "wrote 0 mask(s)" in result.output
    assert _masks(out) == done


def test_bad_shards_are_one_line_errors(runner, trained_run, tiny_data) -> None:
    folder = str(tiny_data / "images")
    for shard, message in [
        ("3/3", "--shard 3/3: need 0 <= I < N (the shards are 0/3 to 2/3)"),
        ("0/0", "--shard 0/0: need 0 <= I < N"),
        ("1-3", "--shard '1-3' is not I/N"),
        ("-1/3", "--shard '-1/3' is not I/N"),
        ("1/3/4", "--shard '1/3/4' is not I/N"),
    ]:
        args = ["predict", folder, "--model", str(trained_run), "--shard", shard]
        result = runner.invoke(app, args, env={"COLUMNS": "300"})
        assert result.exit_code == 2, (shard, result.output)
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], (shard, result.output)


def test_a_stem_shared_across_shards_is_refused(runner, trained_run, tmp_path) -> None:
    folder = tmp_path / "in"
    for name in ("a.png", "a.tif"):  # sorted: a.png (shard 0/2), a.tif (shard 1/2)
        write_image(folder / name, np.zeros((8, 8), np.uint8))
    args = ["predict", str(folder), "--model", str(trained_run), "--out", str(tmp_path / "o")]
    result = runner.invoke(app, [*args, "--shard", "1/2"])
    assert result.exit_code == 2 and "same name stem" in result.output
