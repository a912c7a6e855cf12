"""``drunet predict`` streams giant inputs: tiled pyramidal masks equal to the in-memory ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from drunet.checkpoint import save_weights
from drunet.cli.main import app
from drunet.giant.files import is_giant, output_paths, predict_giant_file, split_inputs
from drunet.giant.journal import partial_folder
from drunet.giant.options import GiantOptions
from drunet.giant.resample import resample
from drunet.giant.sources import open_region_source
from drunet.giant.tiff_sink import write_tiled_tiff
from drunet.giant.zarr_sink import write_ome_zarr
from drunet.inference import PredictJob, Predictor, run_predict
from drunet.outputs import Manifest
from tests.giant.models import tiny_predictor
from tests.giant.test_stream import textured

runner = CliRunner()


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    predictor = tiny_predictor()
    path = tmp_path_factory.mktemp("run") / "best.safetensors"
    save_weights(path, predictor.model, predictor.config)
    return path


def tiled_tiff(path: Path, image: np.ndarray, **kwargs: object) -> Path:
    tifffile.imwrite(path, image, tile=(64, 64), compression="zlib", **kwargs)
    return path


def loaded(weights: Path, **options: object) -> Predictor:
    return Predictor.from_run(weights, device="cpu", options=tiny_predictor(**options).options)


def test_stream_flag_writes_a_tiled_pyramidal_mask_equal_to_the_in_memory_one(
    tmp_path: Path, weights: Path
) -> None:
    image = textured(300, 420)
    source = tiled_tiff(tmp_path / "scan.tif", image)
    out = tmp_path / "out"
    args = ["predict", str(source), "--model", str(weights), "--out", str(out), "--stream"]
    result = runner.invoke(
        app, [*args, "--max-pixels", "0", "--probabilities", "--precision", "fp32"]
    )
    assert result.exit_code == 0, result.output
    assert "scan.tif: 117 of 117 tile(s) predicted" in result.output  # 9 rows × 13 columns
    mask_path, probs_path = output_paths(source, out, True)
    assert mask_path.name == "scan_mask.tif" and probs_path is not None
    expected, probs = loaded(weights, max_pixels=0).predict(image, return_probabilities=True)
    with tifffile.TiffFile(mask_path) as tif:
        page = tif.pages.first
        assert page.is_tiled and len(page.pages) >= 1  # tiles and a pyramid (SubIFDs)
        assert np.array_equal(page.asarray(), expected)
    assert np.array_equal(tifffile.imread(probs_path).transpose(2, 0, 1), probs)
    assert Manifest(out).owns(mask_path) and Manifest(out).owns(probs_path)
    assert not (out / "scan_mask.png").exists()  # not the in-memory outputs
    assert not partial_folder(mask_path).exists()


def test_giant_inputs_are_recognised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = tiled_tiff(tmp_path / "small.tif", textured(100, 100))
    pyramid = tmp_path / "pyramid.ome.tif"
    with tifffile.TiffWriter(pyramid) as tif:
        tif.write(textured(256, 256), tile=(64, 64), subifds=1)
        tif.write(textured(128, 128), tile=(64, 64), subfiletype=1)
    (tmp_path / "slide.svs").write_bytes(b"")  # by its name: a whole-slide file
    (tmp_path / "plain.png").write_bytes(b"")
    assert not is_giant(small) and is_giant(pyramid) and is_giant(tmp_path / "slide.svs")
    monkeypatch.setenv("DRUNET_MAX_IMAGE_PIXELS", "9999")  # 100² is then too large to read whole
    assert is_giant(small)
    monkeypatch.delenv("DRUNET_MAX_IMAGE_PIXELS")
    whole, giant = split_inputs(tmp_path)
    assert whole == [tmp_path / "plain.png", small]
    assert giant == [pyramid, tmp_path / "slide.svs"]
    assert output_paths(pyramid, tmp_path, False) == (tmp_path / "pyramid_mask.tif", None)


def test_continue_finishes_an_interrupted_run_and_refuses_other_settings(
    tmp_path: Path, weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = textured(400, 200)
    source = tiled_tiff(tmp_path / "scan.tif", image)
    out = tmp_path / "out"
    job = PredictJob(
        source, models=(weights,), out=out, stream=True, max_pixels=0, precision="fp32"
    )

    class Killed(Exception):
        pass

    import drunet.giant.predict as giant_predict

    calls = []
    real = giant_predict.Journal.add

    def add_then_die(self: object, band: object) -> None:
        real(self, band)  # type: ignore[arg-type]
        calls.append(1)
        if len(calls) == 4:
            raise Killed

    monkeypatch.setattr(giant_predict.Journal, "add", add_then_die)
    with pytest.raises(Killed):
        run_predict(job)
    monkeypatch.undo()
    mask = out / "scan_mask.tif"
    assert not mask.exists() and partial_folder(mask).is_dir()
    refused = runner.invoke(
        app, ["predict", str(source), "--model", str(weights), "--out", str(out), "--stream"]
    )
    assert refused.exit_code == 2 and "--continue" in refused.output
    other = runner.invoke(
        app,
        [
            "predict",
            str(source),
            "--model",
            str(weights),
            "--out",
            str(out),
            "--stream",
            "--continue",
            "--max-pixels",
            "0",
            "--overlap",
            "0.25",
            "--precision",
            "fp32",
        ],
    )
    assert other.exit_code == 2 and "overlap" in other.output
    report = run_predict(PredictJob(**{**job.__dict__, "resume": True}))
    assert report.written == [source]
    assert np.array_equal(tifffile.imread(mask), loaded(weights, max_pixels=0).predict(image))
    again = run_predict(PredictJob(**{**job.__dict__, "resume": True}))
    assert again.skipped == [source] and not again.written  # whole: nothing to continue


def test_a_foreign_file_at_the_output_name_is_refused(tmp_path: Path, weights: Path) -> None:
    source = tiled_tiff(tmp_path / "scan.tif", textured(100, 100))
    out = tmp_path / "out"
    out.mkdir()
    (out / "scan_mask.tif").write_bytes(b"mine")
    args = ["predict", str(source), "--model", str(weights), "--out", str(out), "--stream"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "drunet did not write it" in result.output
    assert (out / "scan_mask.tif").read_bytes() == b"mine"
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    assert tifffile.imread(out / "scan_mask.tif").shape == (100, 100)


def test_ome_zarr_in_gives_ome_zarr_out(tmp_path: Path, weights: Path) -> None:
    image = textured(200, 260)
    source = tmp_path / "mosaic.ome.zarr"
    write_ome_zarr(source, [image], height=200, width=260, dtype=np.uint8, chunk=64)
    out = tmp_path / "out"
    args = ["predict", str(source), "--model", str(weights), "--out", str(out)]
    result = runner.invoke(app, [*args, "--max-pixels", "0", "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    mask = open_region_source(out / "mosaic_mask.zarr")
    assert (mask.height, mask.width, mask.channels) == (200, 260, 1)
    expected = loaded(weights, max_pixels=0).predict(image)
    assert np.array_equal(mask.read(0, 0, 200, 260)[..., 0], expected)


@pytest.mark.parametrize(("run_mpp", "level"), [(0.5, 1), (0.4, 0)])
def test_a_slide_is_predicted_at_the_resolution_the_run_was_trained_at(
    tmp_path: Path, run_mpp: float, level: int
) -> None:
    image = textured(400, 320)
    slide = tmp_path / "slide.ome.tif"
    write_tiled_tiff(slide, [image], height=400, width=320, dtype=np.uint8, tile=64, mpp=0.25)
    predictor = tiny_predictor(mpp=run_mpp, max_pixels=0)
    result = predict_giant_file(predictor, slide, tmp_path / "out", GiantOptions(tissue=False))
    assert result is not None
    expected_source = resample(open_region_source(slide, level=level), mpp=run_mpp)
    size = round(400 * 0.25 / run_mpp), round(320 * 0.25 / run_mpp)
    assert (expected_source.height, expected_source.width) == size
    expected = predictor.predict(expected_source.read(0, 0, *size))
    mask = open_region_source(result.mask)
    assert mask.mpp == pytest.approx(run_mpp)
    assert np.array_equal(mask.read(0, 0, *size)[..., 0], expected)
