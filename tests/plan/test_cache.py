"""The fingerprint is measured once: ``drunet verify`` shows it, ``drunet plan`` (and train)
read the cached entry; a changed file is measured again; ``off`` and damaged entries measure."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from drunet.cli.main import app
from drunet.datasets import write_mask
from drunet.plan import cache
from drunet.plan.cache import cached_fingerprint
from tests.plan.conftest import discs_mask, folder_pairs, write_folder


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[int]:
    """The cache in ``tmp_path/cache``; each real measurement appended to the list."""
    monkeypatch.setenv("DRUNET_CACHE_DIR", str(tmp_path / "cache"))
    calls: list[int] = []
    compute = cache.compute_fingerprint

    def counting(pairs, masks=None, **options):
        calls.append(len(pairs))
        return compute(pairs, masks, **options)

    monkeypatch.setattr(cache, "compute_fingerprint", counting)
    return calls


def _data(root: Path) -> Path:
    """Five 32² masks: four with two discs of radius 5, one empty (20 % empty)."""
    return write_folder(root, [discs_mask(32, 5)] * 4 + [np.zeros((32, 32), np.uint8)])


def test_a_second_call_reads_the_cache_and_a_changed_file_is_measured(
    measured: list[int], tmp_path: Path
) -> None:
    pairs = folder_pairs(_data(tmp_path / "d"))
    first = cached_fingerprint(pairs)
    assert cached_fingerprint(pairs) == first and measured == [5]
    assert first.empty_mask_fraction == pytest.approx(0.2)
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1
    mask = pairs[4].mask  # the empty mask gains a disc: another key, measured again
    write_mask(mask, discs_mask(32, 5))
    stat = mask.stat()
    os.utime(mask, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert cached_fingerprint(pairs).empty_mask_fraction == 0.0 and measured == [5, 5]
    assert cached_fingerprint(pairs, max_images=3).sampled == 3 and len(measured) == 3


def test_off_and_damaged_entries_measure_again(
    measured: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs = folder_pairs(_data(tmp_path / "d"))
    cached_fingerprint(pairs)
    (entry,) = (tmp_path / "cache").glob("*.json")
    entry.write_text("{not json")
    assert cached_fingerprint(pairs).pairs == 5 and measured == [5, 5]
    assert json.loads(entry.read_text())["pairs"] == 5  # rewritten whole
    monkeypatch.setenv("DRUNET_CACHE_DIR", "off")
    cached_fingerprint(pairs)
    assert measured == [5, 5, 5]


def test_verify_shows_the_fingerprint_and_plan_reuses_it(
    measured: list[int], tmp_path: Path
) -> None:
    data = _data(tmp_path / "d")
    runner, wide = CliRunner(), {"COLUMNS": "200"}
    shown = runner.invoke(app, ["verify", "--data", str(data)], env=wide)
    assert shown.exit_code == 0, shown.output
    text = shown.output[shown.output.index("fingerprint") :]
    # verify reads every pair; the fingerprint, as train and plan do, the training split (4).
    assert "measured: 4 of 4 training pairs" in text
    assert "sizes (W×H): 32×32 … 32×32" in text
    as_json = runner.invoke(app, ["verify", str(data), "--json"])
    assert json.loads(as_json.output)["fingerprint"]["pairs"] == 4
    planned = runner.invoke(app, ["plan", "--data", str(data), "--json"])
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.output)["fingerprint"] == json.loads(as_json.output)["fingerprint"]
    assert measured == [4]  # measured once for the three commands


def test_verify_without_readable_pairs_says_why(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["verify", str(tmp_path / "none")], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "fingerprint: not measured (" in result.output and "Traceback" not in result.output
