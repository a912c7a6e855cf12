"""File prediction: collecting inputs, never clobbering them, masks and overlays on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from drunet.config import config_from_dict
from drunet.datasets import read_image, read_mask, write_image
from drunet.errors import DrunetError
from drunet.inference import (
    OutputOptions,
    PredictOptions,
    Predictor,
    collect_inputs,
    colorize,
    output_files,
    overlay,
    predict_files,
)
from drunet.inference.files import check_no_clobber
from drunet.outputs import MANIFEST


class MinusHalf(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - 0.5  # foreground where image / 255 > 0.5


@pytest.fixture
def predictor() -> Predictor:
    config = config_from_dict(
        {
            "model": {"in_channels": 1, "num_classes": 2},
            "data": {"normalization": {"mean": [0.0], "std": [1.0], "clip_percentiles": None}},
        }
    )
    return Predictor(MinusHalf(), config)


def _written(out: Path) -> list[str]:
    """The names in ``out`` besides drunet's record of what it wrote there."""
    return sorted(p.name for p in out.iterdir() if p.name != MANIFEST)


def _touch(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name for name in names]
    for path in paths:
        path.write_bytes(b"x")
    return paths


# ---------------------------------------------------------------- collect_inputs


def test_collect_a_single_file(tmp_path: Path) -> None:
    (path,) = _touch(tmp_path, "scan.tif")
    assert collect_inputs(path) == [path]
    assert collect_inputs(str(path)) == [path]


def test_collect_a_folder_keeps_only_images_sorted(tmp_path: Path) -> None:
    _touch(tmp_path, "b.png", "a.TIF", "c.jpeg", "notes.txt", "d.bmp", "data.csv", "e.jpg")
    _touch(tmp_path, "._b.png", ".hidden.png")  # macOS resource forks, hidden files
    (tmp_path / "sub.png").mkdir()
    found = collect_inputs(tmp_path)
    assert [p.name for p in found] == ["a.TIF", "b.png", "c.jpeg", "d.bmp", "e.jpg"]


def test_collect_a_folder_without_images_is_an_error(tmp_path: Path) -> None:
    _touch(tmp_path, "notes.txt")
    with pytest.raises(DrunetError, match="no images in") as info:
        collect_inputs(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_collect_a_relative_glob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _touch(tmp_path / "imgs", "x2.png", "x1.png", "y1.png", "x3.tif")
    monkeypatch.chdir(tmp_path)
    assert collect_inputs("imgs/x*.png") == [Path("imgs/x1.png"), Path("imgs/x2.png")]


def test_collect_an_absolute_glob(tmp_path: Path) -> None:
    _touch(tmp_path, "x2.png", "x1.png", "y1.png")
    (tmp_path / "x9.png").mkdir()  # folders matching the pattern are skipped
    assert collect_inputs(str(tmp_path / "x?.png")) == [tmp_path / "x1.png", tmp_path / "x2.png"]


@pytest.mark.parametrize("target", ["missing.png", "nothing-*.png", "missing-folder/"])
def test_collect_nothing_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DrunetError, match="no such image file, folder or glob match") as info:
        collect_inputs(target)
    assert target in str(info.value)


# ---------------------------------------------------------------- check_no_clobber


def test_output_names() -> None:
    assert output_files(Path("in/a.tif"), Path("out")) == {
        "overlay": Path("out/a_overlay.png"),
        "mask": Path("out/a_mask.png"),
    }


def test_refuses_to_overwrite_an_input(tmp_path: Path) -> None:
    inputs = _touch(tmp_path, "a.png", "a_mask.png")
    with pytest.raises(DrunetError, match="would overwrite the input") as info:
        check_no_clobber(inputs, tmp_path)
    assert "a_mask.png" in str(info.value)


def test_refuses_inputs_that_share_a_stem(tmp_path: Path) -> None:
    inputs = _touch(tmp_path, "a.png", "a.tif")
    with pytest.raises(DrunetError, match="same name stem") as info:
        check_no_clobber(inputs, tmp_path / "out")
    assert "a.png" in str(info.value) and "a.tif" in str(info.value)


def test_same_stem_in_different_folders_collides_too(tmp_path: Path) -> None:
    inputs = _touch(tmp_path / "one", "a.png") + _touch(tmp_path / "two", "a.png")
    with pytest.raises(DrunetError, match="same name stem"):
        check_no_clobber(inputs, tmp_path / "out")


def test_distinct_outputs_are_accepted(tmp_path: Path) -> None:
    inputs = _touch(tmp_path, "a.png", "b.png")
    check_no_clobber(inputs, tmp_path)  # writing next to the inputs is fine
    check_no_clobber(inputs, tmp_path / "out")


