"""`drunet compare … > log`: the table keeps every number and name whole off a terminal, and
the HTML report is written. Training is replaced by ready-made results (fast)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import drunet.cli.compare as compare_cli
from drunet.cli.main import app
from drunet.compare import ModelReport
from drunet.compare.tables import table_rows
from drunet.engine.epochs import EpochRecord
from tests.evaluation.conftest import square
from tests.report.test_compare_report import pairs_on_disk


def test_compare_table_survives_a_log_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = pairs_on_disk(tmp_path / "data", 2)
    history = [EpochRecord(1, 0.5, 0.4, 1e-3, 60.0, {"dice": 0.7})]
    reports = [
        ModelReport(
            name,
            f"runs/{name}",
            12,
            24.71234,
            {"dice": dice, "iou": 0.612345, "precision": 0.7, "recall": 0.71},
            24_430_000,
            15.43,
            2.1534,
            1.9123,
            history,
            [square(16, 2, 2, 8)] * 2,
        )
        for name, dice in (("drunet_long_model_name", 0.837123), ("unet_resnet34", 0.829712))
    ]
    monkeypatch.setattr(compare_cli, "compare_models", lambda *a, **k: (reports, pairs))
    out = tmp_path / "cmp"
    result = CliRunner().invoke(
        app,
        ["compare", "--data", str(tmp_path / "data"), "--out", str(out)],
        env={"COLUMNS": "40"},  # far too narrow for the table: a terminal would cut cells
    )
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    for row in table_rows(reports):
        for cell in row.values():
            assert cell in result.output
    assert "| drunet_long_model_name | 0.8371 |" in result.output
    assert (out / "report.html").is_file() and str(out / "report.html") in result.output
