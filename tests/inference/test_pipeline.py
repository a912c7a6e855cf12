"""The one prediction loop gives the same files, report and order with prefetch (reader and
writer threads) as without (no thread at all); a bad input still fails alone; a writer error or
Ctrl-C stops it leaving only whole files."""

from __future__ import annotations

import errno
import os
import random
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

import drunet.inference.loop as loop_module
from drunet.atomic import TEMP_SUFFIX
from drunet.checkpoint import build_model
from drunet.config import config_from_dict
from drunet.datasets import write_image
from drunet.inference import OutputOptions, PredictOptions, Predictor, predict_files
from drunet.outputs import MANIFEST, Manifest
from tests.conftest import TINY_PARAMS, randomise_batch_norms

SIZES = [(24, 24)] * 5 + [(17, 30)] * 3 + [(24, 24)] * 2 + [(40, 33)] + [(24, 24)] * 3


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    config = config_from_dict(
        {
            "model": {"in_channels": 1, "num_classes": 3, "params": TINY_PARAMS},
            "data": {"normalization": {"mean": [0.4], "std": [0.2], "clip_percentiles": None}},
        }
    )
    torch.manual_seed(0)
    model = randomise_batch_norms(build_model(config)).eval()
    return Predictor(model, config, "cpu", PredictOptions(batch_size=3))


def _folder(root: Path, bad: dict[int, str] | None = None) -> list[Path]:
    """Images of ``SIZES`` (sorted names); ``bad``: index → "unreadable" or "rgb" (3 channels)."""
    rng = np.random.default_rng(1)
    paths = []
    for i, size in enumerate(SIZES):
        path = root / f"{i:02d}.png"
        kind = (bad or {}).get(i)
        if kind == "unreadable":
            root.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        else:
            shape = (*size, 3) if kind == "rgb" else size
            write_image(path, rng.integers(0, 256, shape, dtype=np.uint8))
        paths.append(path)
    return paths


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != MANIFEST}


def test_same_bytes_report_and_order_as_the_sequential_loop(predictor, tmp_path) -> None:
    inputs = _folder(tmp_path / "in", bad={3: "unreadable", 9: "rgb"})
    outputs = OutputOptions(color=True, probabilities=True)
    runs = {}
    for prefetch in (0, 2, 4):
        done: list[Path] = []
        out = tmp_path / f"out{prefetch}"
        report = predict_files(
            predictor, inputs, out, done.append, outputs, prefetch=prefetch, workers=3
        )
        runs[prefetch] = (report, done, _files(out))
    sequential, done, files = runs[0]
    assert done == inputs
    assert list(sequential.failed) == [inputs[3], inputs[9]]
    assert "3 channel" in sequential.failed[inputs[9]]
    assert len(files) == 4 * (len(inputs) - 2)
    for prefetch in (2, 4):
        report, pipelined_done, pipelined_files = runs[prefetch]
        assert pipelined_done == done
        assert [p.name for p in report.written] == [p.name for p in sequential.written]
        assert report.failed == sequential.failed  # each bad input named once, same message
        assert pipelined_files == files  # masks, overlays, colours, probabilities: byte-equal
        assert set(report.timings) == {"read", "normalize", "compute", "write", "wall"}


def test_without_prefetch_no_thread_is_started(predictor, tmp_path) -> None:
    inputs = _folder(tmp_path / "in")
    threads: dict[int, set[str]] = {0: set(), 2: set()}
    for prefetch, seen in threads.items():
        done = partial(lambda names, _: names.add(threading.current_thread().name), seen)
        predict_files(predictor, inputs, tmp_path / f"out{prefetch}", done, prefetch=prefetch)
    assert threads == {0: {threading.current_thread().name}, 2: {"drunet-writer"}}


def test_the_written_list_is_in_input_order_however_reads_finish(
    predictor, tmp_path, monkeypatch
) -> None:
    inputs = _folder(tmp_path / "in")
    real_read, rng = loop_module.read_image, random.Random(0)

    def slow_read(path: Path) -> np.ndarray:
        time.sleep(rng.random() * 0.02)  # reads finish out of order
        return real_read(path)

    monkeypatch.setattr(loop_module, "read_image", slow_read)
    for trial in range(3):
        out = tmp_path / f"out{trial}"
        report = predict_files(predictor, inputs, out, prefetch=3, workers=4)
        assert report.written == [out / f"{p.stem}_mask.png" for p in inputs]


