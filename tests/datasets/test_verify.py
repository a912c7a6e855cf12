"""``verify_dataset`` reports one precise line per problem and summarises what training will use."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

import drunet.datasets.io as dio
import drunet.datasets.masks as dmasks
from drunet.datasets import (
    LayoutOptions,
    MaskOptions,
    format_problem_lines,
    format_summary_lines,
    verify_dataset,
    write_image,
    write_mask,
)
from drunet.errors import DataError

ISBI = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "isbi2012" / "train"
GRAY = np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1))  # (32, 32)


def _labels(*values: int) -> np.ndarray:
    mask = np.zeros((32, 32), np.uint8)
    for i, value in enumerate(values):
        mask[i * 4 : i * 4 + 4, :] = value
    return mask


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    """A folder with one of each problem next to three good pairs (3 classes)."""
    root = tmp_path / "messy"
    images, masks = root / "images", root / "masks"
    for stem in ("good1", "good2", "good3"):
        write_image(images / f"{stem}.png", GRAY)
        write_mask(masks / f"{stem}.png", _labels(0, 1, 2))
    write_image(images / "lonely.png", GRAY)  # no mask
    write_mask(masks / "orphan.png", _labels(1))  # no image
    (images / "zero.png").write_bytes(b"")
    write_image(
        images / "truncated.png",
        np.random.default_rng(0).integers(0, 255, (32, 32), dtype=np.uint8),
    )
    data = (images / "truncated.png").read_bytes()
    (images / "truncated.png").write_bytes(data[: len(data) // 2])
    (images / "text.png").write_text("this is a text file, not a PNG\n")
    write_image(images / "sized.png", GRAY)
    write_mask(masks / "sized.png", np.zeros((30, 32), np.uint8))
    write_image(images / "seven.png", GRAY)
    write_mask(masks / "seven.png", _labels(0, 1, 7))
    write_image(images / "binary.png", GRAY)
    write_mask(masks / "binary.png", _labels(0, 255))
    write_image(images / "rgb.png", np.repeat(GRAY[:, :, None], 3, axis=2))
    for stem in ("zero", "truncated", "text", "rgb"):
        write_mask(masks / f"{stem}.png", _labels(0, 1))
    return root


EXPECTED = {
    ("image-without-mask", "lonely.png", "error", "has no mask"),
    ("mask-without-image", "orphan.png", "error", "has no image"),
    ("unreadable", "zero.png", "error", "empty (0 bytes)"),
    ("unreadable", "truncated.png", "error", "this PNG file could not be decoded (truncated"),
    ("unreadable", "text.png", "error", "it is not an image file"),
    ("size-mismatch", "sized.png", "error", "mask is 32×30 (W×H) but its image sized.png is 32×32"),
    ("unexpected-mask-values", "seven.png", "error", "value 7 but there are 3 classes (0-2)"),
    ("binary-255", "binary.png", "warning", "only {0, 255}: read as binary (255 → class 1), but"),
    ("channel-mismatch", "rgb.png", "error", "3 channel(s) but 5 of 6 readable images have 1"),
}


def test_messy_folder_gives_one_precise_line_per_problem(messy):
    report = verify_dataset(messy, num_classes=3, patch_size=16)
    found = {(p.kind, p.path.name, p.severity) for p in report.problems}
    assert found == {(kind, name, severity) for kind, name, severity, _ in EXPECTED}
    assert len(report.problems) == len(EXPECTED)  # exactly one line each
    lines = format_problem_lines(report)
    for kind, name, _, text in EXPECTED:
        (line,) = [line for line in lines if name in line]
        assert text in line, (kind, line)
    assert all("fix: " in line for line in lines if line.startswith("error"))
    assert not report.ok
    summary = report.summary
    assert summary.pairs == 10 and summary.usable == 6  # good ×3, seven, binary, rgb
    assert summary.num_classes == 3
    json.dumps(report.to_json())  # machine-readable
    with pytest.raises(DataError, match=r"8 error\(s\)"):
        report.raise_for_errors()


def test_each_file_is_read_once(messy, monkeypatch):
    calls: list[Path] = []
    original = dio.read_bytes

    def counting(path, what="image"):
        calls.append(Path(path))
        return original(path, what)

    monkeypatch.setattr(dio, "read_bytes", counting)
    monkeypatch.setattr(dmasks, "read_bytes", counting)
    verify_dataset(messy, num_classes=3, patch_size=16)
    assert len(calls) == len(set(calls)) == 10 + 10  # the 10 matched pairs: image and mask


@pytest.mark.skipif(not ISBI.is_dir(), reason="ISBI 2012 data not available")
def test_isbi_summary():
    start = time.perf_counter()
    report = verify_dataset(ISBI)
    elapsed = time.perf_counter() - start
    assert report.ok and report.problems == []
    summary = report.summary
    assert summary.pairs == 30 and summary.usable == 30
    assert summary.train + summary.val == 30 and summary.val == 6
    assert summary.num_classes == 2
    assert 0.2195 < summary.class_frequencies[1] < 0.2198  # 0.21963 measured: membrane ≈ 22 %
    assert summary.empty_mask_share == 0.0
    assert summary.size_counts == {"512x512": 30} and summary.bit_depths == {"uint8": 30}
    assert summary.channels == 1 and summary.normalization.clip_low is None
    assert 0.4 < summary.normalization.mean[0] < 0.6
    assert elapsed < 5.0


def _binary_folder(root: Path, masks: list[np.ndarray], image: np.ndarray = GRAY) -> Path:
    for i, mask in enumerate(masks):
        write_image(root / "images" / f"{i}.png", image)
        write_mask(root / "masks" / f"{i}.png", mask)
    return root


def test_255_next_to_classes_without_ignore_index(tmp_path):
    root = _binary_folder(tmp_path, [_labels(0, 1, 255), _labels(0, 2, 255), _labels(0, 1)])
    report = verify_dataset(root, patch_size=32)
    (problem,) = report.problems
    assert problem.kind == "value-255" and problem.severity == "error"
    assert "2 masks hold 255 next to other values" in problem.message
    assert "ignore_index: 255" in problem.fix
    assert report.summary.num_classes == 3  # inferred without the stray 255
    fixed = verify_dataset(root, MaskOptions(ignore_index=255), patch_size=32)
    assert fixed.ok and fixed.problems == []
    assert fixed.summary.ignore_index == 255
    assert fixed.summary.ignored_share == pytest.approx(2 * 4 / (3 * 32))


def test_gaps_in_class_indices_are_warned_about(tmp_path):
    report = verify_dataset(_binary_folder(tmp_path, [_labels(0, 4), _labels(0, 1)]), patch_size=8)
    (problem,) = report.problems
    assert problem.kind == "absent-class" and "class(es) 2-3 never occur" in problem.message
    assert report.ok  # a warning does not stop training


def test_binary_masks_in_a_multi_class_dataset_are_a_warning(tmp_path):
    report = verify_dataset(
        _binary_folder(tmp_path, [_labels(0, 255), _labels(0, 1, 2)]), patch_size=8
    )
    (problem,) = report.problems
    assert problem.severity == "warning" and "but the dataset has 3 classes" in problem.message


def test_model_channels_and_small_images(tmp_path):
    root = _binary_folder(tmp_path, [_labels(0, 1)] * 2)
    report = verify_dataset(root, in_channels=3, patch_size=64)
    kinds = {p.kind: p for p in report.problems}
    assert set(kinds) == {"model-channels", "smaller-than-patch"}
    assert "the model expects 3" in kinds["model-channels"].message
    assert kinds["smaller-than-patch"].message.startswith("2 images are smaller than the patch")
    assert report.summary.smaller_than_patch == 2


def test_sixteen_bit_rgba_and_colour_masks(tmp_path):
    image = np.random.default_rng(0).integers(0, 4000, (32, 32, 4)).astype(np.uint16)
    colours = np.array([(0, 0, 0), (255, 0, 0)], np.uint8)[_labels(0, 1)]
    write_image(tmp_path / "images" / "a.png", image)
    write_image(tmp_path / "masks" / "a.png", colours)
    unmapped = verify_dataset(tmp_path)
    assert [p.kind for p in unmapped.errors] == ["unreadable"]
    assert "colour_map" in unmapped.errors[0].fix
    report = verify_dataset(tmp_path, MaskOptions(colour_map={"0,0,0": 0, "255,0,0": 1}))
    assert report.ok
    assert [p.kind for p in report.problems] == ["alpha-dropped", "smaller-than-patch"]
    summary = report.summary
    assert summary.channels == 3 and summary.bit_depths == {"uint16": 1}
    assert summary.normalization.clip_percentiles == (0.5, 99.5)
    assert summary.class_frequencies == pytest.approx([28 / 32, 4 / 32])
    assert any("clipped" in line for line in format_summary_lines(summary))


def test_nnunet_folder_uses_dataset_json_names_and_ignore(tmp_path):
    for i in range(3):
        for c in range(2):
            write_image(tmp_path / "imagesTr" / f"c{i}_{c:04d}.png", GRAY)
        write_mask(tmp_path / "labelsTr" / f"c{i}.png", _labels(0, 1, 9))
    meta = {
        "channel_names": {"0": "A", "1": "B"},
        "labels": {"background": 0, "cell": 1, "ignore": 9},
    }
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    report = verify_dataset(tmp_path, layout=LayoutOptions(fold=0, folds=3), patch_size=32)
    assert report.ok and report.problems == []
    summary = report.summary
    assert summary.class_names == ["background", "cell"] and summary.ignore_index == 9
    assert summary.channels == 2 and summary.channel_names == ["A", "B"]
    assert summary.split == "fold 0 of 3 (seed 0)" and (summary.train, summary.val) == (2, 1)


def test_a_folder_without_layout_is_one_error(tmp_path):
    report = verify_dataset(tmp_path / "missing")
    (problem,) = report.problems
    assert problem.kind == "layout" and "missing" in problem.line()
    assert report.summary is None and not report.ok
