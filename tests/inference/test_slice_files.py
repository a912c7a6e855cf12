"""2.5D context models in ``drunet predict``: numbered slices in natural order and multi-page
TIFFs as stacks, with the masks of ``Predictor.predict_slices`` / ``predict_stack``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from drunet.cli.main import app
from drunet.datasets import read_mask, write_image
from drunet.errors import DrunetError
from drunet.inference import Predictor
from drunet.inference.slice_files import split_series
from drunet.inference.stack_files import split_stacks
from drunet.outputs import MANIFEST
from tests.inference.run_factory import tiny_run

NUMBERS = (1, 2, 3, 10, 11)  # lexicographic order would be 1, 10, 11, 2, 3


@pytest.fixture(scope="module")
def context_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-channel model with one neighbour on each side: 3 input channels."""
    return tiny_run(tmp_path_factory.mktemp("ctx"), slice_channels=1, context_slices=1)


def _volume(pages: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (pages, 24, 28), dtype=np.uint8)


def _slices(folder: Path) -> list[Path]:
    """z1, z2, z3, z10, z11 (natural order) from one random volume."""
    volume = _volume(len(NUMBERS))
    files = [folder / f"z{n}.png" for n in NUMBERS]
    for path, page in zip(files, volume, strict=True):
        write_image(path, page)
    return files


def _predict(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["predict", *args, "--device", "cpu"])
    return result.exit_code, result.output


def test_series_are_numbered_stems_of_one_prefix_in_natural_order() -> None:
    names = ["z10.png", "z2.png", "z1.png", "y1.png", "y2.png", "cat.png", "w7.png", "00.png"]
    series, others = split_series([Path("f") / n for n in names])
    assert series == [
        [Path("f/z1.png"), Path("f/z2.png"), Path("f/z10.png")],
        [Path("f/y1.png"), Path("f/y2.png")],
    ]
    assert others == [Path("f/cat.png"), Path("f/w7.png"), Path("f/00.png")]  # alone: no series
    assert split_series([Path("a/1.png"), Path("b/2.png")]) == (
        [],
        [Path("a/1.png"), Path("b/2.png")],
    )


def test_cli_predicts_numbered_slices_with_their_neighbours(tmp_path, context_run) -> None:
    files = _slices(tmp_path / "slices")
    out = tmp_path / "out"
    code, output = _predict(
        str(tmp_path / "slices"), "--model", str(context_run), "--out", str(out)
    )
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir() if p.name != MANIFEST) == sorted(
        f"z{n}_{kind}.png" for n in NUMBERS for kind in ("mask", "overlay")
    )
    predictor = Predictor.from_run(context_run, device="cpu")
    expected = predictor.predict_slices(files)  # natural order
    lexicographic = predictor.predict_slices(sorted(files))  # z1, z10, z11, z2, z3
    assert not np.array_equal(expected, lexicographic[[0, 3, 4, 1, 2]])  # the order matters
    for path, mask in zip(files, expected, strict=True):
        np.testing.assert_array_equal(read_mask(out / f"{path.stem}_mask.png"), mask)
    code, output = _predict(
        str(tmp_path / "slices"), "--model", str(context_run), "--out", str(out), "--continue"
    )
    assert code == 0 and "skipped 5" in output, output


def test_shard_keeps_a_series_together(tmp_path, context_run) -> None:
    files = _slices(tmp_path / "slices")
    write_image(tmp_path / "slices" / "q1.png", _volume(1, seed=5)[0])
    write_image(tmp_path / "slices" / "q2.png", _volume(1, seed=6)[0])
    predictor = Predictor.from_run(context_run, device="cpu")
    expected = predictor.predict_slices(files)
    written = []
    for i in range(2):
        out = tmp_path / f"out{i}"
        args = ["--model", str(context_run), "--out", str(out), "--no-overlay"]
        code, output = _predict(str(tmp_path / "slices"), *args, "--shard", f"{i}/2")
        assert code == 0, output
        written.append(sorted(p.name for p in out.iterdir() if p.name != MANIFEST))
    assert written == [["q1_mask.png", "q2_mask.png"], sorted(f"z{n}_mask.png" for n in NUMBERS)]
    for path, mask in zip(files, expected, strict=True):
        np.testing.assert_array_equal(read_mask(tmp_path / "out1" / f"{path.stem}_mask.png"), mask)