def test_batches_are_grouped_like_the_sequential_loop(predictor, tmp_path, monkeypatch):
    inputs = _folder(tmp_path / "in")
    shapes: dict[int, list[tuple[int, ...]]] = {}
    real_scores = Predictor.scores

    def recording(self, x, on_progress=None):
        shapes[prefetch].append(tuple(x.shape))
        return real_scores(self, x, on_progress)

    monkeypatch.setattr(Predictor, "scores", recording)
    for prefetch in (0, 2):
        shapes[prefetch] = []
        predict_files(predictor, inputs, tmp_path / f"o{prefetch}", prefetch=prefetch)
    assert shapes[2] == shapes[0]
    assert shapes[0][:3] == [(3, 1, 24, 24), (2, 1, 24, 24), (3, 1, 17, 30)]


def test_a_file_that_cannot_be_written_fails_alone(predictor, tmp_path) -> None:
    inputs = _folder(tmp_path / "in")
    out = tmp_path / "out"
    (out / "04_overlay.png").mkdir(parents=True)  # a folder where an output goes, under a
    Manifest(out).record([out / "04_overlay.png"])  # name drunet wrote before
    report = predict_files(predictor, inputs, out, prefetch=2)
    assert list(report.failed) == [inputs[4]] and "04_overlay.png" in report.failed[inputs[4]]
    assert len(report.written) == len(inputs) - 1


def test_a_full_disk_stops_the_run_with_whole_files_only(predictor, tmp_path, monkeypatch):
    import drunet.inference.files as files_module

    inputs = _folder(tmp_path / "in")
    real_write_mask, calls = files_module.write_mask, []

    def write_mask(path: Path, mask: np.ndarray) -> None:
        calls.append(path)
        if len(calls) == 6:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_write_mask(path, mask)

    monkeypatch.setattr(files_module, "write_mask", write_mask)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        predict_files(predictor, inputs, out, prefetch=2)
    assert sorted(out.glob("*_mask.png")) == [out / f"{p.stem}_mask.png" for p in inputs[:5]]
    assert not [p for p in out.iterdir() if p.name.endswith(TEMP_SUFFIX)]
    monkeypatch.undo()
    report = predict_files(predictor, inputs, out, skip_existing=True, prefetch=2)
    assert report.skipped == inputs[:5] and len(report.written) == len(inputs) - 5


def test_ctrl_c_during_the_network_leaves_whole_files_and_continue_finishes(
    predictor, tmp_path, monkeypatch
) -> None:
    inputs = _folder(tmp_path / "in")
    real_scores, calls = Predictor.scores, []

    def interrupted(self, x, on_progress=None):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_scores(self, x, on_progress)

    monkeypatch.setattr(Predictor, "scores", interrupted)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        predict_files(predictor, inputs, out, prefetch=2)
    names = sorted(p.name for p in out.iterdir() if p.name != MANIFEST)
    assert names and not [n for n in names if n.endswith(TEMP_SUFFIX)]
    masks = {n.removesuffix("_mask.png") for n in names if n.endswith("_mask.png")}
    overlays = {n.removesuffix("_overlay.png") for n in names if n.endswith("_overlay.png")}
    assert masks <= overlays  # the mask comes last: a mask means the input is complete
    monkeypatch.undo()
    report = predict_files(predictor, inputs, out, skip_existing=True, prefetch=2)
    assert len(report.skipped) == len(masks) and len(report.written) == len(inputs) - len(masks)


def test_prefetch_reads_at_most_its_window_ahead(predictor, tmp_path, monkeypatch) -> None:
    inputs = _folder(tmp_path / "in")
    reads: list[Path] = []
    real_read = loop_module.read_image
    ahead: list[int] = []
    real_scores = Predictor.scores

    def counting_read(path: Path) -> np.ndarray:
        reads.append(path)
        return real_read(path)

    def scores(self, x, on_progress=None):
        ahead.append(len(reads))
        return real_scores(self, x, on_progress)

    monkeypatch.setattr(loop_module, "read_image", counting_read)
    monkeypatch.setattr(Predictor, "scores", scores)
    predict_files(predictor, inputs, tmp_path / "out", prefetch=2)
    # Before the first batch (3 images) runs: it, the image that showed the batch was full, and
    # at most 2 batches of 3 more were read (threads may not have reached them all yet).
    assert 3 <= ahead[0] <= 3 + 1 + 2 * 3