def test_predict_files_checks_before_writing_anything(tmp_path: Path, predictor) -> None:
    a = tmp_path / "a.png"
    write_image(a, np.zeros((4, 4), np.uint8))
    (b,) = _touch(tmp_path, "a.tif")
    with pytest.raises(DrunetError, match="same name stem"):
        predict_files(predictor, [a, b], tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- predict_files


def test_predict_files_writes_masks_and_overlays_and_skips_bad_files(
    tmp_path: Path, predictor: Predictor
) -> None:
    rng = np.random.default_rng(0)
    images = {
        "first": rng.integers(0, 256, size=(13, 17), dtype=np.uint8),
        "second": rng.integers(0, 256, size=(20, 9), dtype=np.uint8),
    }
    inputs = []
    for stem, image in images.items():
        write_image(tmp_path / "in" / f"{stem}.png", image)
        inputs.append(tmp_path / "in" / f"{stem}.png")
    bad = tmp_path / "in" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing useful")
    inputs.insert(1, bad)
    done: list[Path] = []

    report = predict_files(predictor, inputs, tmp_path / "out", on_done=done.append)

    assert done == inputs
    assert list(report.failed) == [bad]
    assert "broken.png" in report.failed[bad]
    out = tmp_path / "out"
    assert report.written == [out / "first_mask.png", out / "second_mask.png"]
    assert _written(out) == [
        "first_mask.png",
        "first_overlay.png",
        "second_mask.png",
        "second_overlay.png",
    ]
    for stem, image in images.items():
        mask = read_mask(out / f"{stem}_mask.png")
        expected = predictor.predict(image)
        np.testing.assert_array_equal(mask, expected)
        np.testing.assert_array_equal(mask, (image / 255 > 0.5).astype(np.uint8))
        shown = read_image(out / f"{stem}_overlay.png")
        assert shown.shape == (*image.shape, 3)
        np.testing.assert_array_equal(shown, overlay(image[:, :, None], expected, 2))


def test_predict_files_records_wrong_channel_counts(tmp_path: Path, predictor: Predictor) -> None:
    path = tmp_path / "rgb.png"
    write_image(path, np.zeros((5, 5, 3), np.uint8))
    report = predict_files(predictor, [path], tmp_path / "out")
    assert report.written == []
    assert "3 channel" in report.failed[path]


# ---------------------------------------------------------------- more outputs, batching


class Counting(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(x.shape))
        return x - 0.5


def _counting_predictor(batch_size: int = 4) -> tuple[Predictor, Counting]:
    config = config_from_dict(
        {
            "model": {"in_channels": 1, "num_classes": 2},
            "data": {"normalization": {"mean": [0.0], "std": [1.0], "clip_percentiles": None}},
        }
    )
    model = Counting()
    return Predictor(model, config, options=PredictOptions(batch_size=batch_size)), model


def _write_images(folder: Path, sizes: dict[str, tuple[int, int]]) -> list[Path]:
    rng = np.random.default_rng(5)
    paths = []
    for stem, size in sizes.items():
        write_image(folder / f"{stem}.png", rng.integers(0, 256, size=size, dtype=np.uint8))
        paths.append(folder / f"{stem}.png")
    return paths


def test_output_files_by_options() -> None:
    everything = OutputOptions(overlay=True, color=True, probabilities=True)
    files = output_files(Path("in/a.tif"), Path("out"), everything)
    assert list(files) == ["probabilities", "color", "overlay", "mask"]  # the mask last
    assert [p.name for p in files.values()] == [
        "a_probs.tif",
        "a_color.png",
        "a_overlay.png",
        "a_mask.png",
    ]
    assert list(output_files(Path("a.png"), Path("o"), OutputOptions(overlay=False))) == ["mask"]


def test_colour_mask_and_probabilities_on_disk(tmp_path: Path, predictor: Predictor) -> None:
    (path,) = _write_images(tmp_path / "in", {"scan": (9, 14)})
    outputs = OutputOptions(overlay=False, color=True, probabilities=True)
    predict_files(predictor, [path], tmp_path / "out", outputs=outputs)
    out = tmp_path / "out"
    assert _written(out) == [
        "scan_color.png",
        "scan_mask.png",
        "scan_probs.tif",
    ]
    image = read_image(path)[:, :, 0]
    mask = read_mask(out / "scan_mask.png")
    np.testing.assert_array_equal(read_image(out / "scan_color.png"), colorize(mask, 2))
    probs = read_image(out / "scan_probs.tif")  # (H, W, K) float32, one page per class
    assert probs.shape == (9, 14, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.transpose(2, 0, 1), predictor.predict_probabilities(image))


def test_same_sized_inputs_are_predicted_in_batches_in_order(tmp_path: Path) -> None:
    predictor, model = _counting_predictor(batch_size=2)
    sizes = {"a": (8, 8), "b": (8, 8), "c": (8, 8), "d": (6, 9), "e": (8, 8)}
    inputs = _write_images(tmp_path / "in", sizes)
    done: list[Path] = []
    report = predict_files(predictor, inputs, tmp_path / "out", on_done=done.append)
    assert model.calls == [(2, 1, 8, 8), (1, 1, 8, 8), (1, 1, 6, 9), (1, 1, 8, 8)]
    assert done == inputs
    assert [p.name for p in report.written] == [f"{s}_mask.png" for s in sizes]


def test_a_bad_image_inside_a_batch_fails_alone(tmp_path: Path) -> None:
    predictor, _ = _counting_predictor(batch_size=4)
    inputs = _write_images(tmp_path / "in", {"a": (8, 8), "c": (8, 8)})
    write_image(tmp_path / "in" / "b.png", np.zeros((8, 8, 3), np.uint8))  # wrong channels
    inputs.insert(1, tmp_path / "in" / "b.png")
    report = predict_files(predictor, inputs, tmp_path / "out")
    assert list(report.failed) == [inputs[1]] and "3 channel" in report.failed[inputs[1]]
    assert [p.name for p in report.written] == ["a_mask.png", "c_mask.png"]


def test_continue_skips_inputs_whose_outputs_all_exist(tmp_path: Path) -> None:
    predictor, model = _counting_predictor(batch_size=1)
    inputs = _write_images(tmp_path / "in", {"a": (8, 8), "b": (8, 8), "c": (8, 8)})
    out = tmp_path / "out"
    predict_files(predictor, inputs[:2], out)
    (out / "b_overlay.png").unlink()  # b is unfinished: its mask alone is not enough
    model.calls.clear()
    report = predict_files(predictor, inputs, out, skip_existing=True)
    assert report.skipped == [inputs[0]]
    assert [p.name for p in report.written] == ["b_mask.png", "c_mask.png"]
    assert len(model.calls) == 2
    again = predict_files(predictor, inputs, out, skip_existing=True)
    assert again.skipped == inputs and again.written == []


def test_a_killed_run_leaves_only_whole_files_and_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import drunet.inference.files as files_module

    predictor, _ = _counting_predictor(batch_size=1)
    inputs = _write_images(tmp_path / "in", {"a": (8, 8), "b": (8, 8), "c": (8, 8)})
    out = tmp_path / "out"
    real_overlay, calls = files_module.overlay, []

    def killed_on_second_overlay(*args: object, **kwargs: object) -> np.ndarray:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C while b's files are being written
        return real_overlay(*args, **kwargs)

    monkeypatch.setattr(files_module, "overlay", killed_on_second_overlay)
    with pytest.raises(KeyboardInterrupt):
        predict_files(predictor, inputs, out)
    assert _written(out) == ["a_mask.png", "a_overlay.png"]  # no temps
    monkeypatch.setattr(files_module, "overlay", real_overlay)
    report = predict_files(predictor, inputs, out, skip_existing=True)
    assert report.skipped == [inputs[0]] and len(report.written) == 2
    assert len(_written(out)) == 6


def test_clobber_check_covers_every_output_kind(tmp_path: Path) -> None:
    inputs = _touch(tmp_path, "a.png", "a_color.png")
    check_no_clobber(inputs, tmp_path)  # no colour masks asked for: fine
    with pytest.raises(DrunetError, match="a_color.png"):
        check_no_clobber(inputs, tmp_path, OutputOptions(color=True))


def test_tile_progress_is_reported_for_large_images(tmp_path: Path) -> None:
    predictor, _ = _counting_predictor()
    predictor = predictor.with_options(tile_size=16, max_pixels=100)
    inputs = _write_images(tmp_path / "in", {"small": (8, 8), "large": (20, 40)})
    seen: list[tuple[int, int]] = []
    predict_files(predictor, inputs, tmp_path / "out", on_progress=lambda *a: seen.append(a))
    total = 2 * 4  # rows at 0, 4; columns at 0, 8, 16, 24
    assert seen == [(4, total), (8, total)]


def test_an_image_the_run_cannot_normalise_fails_alone(tmp_path: Path) -> None:
    config = config_from_dict(
        {
            "model": {"in_channels": 1, "num_classes": 2},
            # Percentile clipping without a stored window: 16-bit images cannot be normalised.
            "data": {"normalization": {"mean": [0.0], "std": [1.0], "clip_percentiles": [1, 99]}},
        }
    )
    predictor = Predictor(MinusHalf(), config)
    write_image(tmp_path / "deep.png", np.zeros((4, 4), np.uint16))
    report = predict_files(predictor, [tmp_path / "deep.png"], tmp_path / "out")
    assert (
        "deep.png cannot be normalised like the training images"
        in report.failed[tmp_path / "deep.png"]
    )
