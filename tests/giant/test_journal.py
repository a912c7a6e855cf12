"""predict_giant: the journal beside the output, continuing after an interruption, tissue."""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
import tifffile

from drunet.errors import DrunetError
from drunet.giant.journal import Journal, partial_folder
from drunet.giant.predict import BandLayout, predict_giant
from drunet.giant.regions import ArraySource
from drunet.giant.stream import Band
from drunet.giant.tissue import otsu_threshold, tissue_map
from drunet.inference.postprocess import PostprocessOptions
from tests.giant.models import tiny_predictor
from tests.giant.test_stream import textured


def plain_tiff(path: Path, bands: Iterable[np.ndarray], layout: BandLayout) -> None:
    """A plain tifffile writer (the tests' stand-in for drunet.giant's tiled writer)."""
    whole = np.concatenate(list(bands))
    assert whole.shape[:2] == (layout.height, layout.width) and whole.dtype == layout.dtype
    tifffile.imwrite(path, whole)


class Interrupt(Exception):
    pass


def interrupt_after(batches: int) -> Callable[[int, int], None]:
    calls: list[int] = []

    def hook(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == batches:
            raise Interrupt

    return hook


IMAGE = textured(520, 300)


def test_an_interrupted_run_continues_and_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    predictor = tiny_predictor(max_pixels=0)
    whole = predict_giant(
        predictor,
        ArraySource(IMAGE),
        tmp_path / "whole.tif",
        plain_tiff,
        probabilities_path=tmp_path / "whole_probs.tif",
    )
    out, probs = tmp_path / "a_mask.tif", tmp_path / "a_probs.tif"
    with pytest.raises(Interrupt):
        predict_giant(
            predictor,
            ArraySource(IMAGE),
            out,
            plain_tiff,
            probabilities_path=probs,
            on_progress=interrupt_after(20),
        )
    assert not out.exists() and not probs.exists()  # never a half-written output
    done = Journal(out, {}).done_rows()
    assert 0 < done < 520
    with pytest.raises(DrunetError, match="--continue"):  # not thrown away by accident
        predict_giant(predictor, ArraySource(IMAGE), out, plain_tiff, probabilities_path=probs)
    again = predict_giant(
        predictor, ArraySource(IMAGE), out, plain_tiff, probabilities_path=probs, resume=True
    )
    assert again.rows_before == done
    assert again.rows_before + again.rows_computed == 520
    assert again.bands_computed < whole.bands_computed
    assert again.tally.computed < whole.tally.computed == whole.tally.total
    assert np.array_equal(tifffile.imread(out), tifffile.imread(tmp_path / "whole.tif"))
    assert np.array_equal(tifffile.imread(probs), tifffile.imread(tmp_path / "whole_probs.tif"))
    assert np.array_equal(tifffile.imread(out), predictor.predict(IMAGE))
    assert not partial_folder(out).exists()  # the journal is gone once the output is whole


def test_continuing_with_other_settings_or_input_is_refused(tmp_path: Path) -> None:
    predictor = tiny_predictor(max_pixels=0)
    out = tmp_path / "a_mask.tif"
    with pytest.raises(Interrupt):
        predict_giant(
            predictor, ArraySource(IMAGE), out, plain_tiff, on_progress=interrupt_after(3)
        )
    other = tiny_predictor(max_pixels=0, overlap=0.25)
    with pytest.raises(DrunetError, match="overlap: 0.5 then, 0.25 now"):
        predict_giant(other, ArraySource(IMAGE), out, plain_tiff, resume=True)
    with pytest.raises(DrunetError, match="input"):
        predict_giant(predictor, ArraySource(IMAGE[:500]), out, plain_tiff, resume=True)
    fresh = predict_giant(predictor, ArraySource(IMAGE), out, plain_tiff, overwrite=True)
    assert fresh.rows_before == 0 and fresh.rows_computed == 520


def test_a_changed_input_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, IMAGE)
    source = ArraySource(IMAGE, path)
    predictor = tiny_predictor(max_pixels=0)
    out = tmp_path / "image_mask.tif"
    with pytest.raises(Interrupt):
        predict_giant(predictor, source, out, plain_tiff, on_progress=interrupt_after(3))
    tifffile.imwrite(path, 255 - IMAGE)  # same size, new pixels
    with pytest.raises(DrunetError, match="header_sha256"):
        predict_giant(predictor, source, out, plain_tiff, resume=True)


