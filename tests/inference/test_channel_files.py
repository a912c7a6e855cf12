"""nnU-Net channel files at prediction: ``case_0000.png`` + ``case_0001.png`` → one 2-channel
input named ``case``, only when that is consistent with the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from drunet.cli.main import app
from drunet.datasets import read_image, read_mask, write_image
from drunet.inference import Predictor
from drunet.inference.channel_files import channel_cases
from drunet.outputs import MANIFEST
from tests.inference.run_factory import tiny_run

CASES = ("liver_1", "liver_2", "liver_3")


def _gray(folder: Path, stem: str, seed: int, shape: tuple[int, int] = (24, 28)) -> Path:
    rng = np.random.default_rng(seed)
    path = folder / f"{stem}.png"
    write_image(path, rng.integers(0, 256, shape, dtype=np.uint8))
    return path


def _cases(folder: Path) -> Path:
    for i, case in enumerate(CASES):
        for channel in range(2):
            _gray(folder, f"{case}_{channel:04d}", seed=10 * i + channel)
    return folder


@pytest.fixture(scope="module")
def two_channel_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("run2"), slice_channels=2)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != MANIFEST)


def _predict(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["predict", *args, "--device", "cpu"])
    return result.exit_code, result.output


def test_cases_are_grouped_when_files_times_channels_make_the_model_input(tmp_path) -> None:
    files = sorted(_cases(tmp_path).iterdir())
    cases = channel_cases(files, in_channels=2)
    assert cases is not None
    assert cases.inputs == [tmp_path / f"{case}_0000.png" for case in CASES]
    assert cases.names == {tmp_path / f"{case}_0000.png": case for case in CASES}
    assert cases.extra_channels[tmp_path / "liver_2_0000.png"] == (tmp_path / "liver_2_0001.png",)
    assert channel_cases(files, in_channels=1) is None  # 2 files × 1 channel ≠ 1
    assert channel_cases(files, in_channels=3) is None


def test_numbered_images_are_not_channel_files(tmp_path) -> None:
    scans = [_gray(tmp_path, f"scan_{i:04d}", seed=i) for i in (1, 2, 3)]
    assert channel_cases(scans, in_channels=1) is None  # no scan_0000: not channels
    assert channel_cases(scans, in_channels=3) is None
    from_zero = [_gray(tmp_path, f"img_{i:04d}", seed=i) for i in (0, 1)]
    assert channel_cases(from_zero, in_channels=1) is None  # 2 files × 1 channel ≠ 1
    one = [_gray(tmp_path, "a_0000", 1), _gray(tmp_path, "b_0000", 2)]
    assert channel_cases(one, in_channels=1) is None  # one file per case: plain images …
    grouped = channel_cases(one, in_channels=1, nnunet_names=True)  # … unless nnU-Net naming
    assert grouped is not None and list(grouped.names.values()) == ["a", "b"]


def test_cli_predicts_a_case_from_its_stacked_channel_files(tmp_path, two_channel_run) -> None:
    folder = _cases(tmp_path / "imagesTs")
    out = tmp_path / "out"
    code, output = _predict(str(folder), "--model", str(two_channel_run), "--out", str(out))
    assert code == 0, output
    assert _names(out) == sorted(f"{c}_{kind}.png" for c in CASES for kind in ("mask", "overlay"))
    predictor = Predictor.from_run(two_channel_run, device="cpu")
    for case in CASES:
        channels = [read_image(folder / f"{case}_{k:04d}.png") for k in range(2)]
        stacked = np.concatenate(channels, axis=2)  # (H, W, 2)
        expected = predictor.predict(stacked)
        assert len(np.unique(expected)) > 1  # a mask that can tell a wrong input
        np.testing.assert_array_equal(read_mask(out / f"{case}_mask.png"), expected)
        swapped = predictor.predict(stacked[:, :, ::-1].copy())
        assert not np.array_equal(swapped, expected)  # channel order reaches the network
    sequential = tmp_path / "sequential"  # --prefetch 0 reads the cases alike
    args = [str(folder), "--model", str(two_channel_run), "--out", str(sequential)]
    code, output = _predict(*args, "--prefetch", "0", "--no-overlay")
    assert code == 0, output
    for case in CASES:
        np.testing.assert_array_equal(
            read_mask(sequential / f"{case}_mask.png"), read_mask(out / f"{case}_mask.png")
        )


def test_nnunet_names_continue_and_clobber(tmp_path, two_channel_run) -> None:
    folder = _cases(tmp_path / "imagesTs")
    out = tmp_path / "out"
    args = [str(folder), "--model", str(two_channel_run), "--out", str(out), "--nnunet-names"]
    code, output = _predict(*args, "--no-overlay")
    assert code == 0, output
    assert _names(out) == [f"{case}.png" for case in CASES]
    first = read_mask(out / "liver_1.png")
    (out / "liver_2.png").unlink()
    code, output = _predict(*args, "--no-overlay", "--continue", "--json")
    assert code == 0, output
    assert '"skipped"' in output and "liver_1_0000.png" in output  # keyed by the case's file
    assert _names(out) == [f"{case}.png" for case in CASES]
    np.testing.assert_array_equal(read_mask(out / "liver_1.png"), first)
    # Into the input folder: case.png would replace a file drunet did not write there …
    _gray(folder, "liver_1", seed=99)
    glob = str(folder / "*_000?.png")
    code, output = _predict(glob, *args[1:3], "--out", str(folder), "--nnunet-names")
    assert code == 2, output
    assert "liver_1.png" in output and "drunet did not write it" in output
    assert read_image(folder / "liver_1.png").shape == (24, 28, 1)  # untouched


def test_an_nnunet_name_that_is_another_cases_input_is_refused(tmp_path, two_channel_run):
    folder = tmp_path / "in"
    for case in ("a", "a_0000"):  # a_0000.png: channel 0 of case a, and case a_0000's mask name
        for channel in range(2):
            _gray(folder, f"{case}_{channel:04d}", seed=channel)
    code, output = _predict(
        str(folder), "--model", str(two_channel_run), "--out", str(folder), "--nnunet-names"
    )
    assert code == 2, output
    assert "would overwrite the input" in output and "a_0000.png" in output
    assert _names(folder) == ["a_0000.png", "a_0000_0000.png", "a_0000_0001.png", "a_0001.png"]


def test_nnunet_names_without_channel_files_is_an_error(tmp_path, two_channel_run) -> None:
    _gray(tmp_path / "in", "photo", seed=1)
    code, output = _predict(
        str(tmp_path / "in"), "--model", str(two_channel_run), "--out", str(tmp_path / "o"),
        "--nnunet-names",
    )  # fmt: skip
    assert code == 2 and "--nnunet-names" in output and "Traceback" not in output


def test_shard_splits_by_case(tmp_path, two_channel_run) -> None:
    folder = _cases(tmp_path / "imagesTs")
    outs = [tmp_path / f"out{i}" for i in range(2)]
    for i, out in enumerate(outs):
        args = [str(folder), "--model", str(two_channel_run), "--out", str(out), "--no-overlay"]
        code, output = _predict(*args, "--shard", f"{i}/2")
        assert code == 0, output
    written = [_names(out) for out in outs]
    assert written == [["liver_1_mask.png", "liver_3_mask.png"], ["liver_2_mask.png"]]


def test_numbered_scans_keep_one_mask_per_file_with_a_one_channel_model(tmp_path) -> None:
    run = tiny_run(tmp_path / "run1", slice_channels=1)
    folder = tmp_path / "scans"
    scans = [_gray(folder, f"scan_{i:04d}", seed=i) for i in (1, 2, 3)]
    out = tmp_path / "out"
    code, output = _predict(str(folder), "--model", str(run), "--out", str(out), "--no-overlay")
    assert code == 0, output
    assert _names(out) == [f"{scan.stem}_mask.png" for scan in scans]
    predictor = Predictor.from_run(run, device="cpu")
    for scan in scans:
        expected = predictor.predict(read_image(scan))
        np.testing.assert_array_equal(read_mask(out / f"{scan.stem}_mask.png"), expected)