def test_a_three_page_imagej_tiff_is_a_stack_for_a_context_model(tmp_path, context_run) -> None:
    volume = _volume(3, seed=1)
    folder = tmp_path / "in"
    folder.mkdir()
    # tifffile's ImageJ writer calls the 3 pages of a (3, H, W) volume channels: read as one
    # image it has 3 channels, the context model's input, and gave one mask without an error.
    tifffile.imwrite(folder / "vol.tif", volume, imagej=True)
    reference = tmp_path / "reference.tif"
    tifffile.imwrite(reference, volume, photometric="minisblack")  # 3 pages, 3 frames
    assert split_stacks([folder / "vol.tif"]) == ([], [folder / "vol.tif"])  # frames: 1
    assert split_stacks([folder / "vol.tif"], context=True)[0] == [folder / "vol.tif"]
    out = tmp_path / "out"
    code, output = _predict(str(folder), "--model", str(context_run), "--out", str(out))
    assert code == 0, output
    masks = tifffile.imread(out / "vol_mask.tif")
    assert masks.shape == (3, 24, 28)
    expected = Predictor.from_run(context_run, device="cpu").predict_stack(reference)
    assert len(np.unique(expected)) > 1
    np.testing.assert_array_equal(masks, expected)


def test_a_lone_slice_still_fails_alone(tmp_path, context_run) -> None:
    folder = tmp_path / "in"
    write_image(folder / "cat.png", _volume(1)[0])
    code, output = _predict(str(folder), "--model", str(context_run), "--out", str(tmp_path / "o"))
    assert code == 2 and "is one slice" in output, output


def test_the_library_reads_an_imagej_stack_as_pages_and_refuses_it_as_one_image(
    tmp_path, context_run
) -> None:
    volume = _volume(3, seed=2)
    tifffile.imwrite(tmp_path / "vol.tif", volume, imagej=True)  # pages declared channels
    tifffile.imwrite(tmp_path / "ref.tif", volume, photometric="minisblack")  # 3 frames
    predictor = Predictor.from_run(context_run, device="cpu")
    np.testing.assert_array_equal(
        predictor.predict_stack(tmp_path / "vol.tif"), predictor.predict_stack(tmp_path / "ref.tif")
    )
    with pytest.raises(DrunetError, match=r"vol\.tif is a stack of 3 pages; predict it with"):
        predictor.predict(tmp_path / "vol.tif")


def test_each_slice_is_read_once_and_its_overlay_drawn_on_it(
    tmp_path, context_run, monkeypatch
) -> None:
    """Outputs are written slice by slice from the images the context reader already holds."""
    from drunet.inference import slice_files as slice_files_module
    from drunet.inference import volumes as volumes_module
    from drunet.inference.overlay import overlay

    files = _slices(tmp_path / "slices")
    reads: list[str] = []
    real_read = volumes_module.read_image

    def counting_read(path, *args, **kwargs):
        reads.append(Path(path).name)
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(volumes_module, "read_image", counting_read)
    # Before: slice_files read every file again for its overlay.
    monkeypatch.setattr(slice_files_module, "read_image", counting_read, raising=False)
    out = tmp_path / "out"
    code, output = _predict(
        str(tmp_path / "slices"), "--model", str(context_run), "--out", str(out)
    )
    assert code == 0, output
    assert sorted(reads) == sorted(p.name for p in files)  # once each, overlays on
    expected = Predictor.from_run(context_run).predict_slices(files)
    for path, mask in zip(files, expected, strict=True):
        np.testing.assert_array_equal(read_mask(out / f"{path.stem}_mask.png"), mask)
    # The overlay is drawn on the slice itself (not on a neighbour or the mask).
    for i in (0, 2, 4):
        drawn = real_read(out / f"{files[i].stem}_overlay.png")
        np.testing.assert_array_equal(drawn, overlay(real_read(files[i]), expected[i], 3))
    assert not np.array_equal(drawn, overlay(real_read(files[3]), expected[4], 3))


def test_an_unreadable_slice_fails_the_rest_of_its_series_and_keeps_the_slices_before(
    tmp_path, context_run
) -> None:
    files = _slices(tmp_path / "slices")
    files[3].write_bytes(b"not a png")  # z10: read for z3's context (one neighbour each side)
    out = tmp_path / "out"
    code, output = _predict(
        str(tmp_path / "slices"), "--model", str(context_run), "--out", str(out)
    )
    assert code == 3, output
    written = {p.name for p in out.glob("*_mask.png")}
    assert written == {"z1_mask.png", "z2_mask.png"}
    for name in ("z3.png", "z10.png", "z11.png"):
        assert name in output