def test_otsu_splits_two_groups_between_them() -> None:
    values = np.array([0.2] * 30 + [0.25] * 10 + [0.8] * 50 + [0.9] * 10)
    threshold = otsu_threshold(values)
    assert threshold is not None and 0.25 < threshold < 0.8
    assert otsu_threshold(np.full(10, 0.5)) is None


def slide(height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """Bright glass (230 ± 5) with darker, textured tissue in ``box`` (top, left, bottom, right)."""
    rng = np.random.default_rng(3)
    image = rng.integers(225, 236, (height, width, 3), dtype=np.uint8)
    top, left, bottom, right = box
    image[top:bottom, left:right] = textured(bottom - top, right - left, 3)[..., :3] // 2 + 20
    return image


def test_tiles_without_tissue_are_skipped_and_written_as_background(tmp_path: Path) -> None:
    box = (130, 200, 250, 330)
    image = slide(512, 640, box)
    tissue = tissue_map(ArraySource(image), margin=0)
    assert tissue.threshold is not None and 0.1 < tissue.threshold < 0.9
    # 64² tiles every 32 px from 0 to 448 / 576: 15 × 19 = 285 tiles. A tile is kept when it
    # overlaps the box: rows 96…224 (5 starts: 96, 128, 160, 192, 224) and columns 160…320
    # (6 starts) — 30 tiles; the other 255 are skipped.
    # Threshold 0: the network calls every pixel it sees foreground, so a 0 is a skipped tile.
    predictor = tiny_predictor(2, 3, max_pixels=0, postprocess=PostprocessOptions(threshold=0.0))
    result = predict_giant(
        predictor,
        ArraySource(image),
        tmp_path / "s_mask.tif",
        plain_tiff,
        probabilities_path=tmp_path / "s_probs.tif",
        tissue=tissue,
    )
    assert (result.tally.total, result.tally.computed, result.tally.skipped) == (285, 30, 255)
    mask, probs = (
        tifffile.imread(tmp_path / "s_mask.tif"),
        tifffile.imread(tmp_path / "s_probs.tif"),
    )
    covered = np.zeros(mask.shape, bool)
    covered[96:288, 160:384] = True  # the kept tiles' union
    assert not mask[~covered].any()  # background outside
    assert np.array_equal(probs[~covered], np.tile([1.0, 0.0], ((~covered).sum(), 1)))
    # Inside the tissue box (every tile covering it kept) the mask is the in-memory one.
    top, left, bottom, right = box
    full = predictor.predict(image)
    assert np.array_equal(mask[top:bottom, left:right], full[top:bottom, left:right])
    assert full.all()


def test_a_band_kept_in_the_journal_reads_back_bit_for_bit_at_deflate_level_1(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(3)
    mask = (rng.random((64, 300)) > 0.5).astype(np.uint8)
    probabilities = rng.random((64, 300, 2), dtype=np.float32)
    journal = Journal(tmp_path / "out.tif", {"a": 1})
    journal.open(resume=False)
    journal.add(Band(128, mask, probabilities))
    (_, _, chunk), *others = journal.chunks()
    assert chunk.name == "rows-0000000128-0000000192.npz" and not others
    with zipfile.ZipFile(chunk) as archive:
        infos = archive.infolist()
        assert [i.filename for i in infos] == ["mask.npy", "probabilities.npy"]
        assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}
        for info in infos:  # deflated at level 1, not savez_compressed's 6
            packer = zlib.compressobj(1, zlib.DEFLATED, -15)
            data = archive.read(info)
            assert info.compress_size == len(packer.compress(data) + packer.flush())
    with np.load(chunk) as kept:
        assert np.array_equal(kept["mask"], mask) and kept["mask"].dtype == np.uint8
        assert np.array_equal(kept["probabilities"], probabilities)
